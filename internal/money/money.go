// Package money is Shoal's one representation of an amount of money (CNY):
// a whole number of fen (分, 0.01 yuan) in an int64.
//
//   - In the API an amount is a decimal string with at most two decimals,
//     "1234.50", matching the spec's Money schema
//     (^-?[0-9]{1,15}(\.[0-9]{1,2})?$). Output always has two decimals.
//     A JSON number is refused: a binary float cannot carry 0.10 exactly.
//   - In storage it is a BIGINT column of fen (see Field): exact on SQLite
//     and PostgreSQL alike, indexable, and SUM() in SQL stays exact.
//   - Input is never rounded: more than two decimals is an error
//     (ErrPrecision), so what a client sends is what is stored.
//   - Where arithmetic yields fractions of a fen (a percentage, a
//     fractional quantity) the one rounding rule is half away from zero
//     (四舍五入): 0.005 → 0.01, -0.005 → -0.01, 0.0049 → 0.00. Every
//     module rounds through Round, so the rule lives in one place.
//   - Every value stays within ±999 999 999 999 999.99 (15 integer
//     digits, what the API pattern admits); arithmetic that would leave
//     that range returns ErrRange instead of wrapping.
package money

import (
	"bytes"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/shopspring/decimal"
)

// MaxFen is the largest amount in fen: 999 999 999 999 999.99 yuan, the
// most the API pattern admits. It is far below int64's limit, so Add and
// Sub of two in-range amounts cannot overflow before the range check.
const MaxFen int64 = 99_999_999_999_999_999

// MaxLen is the longest API string: a sign, 15 digits, a point, 2 digits.
const MaxLen = 19

// The errors Parse and the arithmetic return; match them with errors.Is.
var (
	// ErrSyntax: not a plain decimal (exponents, spaces, a plus sign, a
	// bare point, a JSON number, …).
	ErrSyntax = errors.New("money: not a decimal amount like 1234.50")
	// ErrPrecision: more than two decimals; money input is never rounded.
	ErrPrecision = errors.New("money: more than two decimals")
	// ErrRange: beyond ±999999999999999.99.
	ErrRange = errors.New("money: amount out of range")
)

// Money is an exact amount in fen. The zero value is 0.00.
type Money struct{ fen int64 }

// Zero is 0.00.
var Zero = Money{}

// FromFen returns fen fen as Money; ErrRange beyond MaxFen.
func FromFen(fen int64) (Money, error) {
	if fen > MaxFen || fen < -MaxFen {
		return Money{}, fmt.Errorf("%w: %d fen", ErrRange, fen)
	}
	return Money{fen: fen}, nil
}

// MustFen is FromFen for constants in code and tests; it panics out of range.
func MustFen(fen int64) Money {
	m, err := FromFen(fen)
	if err != nil {
		panic(err)
	}
	return m
}

