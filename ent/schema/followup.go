package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// FollowUp is one logged contact with a lead or customer (跟进记录).
type FollowUp struct{ ent.Schema }

// Mixin of the FollowUp.
func (FollowUp) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the FollowUp.
func (FollowUp) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("subject_type").Values("lead", "customer").Immutable(),
		field.UUID("subject_id", uuid.UUID{}).Immutable(),
		field.UUID("author_id", uuid.UUID{}).Immutable(),
		field.Enum("channel").Values("call", "visit", "email", "wechat", "meeting", "other").Immutable(),
		field.Text("content").Immutable(),
		field.Time("occurred_at").Immutable(),
		field.Time("next_at").Optional().Nillable().Immutable(),
		field.Time("created_at").Default(now).Immutable(),
	}
}

// Indexes of the FollowUp.
func (FollowUp) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("subject_type", "subject_id", "occurred_at"),
		index.Fields("author_id", "occurred_at"),
		index.Fields("occurred_at"),
	}
}
