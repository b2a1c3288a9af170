// Package demo loads a realistic demo data set (teams, people, leads,
// customers, follow-ups with Chinese names, regions and phones) through the
// same services the API uses, so every rule applies to it.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/records"
)

// Password is the password of every demo user.
const Password = "shoal-demo-2026"

var (
	surnames = []string{"王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗", "高"}
	given    = []string{"伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超", "秀英", "华", "鑫", "婷"}
	cities   = []string{"北京", "上海", "广州", "深圳", "杭州", "成都", "重庆", "武汉", "南京", "西安", "苏州", "天津", "长沙", "郑州", "青岛"}
	words    = []string{"华信", "恒通", "瑞达", "博远", "锦程", "中科", "天成", "鼎盛", "宏图", "启明", "星辰", "海川", "金桥", "联创", "云帆", "东方", "长江", "新源", "卓越", "汇智"}
	trades   = []string{"科技", "贸易", "制造", "物流", "医疗器械", "教育咨询", "餐饮管理", "建材", "电子", "环保"}
	sources  = []string{"website", "exhibition", "referral", "partner API", "cold call", "wechat"}
	channels = []string{"call", "visit", "email", "wechat", "meeting", "other"}
)

// Load creates the demo organisation and data. It refuses to run on a
// database that already has records of this demo (it checks the admin).
func Load(ctx context.Context, a *app.App, leads, customers int, out func(string)) error {
	rng := rand.New(rand.NewPCG(2026, 11))
	created, err := a.Org.EnsureAdmin(ctx, "admin@demo.shoal.dev", Password)
	if err != nil {
		return err
	}
	if !created {
		return fmt.Errorf("the database already has users; load the demo into an empty database")
	}
	hq, err := a.Org.CreateTeam(ctx, org.NewTeam{Name: "销售总部"})
	if err != nil {
		return err
	}
	var reps []*auth.Principal
	for i, name := range []string{"华东大区", "华南大区", "西南大区"} {
		t, err := a.Org.CreateTeam(ctx, org.NewTeam{Name: name, ParentID: &hq.ID})
		if err != nil {
			return err
		}
		if _, err := a.Org.CreateUser(ctx, org.NewUser{Email: fmt.Sprintf("supervisor%d@demo.shoal.dev", i+1),
			Name: person(rng) + "（主管）", Role: auth.RoleSupervisor, TeamID: &t.ID, Password: Password}); err != nil {
			return err
		}
		for j := range 4 {
			u, err := a.Org.CreateUser(ctx, org.NewUser{Email: fmt.Sprintf("rep%d%d@demo.shoal.dev", i+1, j+1),
				Name: person(rng), Role: auth.RoleRep, TeamID: &t.ID, Password: Password})
			if err != nil {
				return err
			}
			reps = append(reps, auth.UserPrincipal(u))
		}
	}
	if _, err := a.Org.CreateUser(ctx, org.NewUser{Email: "auditor@demo.shoal.dev", Name: person(rng) + "（稽核）",
		Role: auth.RoleAuditor, Password: Password}); err != nil {
		return err
	}
	out(fmt.Sprintf("users: admin@demo.shoal.dev, supervisor1..3@, rep11..rep34@, auditor@demo.shoal.dev (password %s)", Password))

	made := 0
	for i := 0; made < leads && i < leads*2; i++ {
		rep := reps[rng.IntN(len(reps))]
		name, company, phone := person(rng), company(rng), mobile(rng)
		city := cities[rng.IntN(len(cities))]
		src := sources[rng.IntN(len(sources))]
		email := fmt.Sprintf("contact%d@%s.example.cn", i, "demo")
		_, err := a.Records.CreateLead(ctx, rep, records.LeadInput{Name: &name, Company: &company, Phone: &phone, Email: &email,
			Region: &city, Source: &src, Industry: &trades[rng.IntN(len(trades))]})
		if apperr.HasCode(err, "duplicate") {
			continue
		}
		if err != nil {
			return err
		}
		made++
	}
	out(fmt.Sprintf("leads: %d", made))
	made = 0
	for i := 0; made < customers && i < customers*2; i++ {
		rep := reps[rng.IntN(len(reps))]
		name, city := company(rng), cities[rng.IntN(len(cities))]
		v, err := a.Records.CreateCustomer(ctx, rep, records.CustomerInput{Name: &name, Region: &city, Industry: &trades[rng.IntN(len(trades))]})
		if apperr.HasCode(err, "duplicate") {
			continue
		}
		if err != nil {
			return err
		}
		made++
		if v.OwnerID != nil && rng.IntN(3) == 0 {
			if _, err := a.Records.CreateFollowUp(ctx, rep, records.FollowUpInput{SubjectType: string(kinds.Customer), SubjectID: v.ID,
				Channel: channels[rng.IntN(len(channels))], Content: "电话沟通了采购需求，客户表示下月预算确定后再联系。",
				OccurredAt: time.Now().Add(-time.Duration(rng.IntN(72)) * time.Hour)}); err != nil {
				return err
			}
		}
	}
	out(fmt.Sprintf("customers: %d", made))
	return nil
}

func person(rng *rand.Rand) string {
	return surnames[rng.IntN(len(surnames))] + given[rng.IntN(len(given))]
}

func company(rng *rand.Rand) string {
	return cities[rng.IntN(len(cities))] + words[rng.IntN(len(words))] + words[rng.IntN(len(words))] + trades[rng.IntN(len(trades))] + "有限公司"
}

func mobile(rng *rand.Rand) string {
	prefixes := []string{"138", "139", "136", "158", "186", "177", "150", "189"}
	return fmt.Sprintf("%s%04d%04d", prefixes[rng.IntN(len(prefixes))], rng.IntN(10000), rng.IntN(10000))
}
