package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// ReclaimWarning tells an owner that a record will be reclaimed. The
// unique (record, deadline) index makes "one warning per record and
// deadline" hold however many sweeps run at once.
type ReclaimWarning struct{ ent.Schema }

// Mixin of the ReclaimWarning.
func (ReclaimWarning) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the ReclaimWarning.
func (ReclaimWarning) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("lead", "customer").Immutable(),
		field.UUID("record_id", uuid.UUID{}).Immutable(),
		field.UUID("owner_id", uuid.UUID{}).Immutable(),
		field.Time("reclaim_at").Immutable(),
		field.String("reason").Immutable(),
		field.Time("created_at").Immutable(),
	}
}

// Indexes of the ReclaimWarning.
func (ReclaimWarning) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("record_id", "reclaim_at").Unique(),
		index.Fields("owner_id"),
	}
}
