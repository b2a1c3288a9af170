package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// User is a person who logs in: a rep, supervisor, auditor or admin.
type User struct{ ent.Schema }

// Mixin of the User.
func (User) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		// Email is stored lower-cased, which makes the unique index
		// case-insensitive on both engines.
		field.String("email").NotEmpty().MaxLen(254).Unique(),
		field.String("name").NotEmpty().MaxLen(200),
		field.Enum("role").Values("rep", "supervisor", "auditor", "admin"),
		field.UUID("team_id", uuid.UUID{}).Optional().Nillable(),
		// TeamPath copies the team's path so data-scope checks need no join.
		field.String("team_path").Default(""),
		field.Bool("active").Default(true),
		field.String("password_hash").Sensitive(),
		field.Int("max_owned_leads").Optional().Nillable(),
		field.Int("max_owned_customers").Optional().Nillable(),
		field.Int("max_frozen").Optional().Nillable(),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{index.Fields("team_id"), index.Fields("team_path")}
}
