package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// DedupeKey claims one normalised name, phone or email for one record,
// across leads, customers and contacts. The unique index is what makes
// two concurrent creates of the same phone end in one success and one
// duplicate, on every engine and every replica.
type DedupeKey struct{ ent.Schema }

// Mixin of the DedupeKey.
func (DedupeKey) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the DedupeKey.
func (DedupeKey) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("key_type").Values("name", "phone", "email"),
		field.String("value").NotEmpty(),
		field.Enum("record_kind").Values("lead", "customer", "contact"),
		field.UUID("record_id", uuid.UUID{}),
		// CustomerID is the customer of a contact.
		field.UUID("customer_id", uuid.UUID{}).Optional().Nillable(),
	}
}

// Indexes of the DedupeKey.
func (DedupeKey) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("key_type", "value").Unique(),
		index.Fields("record_kind", "record_id"),
	}
}
