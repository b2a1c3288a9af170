package quotes

import (
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/money"
)

// Document is the data the quote template renders (renderQuote): the
// quote's figures, never its costs, with the parties as the caller may
// see them (the customer and contact masked as everywhere else).
func Document(q *ent.Quote, customer, contact, owner documents.Party) documents.QuoteDoc {
	d := documents.QuoteDoc{Number: q.Number, Version: q.Revision, Title: q.Title, Status: string(q.Status),
		IssuedOn: q.CreatedAt.In(businessZone).Format("2006-01-02"), ValidUntil: q.ValidUntil,
		Customer: customer, Contact: contact, Owner: owner, Currency: q.Currency,
		Lines:    make([]documents.QuoteLine, len(q.Lines)),
		Subtotal: q.Subtotal.String(), Discount: q.DiscountTotal.String(), Tax: q.TaxTotal.String(), Total: q.Total.String(),
		Notes: q.Notes, Terms: q.Terms}
	fen := func(v int64) string { return money.MustFen(v).String() }
	for i, l := range q.Lines {
		d.Lines[i] = documents.QuoteLine{No: i + 1, SKU: l.SKU, Name: l.Name, Specification: l.Specification, Unit: l.Unit,
			Quantity: l.Quantity, UnitPrice: fen(l.UnitPrice), DiscountPercent: l.DiscountPercent, TaxRate: l.TaxRate,
			Subtotal: fen(l.Subtotal), Discount: fen(l.Discount), Tax: fen(l.Tax), Total: fen(l.Total)}
	}
	return d
}
