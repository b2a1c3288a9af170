package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"

	"github.com/shoalcrm/shoal/internal/money"
)

// Product is an entry of the product catalogue (产品目录): what quotes and
// orders sell. internal_cost (成本价) is shown to supervisors and admins
// only (internal/products).
type Product struct{ ent.Schema }

// Mixin of the Product.
func (Product) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Product.
func (Product) Fields() []ent.Field {
	return []ent.Field{
		field.String("sku").NotEmpty().MaxLen(64),
		// sku_norm is the SKU folded to upper case: unique, so CRM-1 and
		// crm-1 are one product.
		field.String("sku_norm").NotEmpty().MaxLen(64).Unique(),
		field.String("name").NotEmpty().MaxLen(chars(200)),
		field.String("category").Optional().Nillable().MaxLen(chars(100)),
		field.String("unit").Optional().Nillable().MaxLen(chars(20)),
		field.String("specification").Optional().Nillable().MaxLen(chars(500)),
		money.Field("list_price"),
		money.Field("internal_cost").Optional(),
		field.Bool("active").Default(true),
	}
}

// Indexes of the Product: the default list sorts by created_at; the
// category filter.
func (Product) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_at", "id"), index.Fields("category", "created_at", "id")}
}
