package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/money"
)

// QuoteLine is one line of a quote, kept in the quote's row (a quote has
// at most a few hundred). Amounts are fen; quantities and percentages are
// decimal strings, exact as the client sent them.
type QuoteLine struct {
	ID              uuid.UUID  `json:"id"`
	ProductID       *uuid.UUID `json:"productId,omitempty"`
	SKU             string     `json:"sku,omitempty"`
	Name            string     `json:"name"`
	Specification   string     `json:"specification,omitempty"`
	Category        string     `json:"category,omitempty"`
	Unit            string     `json:"unit,omitempty"`
	Quantity        string     `json:"quantity"`
	UnitPrice       int64      `json:"unitPrice"`
	DiscountPercent string     `json:"discountPercent"`
	TaxRate         string     `json:"taxRate"`
	// UnitCost is the product's internal cost (成本价) when the quote was
	// last priced, submitted or sent; nil when the product has none.
	UnitCost *int64 `json:"unitCost,omitempty"`
	Subtotal int64  `json:"subtotal"`
	Discount int64  `json:"discount"`
	Tax      int64  `json:"tax"`
	Total    int64  `json:"total"`
}

// Quote is a priced offer to a customer (报价单), in revisions: a revision
// is a new row with the same number and root.
type Quote struct{ ent.Schema }

// Mixin of the Quote.
func (Quote) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Quote.
func (Quote) Fields() []ent.Field {
	return []ent.Field{
		field.String("number").NotEmpty().MaxLen(40).Immutable(),
		field.Int("revision").Default(1).Immutable(),
		field.UUID("root_id", uuid.UUID{}).Immutable(),
		field.UUID("previous_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.UUID("superseded_by_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("customer_id", uuid.UUID{}).Immutable(),
		field.UUID("opportunity_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.UUID("contact_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("owner_id", uuid.UUID{}),
		field.String("title").NotEmpty().MaxLen(chars(200)),
		field.Enum("status").Values("draft", "pending_approval", "approved", "sent", "accepted", "declined", "superseded").Default("draft"),
		field.String("currency").Default("CNY"),
		field.String("valid_until"),
		field.JSON("lines", []QuoteLine{}),
		money.Field("subtotal"),
		money.Field("discount_total"),
		money.Field("tax_total"),
		money.Field("total"),
		field.Text("notes").Default(""),
		field.Text("terms").Default(""),
		field.UUID("approval_id", uuid.UUID{}).Optional().Nillable(),
		field.Time("submitted_at").Optional().Nillable(),
		field.Time("sent_at").Optional().Nillable(),
		field.Time("answered_at").Optional().Nillable(),
		field.String("decline_reason").Optional().Nillable().MaxLen(chars(500)),
		field.UUID("created_by", uuid.UUID{}).Optional().Nillable().Immutable(),
	}
}

// Indexes of the Quote: the default list (newest first), a customer's, an
// opportunity's, an owner's, a number's revisions.
func (Quote) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("created_at", "id"),
		index.Fields("customer_id"),
		index.Fields("opportunity_id"),
		index.Fields("owner_id", "created_at"),
		index.Fields("number", "revision").Unique(),
		index.Fields("root_id"),
	}
}
