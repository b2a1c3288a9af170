package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Team is a node of the team tree. Path is the materialised chain of
// ancestor ids ("/root/…/self/"), so "everyone in my subtree" is one
// indexed prefix match rather than a recursive query.
type Team struct{ ent.Schema }

// Mixin of the Team.
func (Team) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Team.
func (Team) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(chars(200)),
		field.UUID("parent_id", uuid.UUID{}).Optional().Nillable(),
		field.String("path").NotEmpty(),
		field.Int("max_owned_leads").Optional().Nillable(),
		field.Int("max_owned_customers").Optional().Nillable(),
		field.Int("max_frozen").Optional().Nillable(),
		// The pools where the team's reps' records land when created
		// without a named pool or returned from the global default pool
		// (nil: the nearest ancestor's, else the global default).
		field.UUID("default_lead_pool_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("default_customer_pool_id", uuid.UUID{}).Optional().Nillable(),
	}
}

// Indexes of the Team.
func (Team) Indexes() []ent.Index {
	return []ent.Index{index.Fields("path"), index.Fields("parent_id")}
}
