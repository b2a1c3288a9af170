package quotes

import (
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/money"
)

func line(qty, price, disc, tax string) schema.QuoteLine {
	return schema.QuoteLine{ID: uuid.New(), Quantity: qty, UnitPrice: money.MustParse(price).Fen(), DiscountPercent: disc, TaxRate: tax}
}

// TestPriceTable: awkward values, figures worked by hand with the rule of
// docs/quotes.md (each figure rounded once, half away from zero).
func TestPriceTable(t *testing.T) {
	for _, c := range []struct {
		name                       string
		qty, price, disc, tax      string
		sub, discount, taxAmt, tot string
	}{
		{"plain", "3", "100.00", "0", "0", "300.00", "0.00", "0.00", "300.00"},
		{"5% and 13%", "3", "100.00", "5", "13", "300.00", "15.00", "37.05", "322.05"},
		{"a third", "0.333333", "3.00", "0", "0", "1.00", "0.00", "0.00", "1.00"},
		{"a third of a cent", "0.333333", "0.01", "0", "0", "0.00", "0.00", "0.00", "0.00"},
		{"half a fen up", "1", "0.01", "50", "0", "0.01", "0.00", "0.00", "0.01"},
		{"0.005% discount", "1", "1000.00", "0.005", "0", "1000.00", "0.05", "0.00", "999.95"},
		{"0.005% of a small price rounds to nothing", "1", "100.00", "0.005", "0", "100.00", "0.00", "0.00", "100.00"},
		{"tax rounds half up", "1", "0.50", "0", "1", "0.50", "0.00", "0.01", "0.51"},
		{"6 decimal quantity", "2.125001", "99.99", "12.5", "6", "212.48", "26.56", "11.16", "197.08"},
		{"large", "1000000", "999999999.99", "0", "13", "999999999990000.00", "0.00", "129999999998700.00", "1129999999988700.00"},
		{"full discount", "7", "12.34", "100", "13", "86.38", "86.38", "0.00", "0.00"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := line(c.qty, c.price, c.disc, c.tax)
			err := priceLine(&l)
			if c.name == "large" {
				if err == nil {
					t.Fatalf("a total beyond the money range was priced: %+v", l)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := []string{money.MustFen(l.Subtotal).String(), money.MustFen(l.Discount).String(), money.MustFen(l.Tax).String(), money.MustFen(l.Total).String()}
			want := []string{c.sub, c.discount, c.taxAmt, c.tot}
			if strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("got %v, want %v", got, want)
			}
		})
	}
}

// ratRound rounds r to the fen, half away from zero: the reference.
func ratRound(r *big.Rat) int64 {
	f := new(big.Rat).Mul(r, big.NewRat(100, 1))
	neg := f.Sign() < 0
	f.Abs(f)
	n := new(big.Int).Quo(f.Num(), f.Denom())
	rem := new(big.Rat).Sub(f, new(big.Rat).SetInt(n))
	if rem.Cmp(big.NewRat(1, 2)) >= 0 {
		n.Add(n, big.NewInt(1))
	}
	if neg {
		n.Neg(n)
	}
	return n.Int64()
}

func rat(s string) *big.Rat {
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		panic(s)
	}
	return r
}

// TestPriceProperty: for random awkward lines (fractional quantities,
// discounts with up to four decimals, large prices), every figure equals
// the exact rational computation rounded once, the quote's totals are the
// sums of its lines, and total = subtotal − discount + tax to the fen.
func TestPriceProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(19, 2026))
	dec := func(intMax int64, places int) string {
		s := big.NewInt(r.Int64N(intMax)).String()
		if places > 0 {
			frac := r.Int64N(pow10(places))
			fs := big.NewInt(frac).String()
			s += "." + strings.Repeat("0", places-len(fs)) + fs
		}
		return s
	}
	for i := 0; i < 5000; i++ {
		n := 1 + r.IntN(20)
		lines := make([]schema.QuoteLine, n)
		for j := range lines {
			qty := dec(10000, r.IntN(7))
			if rat(qty).Sign() == 0 {
				qty = "0.333333"
			}
			lines[j] = line(qty, dec(100_000_000, 2), dec(101, r.IntN(5)), dec(30, r.IntN(3)))
			if rat(lines[j].DiscountPercent).Cmp(big.NewRat(100, 1)) > 0 {
				lines[j].DiscountPercent = "100"
			}
		}
		tot, err := Price(lines)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var sums [4]int64
		for _, l := range lines {
			q, p := rat(l.Quantity), new(big.Rat).SetFrac64(l.UnitPrice, 100)
			gross := new(big.Rat).Mul(q, p)
			net := new(big.Rat).Mul(gross, new(big.Rat).Sub(big.NewRat(1, 1), new(big.Rat).Quo(rat(l.DiscountPercent), big.NewRat(100, 1))))
			sub, nt := ratRound(gross), ratRound(net)
			tax := ratRound(new(big.Rat).Mul(new(big.Rat).SetFrac64(nt, 100), new(big.Rat).Quo(rat(l.TaxRate), big.NewRat(100, 1))))
			if l.Subtotal != sub || l.Discount != sub-nt || l.Tax != tax || l.Total != nt+tax {
				t.Fatalf("case %d: line %+v, want subtotal %d net %d tax %d", i, l, sub, nt, tax)
			}
			sums[0] += l.Subtotal
			sums[1] += l.Discount
			sums[2] += l.Tax
			sums[3] += l.Total
		}
		if tot.Subtotal.Fen() != sums[0] || tot.Discount.Fen() != sums[1] || tot.Tax.Fen() != sums[2] || tot.Total.Fen() != sums[3] {
			t.Fatalf("case %d: totals %+v, line sums %v", i, tot, sums)
		}
		if tot.Subtotal.Fen()-tot.Discount.Fen()+tot.Tax.Fen() != tot.Total.Fen() {
			t.Fatalf("case %d: %+v does not add up", i, tot)
		}
	}
}

func pow10(n int) int64 {
	p := int64(1)
	for range n {
		p *= 10
	}
	return p
}

// TestGate: missing costs and thin margins block, per category minimums
// override the global one, free-text lines never block.
func TestGate(t *testing.T) {
	pid := uuid.New()
	cost := func(fen int64) *int64 { return &fen }
	mk := func(price string, unitCost *int64, cat string) schema.QuoteLine {
		l := line("1", price, "0", "0")
		l.ProductID, l.UnitCost, l.Category = &pid, unitCost, cat
		if err := priceLine(&l); err != nil {
			t.Fatal(err)
		}
		return l
	}
	free := line("1", "10.00", "0", "0")
	_ = priceLine(&free)
	lines := []schema.QuoteLine{mk("100.00", cost(7000), ""), mk("100.00", nil, ""), mk("100.00", cost(8500), ""),
		mk("100.00", cost(8500), "硬件"), free}
	got := Gate(lines, money20(), map[string]decimalT{"硬件": decimalOf("10")})
	want := []Blocker{{lines[1].ID.String(), ReasonMissingCost}, {lines[2].ID.String(), ReasonBelowMargin}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("blockers %+v, want %+v", got, want)
	}
	m := MarginOf(lines)
	if m.Complete || m.Revenue.String() != "300.00" || m.Cost.String() != "240.00" || m.Percent.String() != "20" {
		t.Fatalf("margin %+v", m)
	}
}

type decimalT = decimal.Decimal

func decimalOf(s string) decimal.Decimal { return decimal.RequireFromString(s) }

func money20() decimal.Decimal { return decimal.NewFromInt(20) }
