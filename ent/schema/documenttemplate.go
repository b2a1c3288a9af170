package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"github.com/google/uuid"
)

// DocumentTemplate is the printable template of one document kind (打印模板):
// its id is the kind (quote; later order, contract). A kind without a row
// prints with its built-in default (internal/documents); the row exists
// from an admin's first change on.
type DocumentTemplate struct{ ent.Schema }

// Mixin of the DocumentTemplate.
func (DocumentTemplate) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, VersionMixin{}} }

// Fields of the DocumentTemplate.
func (DocumentTemplate) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("kind").NotEmpty().MaxLen(32).Immutable(),
		field.String("name").NotEmpty().MaxLen(chars(200)),
		// body is the html/template source; checked against sample data
		// before it is saved.
		field.Text("body"),
		// The letterhead (抬头) the template shows as .Company. Lengths
		// are in bytes here (the API limits characters: 500, 200 for name).
		field.String("company_name").Default("").MaxLen(chars(500)),
		field.String("company_address").Default("").MaxLen(chars(500)),
		field.String("company_phone").Default("").MaxLen(chars(500)),
		field.String("company_tax_id").Default("").MaxLen(chars(500)),
		field.UUID("updated_by", uuid.UUID{}).Optional().Nillable(),
	}
}
