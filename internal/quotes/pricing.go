package quotes

import (
	"fmt"

	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/money"
)

// The pricing rule (docs/quotes.md). Each line is computed from exact
// decimals and each of its figures is rounded to the fen once, half away
// from zero (money.Round):
//
//	subtotal = round(quantity × unitPrice)
//	net      = round(quantity × unitPrice × (100 − discountPercent) / 100)
//	discount = subtotal − net
//	tax      = round(net × taxRate / 100)
//	total    = net + tax
//
// The quote's subtotal, discount, tax and total are the exact sums of its
// lines' figures, never rounded again, so total = subtotal − discount +
// tax holds to the fen on every quote, and any client summing the lines
// gets the server's figures.

var hundred = decimal.NewFromInt(100)

// Totals are a quote's sums.
type Totals struct {
	Subtotal, Discount, Tax, Total money.Money
}

// priceLine computes l's figures from its quantity, price, discount and
// tax rate.
func priceLine(l *schema.QuoteLine) error {
	q, err := decimal.NewFromString(l.Quantity)
	if err != nil {
		return fmt.Errorf("quantity %q: %w", l.Quantity, err)
	}
	d, err := decimal.NewFromString(l.DiscountPercent)
	if err != nil {
		return fmt.Errorf("discount %q: %w", l.DiscountPercent, err)
	}
	t, err := decimal.NewFromString(l.TaxRate)
	if err != nil {
		return fmt.Errorf("tax rate %q: %w", l.TaxRate, err)
	}
	price := money.MustFen(l.UnitPrice).Decimal()
	gross := price.Mul(q)
	sub, err := money.Round(gross)
	if err != nil {
		return err
	}
	// × (100 − d) / 100: a shift of two places, exact in decimal.
	net, err := money.Round(gross.Mul(hundred.Sub(d)).Shift(-2))
	if err != nil {
		return err
	}
	tax, err := money.Round(net.Decimal().Mul(t).Shift(-2))
	if err != nil {
		return err
	}
	disc, err := sub.Minus(net)
	if err != nil {
		return err
	}
	total, err := net.Plus(tax)
	if err != nil {
		return err
	}
	l.Subtotal, l.Discount, l.Tax, l.Total = sub.Fen(), disc.Fen(), tax.Fen(), total.Fen()
	return nil
}

// Price computes every line's figures and the quote's totals. An amount
// beyond the money range is a 422 on the lines.
func Price(lines []schema.QuoteLine) (Totals, error) {
	var t Totals
	sum := func(dst *money.Money, fen int64) error {
		v, err := dst.Plus(money.MustFen(fen))
		*dst = v
		return err
	}
	for i := range lines {
		l := &lines[i]
		err := priceLine(l)
		if err == nil {
			err = sum(&t.Subtotal, l.Subtotal)
		}
		if err == nil {
			err = sum(&t.Discount, l.Discount)
		}
		if err == nil {
			err = sum(&t.Tax, l.Tax)
		}
		if err == nil {
			err = sum(&t.Total, l.Total)
		}
		if err != nil {
			return Totals{}, apperr.Invalidf(fmt.Sprintf("body/lines/%d", i), "out_of_range", "the line's amounts exceed 999999999999999.99")
		}
	}
	return t, nil
}

// net is a line's amount after discount, before tax: what the margin is
// taken on.
func net(l schema.QuoteLine) money.Money { return money.MustFen(l.Subtotal - l.Discount) }

// lineCost is quantity × unit cost, rounded once; ok is false when the
// line has no cost.
func lineCost(l schema.QuoteLine) (money.Money, bool) {
	if l.UnitCost == nil {
		return money.Zero, false
	}
	q, err := decimal.NewFromString(l.Quantity)
	if err != nil {
		return money.Zero, false
	}
	c, err := money.Round(money.MustFen(*l.UnitCost).Decimal().Mul(q))
	if err != nil {
		return money.Zero, false
	}
	return c, true
}

// marginPercent is (net − cost) / net × 100 to two places (half away
// from zero); a line sold for nothing has a margin of 0% at no cost and
// −100% at some.
func marginPercent(n, cost money.Money) decimal.Decimal {
	if n.IsZero() {
		if cost.IsZero() {
			return decimal.Zero
		}
		return hundred.Neg()
	}
	m := n.Decimal().Sub(cost.Decimal())
	return m.Mul(hundred).DivRound(n.Decimal(), 2)
}

// Margin is a quote's margin over its product lines that have a cost:
// revenue (net of discount, before tax), cost, margin and its percentage.
// Free-text lines have no product and so no cost; they count in neither.
type Margin struct {
	Revenue, Cost, Margin money.Money
	Percent               decimal.Decimal
	// Complete is false when a product line has no cost.
	Complete bool
}

// MarginOf computes a quote's margin.
func MarginOf(lines []schema.QuoteLine) Margin {
	m := Margin{Complete: true}
	for _, l := range lines {
		if l.ProductID == nil {
			continue
		}
		c, ok := lineCost(l)
		if !ok {
			m.Complete = false
			continue
		}
		m.Revenue, _ = m.Revenue.Plus(net(l))
		m.Cost, _ = m.Cost.Plus(c)
	}
	m.Margin, _ = m.Revenue.Minus(m.Cost)
	m.Percent = marginPercent(m.Revenue, m.Cost)
	return m
}

// LineMargin is one product line's margin; ok is false without a cost.
func LineMargin(l schema.QuoteLine) (margin money.Money, percent decimal.Decimal, cost money.Money, ok bool) {
	c, ok := lineCost(l)
	if !ok {
		return money.Zero, decimal.Zero, money.Zero, false
	}
	n := net(l)
	margin, _ = n.Minus(c)
	return margin, marginPercent(n, c), c, true
}

// Blocker is a line that keeps a quote from being sent without approval:
// its id and why (missing_cost, below_margin) — never its cost or margin.
type Blocker struct {
	LineID string `json:"lineId"`
	Reason string `json:"reason"`
}

// Reasons of a blocker.
const (
	ReasonMissingCost = "missing_cost"
	ReasonBelowMargin = "below_margin"
)

// Gate is the cost gate (先核算成本再报价): every product line must have
// an internal cost, and a margin of at least the minimum of its category
// (else the global minimum, else 0).
func Gate(lines []schema.QuoteLine, min decimal.Decimal, byCategory map[string]decimal.Decimal) []Blocker {
	var out []Blocker
	for _, l := range lines {
		if l.ProductID == nil {
			continue
		}
		_, pct, _, ok := LineMargin(l)
		if !ok {
			out = append(out, Blocker{LineID: l.ID.String(), Reason: ReasonMissingCost})
			continue
		}
		floor := min
		if v, ok := byCategory[l.Category]; ok && l.Category != "" {
			floor = v
		}
		if pct.LessThan(floor) {
			out = append(out, Blocker{LineID: l.ID.String(), Reason: ReasonBelowMargin})
		}
	}
	return out
}

// discountPercent is the quote's overall discount: discount / subtotal ×
// 100 to four places.
func discountPercent(t Totals) decimal.Decimal {
	if t.Subtotal.IsZero() {
		return decimal.Zero
	}
	return t.Discount.Decimal().Mul(hundred).DivRound(t.Subtotal.Decimal(), 4)
}
