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
func (User) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the User.
func (User) Fields() []ent.Field {
	return []ent.Field{
		// Email is stored lower-cased, which makes the unique index
		// case-insensitive on both engines.
		field.String("email").NotEmpty().MaxLen(254).Unique(),
		field.String("name").NotEmpty().MaxLen(chars(200)),
		field.Enum("role").Values("rep", "supervisor", "auditor", "admin"),
		field.UUID("team_id", uuid.UUID{}).Optional().Nillable(),
		// TeamPath copies the team's path so data-scope checks need no join.
		field.String("team_path").Default(""),
		field.Bool("active").Default(true),
		field.String("password_hash").Sensitive(),
		// SessionEpoch is stamped into every access token; moving it (a new
		// password, a role change, deactivation) makes every access token
		// issued before unusable at once, not only when it expires.
		field.Int("session_epoch").Default(0),
		field.Int("max_owned_leads").Optional().Nillable(),
		field.Int("max_owned_customers").Optional().Nillable(),
		field.Int("max_frozen").Optional().Nillable(),
		// Counters of what the user holds now, kept in step by the pool
		// engine in the same transaction as every ownership change, so a
		// cap check is one row, not a COUNT. Customers count here unless
		// dealt (or always, with the capCountsDealt setting). Frozen records are
		// counted when a freeze is requested (rare), not kept as a counter, since
		// freezes also end by the clock alone.
		field.Int("owned_leads").Default(0),
		field.Int("owned_customers").Default(0),
	}
}

// Indexes of the User.
func (User) Indexes() []ent.Index {
	return []ent.Index{index.Fields("team_id"), index.Fields("team_path")}
}
