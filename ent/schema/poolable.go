package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/dialect/entsql"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"entgo.io/ent/schema/mixin"
	"github.com/google/uuid"
)

// PoolableMixin is the ownership state every record that lives in a pool
// carries (domain.md, "Records that live in pools"). All of it is
// server-owned: it changes only through the pool engine's operations.
type PoolableMixin struct{ mixin.Schema }

// Fields of the PoolableMixin.
func (PoolableMixin) Fields() []ent.Field {
	fields := []ent.Field{
		field.UUID("owner_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("pool_id", uuid.UUID{}),
		field.Time("owned_at").Optional().Nillable(),
		field.Time("last_follow_up_at").Optional().Nillable(),
		field.Time("frozen_until").Optional().Nillable(),
		field.Time("released_at").Optional().Nillable(),
		// ReclaimAt is the stored reclaim deadline (the pure clock's
		// answer when the record last changed), so the sweep finds due
		// records through an index instead of scanning.
		field.Time("reclaim_at").Optional().Nillable(),
		field.String("reclaim_reason").Default(""),
	}
	// The version (VersionMixin) increments on every change, ownership
	// changes included; it is the ETag.
	return append(fields, VersionMixin{}.Fields()...)
}

// Indexes of the PoolableMixin.
func (PoolableMixin) Indexes() []ent.Index {
	return []ent.Index{
		// Lists are keyset-paginated on (sort key, id): each index ends in
		// id so a page is one range scan.
		index.Fields("owner_id", "created_at", "id"),
		index.Fields("pool_id", "owner_id", "created_at", "id"),
		index.Fields("created_at", "id"),
		index.Fields("updated_at", "id"),
		index.Fields("owned_at", "id"),
		index.Fields("last_follow_up_at", "id"),
		// The sweep walks due records in (due time, id) order. Only the
		// sweep reads these two, always with a bound on the due time, so
		// the indexes leave out records without one: a pooled record has
		// no entry to move when it is claimed or reclaimed, which saves
		// a write at a random place in the index on each.
		index.Fields("reclaim_at", "id").Annotations(entsql.IndexWhere("reclaim_at IS NOT NULL")),
		index.Fields("frozen_until", "id").Annotations(entsql.IndexWhere("frozen_until IS NOT NULL")),
	}
}
