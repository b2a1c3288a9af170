package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/money"
)

// Customer is an account (客户).
type Customer struct{ ent.Schema }

// Mixin of the Customer.
func (Customer) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, PoolableMixin{}} }

// Fields of the Customer.
func (Customer) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").MaxLen(chars(200)),
		field.String("industry").Default("").MaxLen(chars(200)),
		field.String("region").Default("").MaxLen(chars(200)),
		field.String("address").Default("").MaxLen(chars(200)),
		field.String("website").Default("").MaxLen(chars(200)),
		field.String("grade").Default(""),
		field.String("credit_level").Default("").MaxLen(chars(200)),
		// Exact fen (see internal/money). The column is credit_limit_fen
		// because older databases still hold the float credit_limit;
		// store.Migrate copies those values over once.
		money.Field("credit_limit").Optional().StorageKey("credit_limit_fen"),
		field.String("source").Default("").MaxLen(chars(200)),
		field.Strings("tags").Default([]string{}),
		field.String("name_norm").Default(""),
		field.Enum("status").Values("active", "invalid", "merged").Default("active"),
		// MergedIntoID is the survivor a merged customer (status merged)
		// was merged into; its id answers merged_into pointing there.
		field.UUID("merged_into_id", uuid.UUID{}).Optional().Nillable(),
		field.Bool("deal_status").Default(false),
		field.Time("deal_at").Optional().Nillable(),
	}
}

// Indexes of the Customer.
func (Customer) Indexes() []ent.Index {
	return []ent.Index{index.Fields("name_norm")}
}
