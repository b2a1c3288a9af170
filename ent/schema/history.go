package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// OwnershipChange is one row of a record's ownership history, written in
// the same transaction as the change it describes.
type OwnershipChange struct{ ent.Schema }

// Mixin of the OwnershipChange.
func (OwnershipChange) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the OwnershipChange.
func (OwnershipChange) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("record_kind").Values("lead", "customer").Immutable(),
		field.UUID("record_id", uuid.UUID{}).Immutable(),
		field.Enum("operation").Values("create", "claim", "return", "assign", "transfer", "freeze", "unfreeze",
			"invalidate", "restore", "reclaim", "convert", "autoAssign", "handover").Immutable(),
		field.UUID("from_owner_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.UUID("to_owner_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.UUID("actor_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.Enum("actor_type").Values("user", "apiKey", "system").Immutable(),
		field.String("reason").Default("").Immutable(),
		field.UUID("pool_id", uuid.UUID{}).Immutable(),
		field.Int("rule_version").Default(0).Immutable(),
		field.Time("at").Immutable(),
	}
}

// Indexes of the OwnershipChange: a record's history, in order. Nothing
// else reads this table by another key, and every ownership operation and
// reclaim writes a row, so it has no other index.
func (OwnershipChange) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("record_kind", "record_id", "id"),
	}
}

// DomainEvent is one entry of the event feed (for webhooks), written in the
// same transaction as the change. The feed is read in id order, so the
// table has no secondary index: each would cost every write a b-tree
// insert.
type DomainEvent struct{ ent.Schema }

// Mixin of the DomainEvent.
func (DomainEvent) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the DomainEvent.
func (DomainEvent) Fields() []ent.Field {
	return []ent.Field{
		field.String("type").Immutable(),
		field.String("subject_kind").Immutable(),
		field.UUID("subject_id", uuid.UUID{}).Immutable(),
		field.JSON("data", map[string]any{}).Immutable(),
		field.Time("at").Immutable(),
	}
}

// Cooldown remembers when a user last returned or lost a record, for the
// pool's claimCooldownDays.
type Cooldown struct{ ent.Schema }

// Mixin of the Cooldown.
func (Cooldown) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the Cooldown.
func (Cooldown) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("record_id", uuid.UUID{}),
		field.UUID("user_id", uuid.UUID{}),
		field.Time("lost_at"),
	}
}

// Indexes of the Cooldown.
func (Cooldown) Indexes() []ent.Index {
	return []ent.Index{index.Fields("record_id", "user_id").Unique()}
}

// ClaimTally counts one user's claims from one pool on one day, for the
// pool's dailyClaimLimit; the check is a conditional increment.
type ClaimTally struct{ ent.Schema }

// Mixin of the ClaimTally.
func (ClaimTally) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the ClaimTally.
func (ClaimTally) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}),
		field.UUID("pool_id", uuid.UUID{}),
		field.String("day"),
		field.Int("count").Default(0),
	}
}

// Indexes of the ClaimTally.
func (ClaimTally) Indexes() []ent.Index {
	return []ent.Index{index.Fields("user_id", "pool_id", "day").Unique()}
}
