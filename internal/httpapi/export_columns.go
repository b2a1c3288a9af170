package httpapi

import (
	"time"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/export"
)

// The columns of each list's export. A cell is read off the API
// representation the JSON list answers (leadOut, …), so it shows what the
// JSON shows that caller, masked fields included. English headers are the
// JSON member names, so that a program can map a column to its field;
// Chinese headers are for people. A new list exports by declaring its
// columns here and calling stream from its handler.

func col[T any](en, zh string, v func(T) string) export.Column[T] {
	return export.Column[T]{EN: en, ZH: zh, Value: v}
}

// nullCell is a nullable value: empty when null or absent.
func nullCell[T any](n nullable.Nullable[T], f func(T) string) string {
	v, err := n.Get()
	if err != nil {
		return ""
	}
	return f(v)
}

func nullTimeCell(n nullable.Nullable[time.Time]) string { return nullCell(n, export.Time) }

func nullIDCell(n nullable.Nullable[uuid.UUID]) string {
	return nullCell(n, uuid.UUID.String)
}

func plain(s string) string { return s }

func boolPtr(b *bool) string { return export.Bool(b != nil && *b) }

var leadColumns = []export.Column[api.Lead]{
	col("id", "编号", func(l api.Lead) string { return l.Id.String() }),
	col("name", "名称", func(l api.Lead) string { return l.Name }),
	col("company", "公司", func(l api.Lead) string { return export.Text(l.Company) }),
	col("phone", "电话", func(l api.Lead) string { return export.Text(l.Phone) }),
	col("email", "邮箱", func(l api.Lead) string { return export.Text(l.Email) }),
	col("source", "来源", func(l api.Lead) string { return export.Text(l.Source) }),
	col("region", "地区", func(l api.Lead) string { return export.Text(l.Region) }),
	col("industry", "行业", func(l api.Lead) string { return export.Text(l.Industry) }),
	col("notes", "备注", func(l api.Lead) string { return export.Text(l.Notes) }),
	col("tags", "标签", func(l api.Lead) string { return export.Tags(l.Tags) }),
	col("status", "状态", func(l api.Lead) string { return string(l.Status) }),
	col("ownerId", "负责人编号", func(l api.Lead) string { return nullIDCell(l.OwnerId) }),
	col("ownerName", "负责人", func(l api.Lead) string { return nullCell(l.OwnerName, plain) }),
	col("poolId", "线索池编号", func(l api.Lead) string { return l.PoolId.String() }),
	col("ownedAt", "领取时间", func(l api.Lead) string { return nullTimeCell(l.OwnedAt) }),
	col("lastFollowUpAt", "最近跟进时间", func(l api.Lead) string { return nullTimeCell(l.LastFollowUpAt) }),
	col("frozenUntil", "冻结至", func(l api.Lead) string { return nullTimeCell(l.FrozenUntil) }),
	col("releasedAt", "退回时间", func(l api.Lead) string { return nullTimeCell(l.ReleasedAt) }),
	col("reclaimAt", "回收时间", func(l api.Lead) string { return nullTimeCell(l.ReclaimAt) }),
	col("reclaimReason", "回收原因", func(l api.Lead) string {
		return nullCell(l.ReclaimReason, func(r api.ReclaimReason) string { return string(r) })
	}),
	col("convertedCustomerId", "转化客户编号", func(l api.Lead) string { return nullIDCell(l.ConvertedCustomerId) }),
	col("masked", "已脱敏", func(l api.Lead) string { return boolPtr(l.Masked) }),
	col("createdAt", "创建时间", func(l api.Lead) string { return export.Time(l.CreatedAt) }),
	col("updatedAt", "更新时间", func(l api.Lead) string { return export.Time(l.UpdatedAt) }),
}

