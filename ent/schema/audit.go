package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// AuditEvent is one append-only audit log entry. Nothing updates or deletes
// these rows.
type AuditEvent struct{ ent.Schema }

// Mixin of the AuditEvent.
func (AuditEvent) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the AuditEvent.
func (AuditEvent) Fields() []ent.Field {
	return []ent.Field{
		field.Time("at").Default(now).Immutable(),
		field.Enum("actor_type").Values("user", "apiKey", "system", "anonymous").Immutable(),
		field.UUID("actor_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.String("operation").Immutable(),
		field.String("target_type").Default("").Immutable(),
		field.String("target_id").Default("").Immutable(),
		field.String("request_id").Default("").Immutable(),
		field.String("client_address").Default("").Immutable(),
		field.Enum("outcome").Values("success", "failure", "denied").Immutable(),
		field.Int("status").Default(0).Immutable(),
		field.String("detail").Default("").MaxLen(chars(500)).Immutable(),
	}
}

// Indexes of the AuditEvent.
func (AuditEvent) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("actor_id"),
		index.Fields("target_type", "target_id"),
		index.Fields("operation"),
		index.Fields("at"),
	}
}
