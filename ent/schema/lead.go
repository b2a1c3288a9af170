package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Lead is a raw prospect (线索).
type Lead struct{ ent.Schema }

// Mixin of the Lead.
func (Lead) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, PoolableMixin{}} }

// Fields of the Lead.
func (Lead) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(chars(200)),
		field.String("company").Default("").MaxLen(chars(200)),
		field.String("phone").Default("").MaxLen(40),
		field.String("email").Default("").MaxLen(254),
		field.String("source").Default("").MaxLen(chars(200)),
		field.String("region").Default("").MaxLen(chars(200)),
		field.String("industry").Default("").MaxLen(chars(200)),
		field.Text("notes").Default(""),
		field.Strings("tags").Default([]string{}),
		// Normalised forms for search and duplicate checks (see dedupe).
		field.String("name_norm").Default(""),
		field.String("company_norm").Default(""),
		field.String("phone_norm").Default(""),
		field.String("email_norm").Default(""),
		field.Enum("status").Values("active", "invalid", "converted", "merged").Default("active"),
		field.UUID("converted_customer_id", uuid.UUID{}).Optional().Nillable(),
		// MergedIntoID is the survivor a merged lead (status merged) was
		// merged into; its id answers merged_into pointing there.
		field.UUID("merged_into_id", uuid.UUID{}).Optional().Nillable(),
	}
}

// Indexes of the Lead.
func (Lead) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("name_norm"),
		index.Fields("company_norm"),
		index.Fields("phone_norm"),
		index.Fields("email_norm"),
	}
}