// MustParse is Parse for constants in code and tests; it panics on error.
func MustParse(s string) Money {
	m, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Fen is the amount in fen.
func (m Money) Fen() int64 { return m.fen }

// Parse reads an API amount: an optional minus, 1 to 15 digits, and
// optionally a point followed by 1 or 2 digits. Anything else is refused,
// never rounded.
func Parse(s string) (Money, error) {
	i, neg := 0, false
	if i < len(s) && s[i] == '-' {
		neg, i = true, i+1
	}
	start := i
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	intDigits := i - start
	if intDigits == 0 {
		return Money{}, fmt.Errorf("%w: %q", ErrSyntax, truncate(s))
	}
	var frac int64
	if i < len(s) && s[i] == '.' {
		i++
		fs := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		n := i - fs
		switch {
		case n == 0:
			return Money{}, fmt.Errorf("%w: %q", ErrSyntax, truncate(s))
		case i == len(s) && n > 2:
			return Money{}, fmt.Errorf("%w: %q", ErrPrecision, truncate(s))
		}
		if n <= 2 {
			v, _ := strconv.ParseInt(s[fs:i], 10, 64)
			if n == 1 {
				v *= 10
			}
			frac = v
		}
	}
	if i != len(s) {
		return Money{}, fmt.Errorf("%w: %q", ErrSyntax, truncate(s))
	}
	if intDigits > 15 {
		return Money{}, fmt.Errorf("%w: %q", ErrRange, truncate(s))
	}
	whole, err := strconv.ParseInt(s[start:start+intDigits], 10, 64)
	if err != nil { // cannot happen with at most 15 digits
		return Money{}, fmt.Errorf("%w: %q", ErrSyntax, truncate(s))
	}
	fen := whole*100 + frac
	if neg {
		fen = -fen
	}
	return FromFen(fen)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func truncate(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// String is the API form: always two decimals, "-" for negatives, no
// grouping: "1234.50", "0.05", "-12.00".
func (m Money) String() string {
	fen := m.fen
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen // in range, so never math.MinInt64
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}

// MarshalJSON writes the API string.
func (m Money) MarshalJSON() ([]byte, error) { return []byte(`"` + m.String() + `"`), nil }

// UnmarshalJSON reads the API string. A JSON number is refused
// (ErrSyntax) on purpose: it was a float on the way here. A JSON null
// leaves m unchanged, as encoding/json does for other types.
func (m *Money) UnmarshalJSON(b []byte) error {
	if bytes.Equal(b, []byte("null")) {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %s", ErrSyntax, truncate(string(b)))
	}
	v, err := Parse(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// Value stores the amount as integer fen.
func (m Money) Value() (driver.Value, error) { return m.fen, nil }

// Scan reads integer fen. NULL is handled by the caller (ent wraps a
// nillable column in sql.NullScanner); a NULL reaching here is an error,
// as is any non-integer, so a wrong column type fails loudly.
func (m *Money) Scan(src any) error {
	switch v := src.(type) {
	case int64:
		out, err := FromFen(v)
		if err != nil {
			return err
		}
		*m = out
		return nil
	case []byte:
		return m.scanText(string(v))
	case string:
		return m.scanText(v)
	default:
		return fmt.Errorf("money: cannot scan %T as fen", src)
	}
}

// scanText accepts an integer sent as text (some drivers do for BIGINT).
func (m *Money) scanText(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("money: cannot scan %q as fen", truncate(s))
	}
	return m.Scan(n)
}

// Decimal is the amount in yuan as an exact decimal.
func (m Money) Decimal() decimal.Decimal { return decimal.New(m.fen, -2) }

// Round turns an exact decimal amount in yuan into Money by the one
// rounding rule, half away from zero to the fen. ErrRange if the result
// is out of range.
func Round(yuan decimal.Decimal) (Money, error) {
	fen := yuan.Shift(2).Round(0) // shopspring's Round is half away from zero
	if fen.GreaterThan(decimal.NewFromInt(MaxFen)) || fen.LessThan(decimal.NewFromInt(-MaxFen)) {
		return Money{}, fmt.Errorf("%w: %s", ErrRange, yuan.String())
	}
	return Money{fen: fen.IntPart()}, nil
}

// Plus returns m + o; ErrRange out of range.
//
// It is not called Add on purpose: ent takes a GoType's Add method for a
// database-side increment (UPDATE … SET x = x + ?), which would bypass the
// range check; without one, ent generates no AddX for money columns.
func (m Money) Plus(o Money) (Money, error) { return FromFen(m.fen + o.fen) }

// Minus returns m - o; ErrRange out of range.
func (m Money) Minus(o Money) (Money, error) { return FromFen(m.fen - o.fen) }

// Neg returns -m (always in range: the range is symmetric).
func (m Money) Neg() Money { return Money{fen: -m.fen} }

// Sum adds amounts; ErrRange as soon as a partial sum leaves the range.
func Sum(ms ...Money) (Money, error) {
	var out Money
	for _, x := range ms {
		var err error
		if out, err = out.Plus(x); err != nil {
			return Money{}, err
		}
	}
	return out, nil
}

// MulQty returns m × n for a whole quantity (a price times units); exact,
// ErrRange out of range (checked before multiplying, so it never wraps).
func (m Money) MulQty(n int64) (Money, error) {
	if m.fen != 0 && n != 0 {
		if n > MaxFen || n < -MaxFen || abs(m.fen) > MaxFen/abs(n) {
			return Money{}, fmt.Errorf("%w: %s × %d", ErrRange, m, n)
		}
	}
	return FromFen(m.fen * n)
}

// Mul returns m × q for a fractional quantity (2.5 kg), rounded by the
// one rule.
func (m Money) Mul(q decimal.Decimal) (Money, error) { return Round(m.Decimal().Mul(q)) }

// MulPercent returns m × p% (a 13% tax, a 5% discount) rounded by the one
// rule: MustParse("10.05").MulPercent(decimal.NewFromInt(50)) is 5.03.
func (m Money) MulPercent(p decimal.Decimal) (Money, error) {
	return Round(m.Decimal().Mul(p).Shift(-2))
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// Cmp compares: -1 if m < o, 0 if equal, +1 if m > o.
func (m Money) Cmp(o Money) int {
	switch {
	case m.fen < o.fen:
		return -1
	case m.fen > o.fen:
		return 1
	}
	return 0
}

// IsNegative reports m < 0.
func (m Money) IsNegative() bool { return m.fen < 0 }

// IsZero reports m == 0.
func (m Money) IsZero() bool { return m.fen == 0 }
