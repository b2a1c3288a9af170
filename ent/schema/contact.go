package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Contact is a person at a customer (联系人).
type Contact struct{ ent.Schema }

// Mixin of the Contact.
func (Contact) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Contact.
func (Contact) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("customer_id", uuid.UUID{}).Immutable(),
		field.String("name").MaxLen(chars(200)),
		field.String("title").Default("").MaxLen(chars(200)),
		field.String("phone").Default("").MaxLen(40),
		field.String("email").Default("").MaxLen(254),
		field.String("wechat").Default("").MaxLen(chars(200)),
		field.Bool("is_primary").Default(false),
		field.Text("notes").Default(""),
		// name_norm is the name as search compares it (dedupe.Name).
		field.String("name_norm").Default(""),
		field.String("phone_norm").Default(""),
		field.String("email_norm").Default(""),
	}
}

// Indexes of the Contact.
func (Contact) Indexes() []ent.Index {
	return []ent.Index{index.Fields("customer_id")}
}