var customerColumns = []export.Column[api.Customer]{
	col("id", "编号", func(c api.Customer) string { return c.Id.String() }),
	col("name", "客户名称", func(c api.Customer) string { return c.Name }),
	col("industry", "行业", func(c api.Customer) string { return export.Text(c.Industry) }),
	col("region", "地区", func(c api.Customer) string { return export.Text(c.Region) }),
	col("address", "地址", func(c api.Customer) string { return export.Text(c.Address) }),
	col("website", "网站", func(c api.Customer) string { return export.Text(c.Website) }),
	col("grade", "客户等级", func(c api.Customer) string {
		return nullCell(c.Grade, func(g api.Grade) string { return string(g) })
	}),
	col("creditLevel", "信用等级", func(c api.Customer) string { return export.Text(c.CreditLevel) }),
	col("creditLimit", "信用额度", func(c api.Customer) string { return nullCell(c.CreditLimit, plain) }),
	col("source", "来源", func(c api.Customer) string { return export.Text(c.Source) }),
	col("tags", "标签", func(c api.Customer) string { return export.Tags(c.Tags) }),
	col("status", "状态", func(c api.Customer) string { return string(c.Status) }),
	col("dealStatus", "已成交", func(c api.Customer) string { return export.Bool(c.DealStatus) }),
	col("dealAt", "成交时间", func(c api.Customer) string { return nullTimeCell(c.DealAt) }),
	col("ownerId", "负责人编号", func(c api.Customer) string { return nullIDCell(c.OwnerId) }),
	col("ownerName", "负责人", func(c api.Customer) string { return nullCell(c.OwnerName, plain) }),
	col("poolId", "公海编号", func(c api.Customer) string { return c.PoolId.String() }),
	col("ownedAt", "领取时间", func(c api.Customer) string { return nullTimeCell(c.OwnedAt) }),
	col("lastFollowUpAt", "最近跟进时间", func(c api.Customer) string { return nullTimeCell(c.LastFollowUpAt) }),
	col("frozenUntil", "冻结至", func(c api.Customer) string { return nullTimeCell(c.FrozenUntil) }),
	col("releasedAt", "退回时间", func(c api.Customer) string { return nullTimeCell(c.ReleasedAt) }),
	col("reclaimAt", "回收时间", func(c api.Customer) string { return nullTimeCell(c.ReclaimAt) }),
	col("reclaimReason", "回收原因", func(c api.Customer) string {
		return nullCell(c.ReclaimReason, func(r api.ReclaimReason) string { return string(r) })
	}),
	col("masked", "已脱敏", func(c api.Customer) string { return boolPtr(c.Masked) }),
	col("createdAt", "创建时间", func(c api.Customer) string { return export.Time(c.CreatedAt) }),
	col("updatedAt", "更新时间", func(c api.Customer) string { return export.Time(c.UpdatedAt) }),
}

var contactColumns = []export.Column[api.Contact]{
	col("id", "编号", func(c api.Contact) string { return c.Id.String() }),
	col("customerId", "客户编号", func(c api.Contact) string { return c.CustomerId.String() }),
	col("name", "姓名", func(c api.Contact) string { return c.Name }),
	col("title", "职务", func(c api.Contact) string { return export.Text(c.Title) }),
	col("phone", "电话", func(c api.Contact) string { return export.Text(c.Phone) }),
	col("email", "邮箱", func(c api.Contact) string { return export.Text(c.Email) }),
	col("wechat", "微信", func(c api.Contact) string { return export.Text(c.Wechat) }),
	col("isPrimary", "主联系人", func(c api.Contact) string { return export.Bool(c.IsPrimary) }),
	col("notes", "备注", func(c api.Contact) string { return export.Text(c.Notes) }),
	col("createdAt", "创建时间", func(c api.Contact) string { return export.Time(c.CreatedAt) }),
	col("updatedAt", "更新时间", func(c api.Contact) string { return export.Time(c.UpdatedAt) }),
}

var followUpColumns = []export.Column[api.FollowUp]{
	col("id", "编号", func(f api.FollowUp) string { return f.Id.String() }),
	col("subjectType", "跟进对象类型", func(f api.FollowUp) string { return string(f.SubjectType) }),
	col("subjectId", "跟进对象编号", func(f api.FollowUp) string { return f.SubjectId.String() }),
	col("authorId", "跟进人编号", func(f api.FollowUp) string { return f.AuthorId.String() }),
	col("channel", "跟进方式", func(f api.FollowUp) string { return string(f.Channel) }),
	col("content", "跟进内容", func(f api.FollowUp) string { return f.Content }),
	col("occurredAt", "跟进时间", func(f api.FollowUp) string { return export.Time(f.OccurredAt) }),
	col("nextAt", "下次跟进时间", func(f api.FollowUp) string { return nullTimeCell(f.NextAt) }),
	col("createdAt", "创建时间", func(f api.FollowUp) string { return export.Time(f.CreatedAt) }),
}
