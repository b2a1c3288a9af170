package demo

import (
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/records"
)

// The demo's word lists: common surnames and given names, cities,
// company-name words and trades, products and competitors, and the
// sentences of follow-up notes.
var (
	surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高", "郑", "梁", "谢", "宋", "唐"}
	given    = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华", "鑫", "婷", "志强", "海燕", "建国", "晓东", "佳怡"}
	cities   = []string{"北京", "上海", "广州", "深圳", "杭州", "成都", "重庆", "武汉", "南京", "西安", "苏州", "天津", "长沙", "郑州", "青岛", "宁波", "厦门", "合肥", "昆明", "东莞"}
	words    = []string{"华信", "恒通", "瑞达", "博远", "锦程", "中科", "天成", "鼎盛", "宏图", "启明", "星辰", "海川", "金桥", "联创", "云帆", "东方", "长江", "新源", "卓越", "汇智", "德润", "嘉禾", "凯旋", "同创"}
	trades   = []string{"科技", "贸易", "制造", "物流", "医疗器械", "教育咨询", "餐饮管理", "建材", "电子", "环保", "新能源", "食品"}
	sources  = []string{"官网表单", "展会", "老客户转介绍", "合作伙伴", "电话拜访", "微信公众号", "百度推广"}
	grades   = []string{"A", "B", "B", "C", "C", "C"}
	products = []string{"CRM 系统", "智能仓储方案", "工业传感器", "企业培训课程", "云服务器套餐", "环保设备", "电子签约服务"}
	rivals   = []string{"销售易", "纷享销客", "用友", "金蝶", "一家本地供应商"}
	weekdays = []string{"一", "二", "三", "四", "五"}
	channels = []string{"call", "visit", "email", "wechat", "meeting", "other"}
	notes    = []string{
		"电话沟通了采购需求，客户表示下月预算确定后再联系。",
		"上门拜访%s，介绍了%s，对方对价格比较敏感，需要再报一版优惠价。",
		"微信发送了%s的资料和两个同行案例，客户已读，约了周%s下午电话。",
		"客户目前在用%s，合同年底到期，届时可以重新评估。",
		"参加了客户内部评审会，技术负责人认可方案，等待采购流程。",
		"寄送的样品已签收，客户试用后反馈良好，准备安排商务谈判。",
		"对方负责人出差，改约下周再沟通。",
		"报价单已发送，客户要求增加售后服务条款和培训名额。",
		"邀请客户参加%s的行业展会，已确认出席。",
		"客户年底预算紧张，建议明年一季度再跟进。",
		"与财务确认了付款方式，倾向于分两期付款。",
		"客户提出要先做小范围试点，范围和时间下次面谈确定。",
	}
)

func (l *loader) pick(list []string) string { return list[l.rng.IntN(len(list))] }

func (l *loader) person() string { return l.pick(surnames) + l.pick(given) }

// company is a company name no earlier record of the demo has.
func (l *loader) company() string {
	for {
		c := l.pick(cities) + l.pick(words) + l.pick(words) + l.pick(trades) + "有限公司"
		if !l.companies[c] {
			l.companies[c] = true
			return c
		}
	}
}

// mobile is a mobile number no earlier record of the demo has.
func (l *loader) mobile() string {
	prefixes := []string{"138", "139", "136", "158", "186", "177", "150", "189"}
	for {
		m := fmt.Sprintf("%s%04d%04d", l.pick(prefixes), l.rng.IntN(10000), l.rng.IntN(10000))
		if !l.phones[m] {
			l.phones[m] = true
			return m
		}
	}
}

func (l *loader) lead(poolID *uuid.UUID) records.LeadInput {
	l.seq++
	name, company, phone := l.person(), l.company(), l.mobile()
	city, src, trade := l.pick(cities), l.pick(sources), l.pick(trades)
	email := fmt.Sprintf("contact%04d@demo-customer.example.cn", l.seq)
	note := fmt.Sprintf("%s来的线索，关注%s。", src, l.pick(products))
	return records.LeadInput{Name: &name, Company: &company, Phone: &phone, Email: &email, Region: &city, Source: &src,
		Industry: &trade, Notes: &note, PoolID: poolID}
}

func (l *loader) customer(poolID *uuid.UUID) records.CustomerInput {
	l.seq++
	name, city, trade, src := l.company(), l.pick(cities), l.pick(trades), l.pick(sources)
	address := fmt.Sprintf("%s市%s路%d号", city, l.pick(words), 1+l.rng.IntN(999))
	website := fmt.Sprintf("https://www.demo-customer-%04d.example.cn", l.seq)
	in := records.CustomerInput{Name: &name, Region: &city, Industry: &trade, Source: &src, Address: &address, Website: &website, PoolID: poolID}
	in.Grade.Set, in.Grade.Value = true, ptr(l.pick(grades))
	return in
}

// note is a follow-up note.
func (l *loader) note() string {
	n := l.pick(notes)
	switch strings.Count(n, "%s") {
	case 1:
		if strings.Contains(n, "在用") {
			return fmt.Sprintf(n, l.pick(rivals))
		}
		return fmt.Sprintf(n, l.pick(cities))
	case 2:
		if strings.Contains(n, "周%s") {
			return fmt.Sprintf(n, l.pick(products), l.pick(weekdays))
		}
		return fmt.Sprintf(n, l.person()+"经理", l.pick(products))
	}
	return n
}
