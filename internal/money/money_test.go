package money

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"testing"

	"github.com/shopspring/decimal"
)

// apiPattern is the Money schema's pattern in openapi.yaml.
var apiPattern = regexp.MustCompile(`^-?[0-9]{1,15}(\.[0-9]{1,2})?$`)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		fen     int64
		wantErr error
	}{
		{"0", 0, nil},
		{"1234.50", 123450, nil},
		{"1234.5", 123450, nil},
		{"0.10", 10, nil},
		{"0.1", 10, nil},
		{"0.01", 1, nil},
		{"-0.01", -1, nil},
		{"-12", -1200, nil},
		{"-0", 0, nil},
		{"007.05", 705, nil},
		{"999999999999999.99", MaxFen, nil},
		{"-999999999999999.99", -MaxFen, nil},
		{"1.234", 0, ErrPrecision},
		{"0.001", 0, ErrPrecision},
		{"1.2300", 0, ErrPrecision}, // trailing zeros are still more decimals than money has
		{"1000000000000000", 0, ErrRange},
		{"9999999999999999999999", 0, ErrRange},
		{"1e3", 0, ErrSyntax},
		{"1E3", 0, ErrSyntax},
		{"", 0, ErrSyntax},
		{"-", 0, ErrSyntax},
		{".5", 0, ErrSyntax},
		{"1.", 0, ErrSyntax},
		{"+1", 0, ErrSyntax},
		{" 1", 0, ErrSyntax},
		{"1 ", 0, ErrSyntax},
		{"1,000.00", 0, ErrSyntax},
		{"１２", 0, ErrSyntax}, // full-width digits
		{"1.2x", 0, ErrSyntax},
		{"1.234x", 0, ErrSyntax},
		{"NaN", 0, ErrSyntax},
		{"--1", 0, ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got.Fen() != tt.fen {
				t.Fatalf("Parse(%q) = %d fen, %v; want %d fen", tt.in, got.Fen(), err, tt.fen)
			}
			// Whatever Parse takes the API pattern takes, and the other way round.
			if !apiPattern.MatchString(tt.in) {
				t.Fatalf("Parse took %q, which the API pattern refuses", tt.in)
			}
		})
		if tt.wantErr != nil && apiPattern.MatchString(tt.in) && !errors.Is(tt.wantErr, ErrRange) {
			t.Errorf("the API pattern takes %q, which Parse refuses", tt.in)
		}
	}
}

func TestString(t *testing.T) {
	tests := []struct {
		fen  int64
		want string
	}{
		{0, "0.00"},
		{5, "0.05"},
		{10, "0.10"},
		{123450, "1234.50"},
		{-1, "-0.01"},
		{-123400, "-1234.00"},
		{MaxFen, "999999999999999.99"},
		{-MaxFen, "-999999999999999.99"},
	}
	for _, tt := range tests {
		m := MustFen(tt.fen)
		got := m.String()
		if got != tt.want {
			t.Errorf("String(%d fen) = %q, want %q", tt.fen, got, tt.want)
		}
		if len(got) > MaxLen || !apiPattern.MatchString(got) {
			t.Errorf("String(%d fen) = %q does not fit the API schema", tt.fen, got)
		}
		if back, err := Parse(got); err != nil || back != m {
			t.Errorf("Parse(String(%d fen)) = %v, %v", tt.fen, back, err)
		}
	}
}

func TestFromFenRange(t *testing.T) {
	for _, fen := range []int64{MaxFen + 1, -MaxFen - 1, math.MaxInt64, math.MinInt64} {
		if _, err := FromFen(fen); !errors.Is(err, ErrRange) {
			t.Errorf("FromFen(%d) err = %v, want ErrRange", fen, err)
		}
	}
}

func TestJSON(t *testing.T) {
	type doc struct {
		Limit *Money `json:"limit"`
		Price Money  `json:"price"`
	}
	in := doc{Limit: new(Money), Price: MustParse("0.30")}
	*in.Limit = MustParse("1234.5")
	raw, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != `{"limit":"1234.50","price":"0.30"}` {
		t.Fatalf("marshal = %s", raw)
	}
	var out doc
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatal(err)
	}
	if out.Limit == nil || *out.Limit != *in.Limit || out.Price != in.Price {
		t.Fatalf("round trip = %+v", out)
	}
	if err := json.Unmarshal([]byte(`{"limit":null}`), &out); err != nil || out.Limit != nil {
		t.Fatalf("null: %v, %v", out.Limit, err)
	}

	refused := []struct {
		body string
		want error
	}{
		{`{"price":1234.5}`, ErrSyntax}, // a JSON number is a float on the wire
		{`{"price":1}`, ErrSyntax},
		{`{"price":"1e3"}`, ErrSyntax},
		{`{"price":"1.234"}`, ErrPrecision},
		{`{"price":true}`, ErrSyntax},
	}
	for _, tt := range refused {
		var d doc
		if err := json.Unmarshal([]byte(tt.body), &d); !errors.Is(err, tt.want) {
			t.Errorf("Unmarshal(%s) err = %v, want %v", tt.body, err, tt.want)
		}
	}
}

// The sums float64 gets wrong are exact here.
func TestArithmeticExact(t *testing.T) {
	a, b := MustParse("0.10"), MustParse("0.20")
	sum, err := a.Plus(b)
	if err != nil || sum.String() != "0.30" {
		t.Fatalf("0.10 + 0.20 = %v, %v", sum, err)
	}
	if x, y := 0.1, 0.2; x+y == 0.3 {
		t.Log("float64 got 0.1 + 0.2 right this time") // it does not: 0.30000000000000004
	}
	total, err := Sum(MustParse("19.99"), MustParse("0.01"), MustParse("-5.00"))
	if err != nil || total.String() != "15.00" {
		t.Fatalf("Sum = %v, %v", total, err)
	}
	d, err := MustParse("1.00").Minus(MustParse("1.01"))
	if err != nil || d.String() != "-0.01" || !d.IsNegative() {
		t.Fatalf("1.00 - 1.01 = %v, %v", d, err)
	}
	if _, err := MustFen(MaxFen).Plus(MustFen(1)); !errors.Is(err, ErrRange) {
		t.Fatalf("MaxFen + 1 err = %v, want ErrRange", err)
	}
	if _, err := MustFen(-MaxFen).Minus(MustFen(1)); !errors.Is(err, ErrRange) {
		t.Fatalf("-MaxFen - 1 err = %v, want ErrRange", err)
	}
	if got := MustParse("3.50").Neg(); got.String() != "-3.50" {
		t.Fatalf("Neg = %v", got)
	}
}

func TestMulQty(t *testing.T) {
	tests := []struct {
		price   string
		n       int64
		want    string
		wantErr bool
	}{
		{"19.99", 3, "59.97", false},
		{"0.01", 1000, "10.00", false},
		{"-2.50", 4, "-10.00", false},
		{"2.50", -4, "-10.00", false},
		{"0.00", math.MaxInt64, "0.00", false},
		{"999999999999999.99", 1, "999999999999999.99", false},
		{"999999999999999.99", 2, "", true},
		{"0.01", math.MaxInt64, "", true}, // would wrap int64 if multiplied first
		{"0.01", math.MinInt64, "", true},
		{"100000000.00", 100000000, "", true},
	}
	for _, tt := range tests {
		got, err := MustParse(tt.price).MulQty(tt.n)
		if tt.wantErr {
			if !errors.Is(err, ErrRange) {
				t.Errorf("%s × %d = %v, %v; want ErrRange", tt.price, tt.n, got, err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s × %d = %v, %v; want %s", tt.price, tt.n, got, err, tt.want)
		}
	}
}

// The one rounding rule: half away from zero, to the fen.
func TestRoundingRule(t *testing.T) {
	tests := []struct {
		yuan string
		want string
	}{
		{"0.005", "0.01"},
		{"0.015", "0.02"}, // half-even would give 0.02 too
		{"0.025", "0.03"}, // half-even would give 0.02
		{"0.0049999", "0.00"},
		{"-0.005", "-0.01"},
		{"-0.025", "-0.03"},
		{"-0.0049", "0.00"},
		{"1234.5650", "1234.57"},
		{"2.675", "2.68"}, // float64 would print 2.67 (2.67499999…)
	}
	for _, tt := range tests {
		got, err := Round(decimal.RequireFromString(tt.yuan))
		if err != nil || got.String() != tt.want {
			t.Errorf("Round(%s) = %v, %v; want %s", tt.yuan, got, err, tt.want)
		}
	}
	if _, err := Round(decimal.RequireFromString("1000000000000000")); !errors.Is(err, ErrRange) {
		t.Errorf("Round(1e15) err = %v, want ErrRange", err)
	}
}

func TestMulPercentAndFraction(t *testing.T) {
	tests := []struct {
		name  string
		f     func() (Money, error)
		want  string
		isErr bool
	}{
		{"13% VAT", func() (Money, error) { return MustParse("100.00").MulPercent(decimal.NewFromInt(13)) }, "13.00", false},
		{"half of 10.05", func() (Money, error) { return MustParse("10.05").MulPercent(decimal.NewFromInt(50)) }, "5.03", false},
		{"half of -10.05", func() (Money, error) { return MustParse("-10.05").MulPercent(decimal.NewFromInt(50)) }, "-5.03", false},
		{"6.5% of 0.10", func() (Money, error) { return MustParse("0.10").MulPercent(decimal.RequireFromString("6.5")) }, "0.01", false},
		{"3% of 0.10", func() (Money, error) { return MustParse("0.10").MulPercent(decimal.NewFromInt(3)) }, "0.00", false},
		{"2.5 kg at 3.33", func() (Money, error) { return MustParse("3.33").Mul(decimal.RequireFromString("2.5")) }, "8.33", false},     // 8.325
		{"0.333 kg at 9.99", func() (Money, error) { return MustParse("9.99").Mul(decimal.RequireFromString("0.333")) }, "3.33", false}, // 3.32667
		{"out of range", func() (Money, error) { return MustFen(MaxFen).MulPercent(decimal.NewFromInt(200)) }, "", true},
	}
	for _, tt := range tests {
		got, err := tt.f()
		if tt.isErr {
			if !errors.Is(err, ErrRange) {
				t.Errorf("%s: %v, %v; want ErrRange", tt.name, got, err)
			}
			continue
		}
		if err != nil || got.String() != tt.want {
			t.Errorf("%s = %v, %v; want %s", tt.name, got, err, tt.want)
		}
	}
}

func TestCmp(t *testing.T) {
	a, b := MustParse("1.00"), MustParse("1.01")
	if a.Cmp(b) != -1 || b.Cmp(a) != 1 || a.Cmp(MustFen(100)) != 0 {
		t.Fatal("Cmp")
	}
	if !Zero.IsZero() || Zero.IsNegative() || MustParse("-0.01").IsZero() {
		t.Fatal("IsZero/IsNegative")
	}
}

func TestScanValue(t *testing.T) {
	v, err := MustParse("1234.50").Value()
	if err != nil || v != int64(123450) {
		t.Fatalf("Value = %v, %v", v, err)
	}
	for _, src := range []any{int64(123450), []byte("123450"), "123450"} {
		var m Money
		if err := m.Scan(src); err != nil || m.String() != "1234.50" {
			t.Errorf("Scan(%T) = %v, %v", src, m, err)
		}
	}
	for _, src := range []any{1234.5, nil, "12.5", int64(math.MaxInt64)} {
		var m Money
		if err := m.Scan(src); err == nil {
			t.Errorf("Scan(%#v) took it: %v", src, m)
		}
	}
}

func TestFieldDescriptor(t *testing.T) {
	d := Field("credit_limit").Optional().StorageKey("credit_limit_fen").Comment("c").Descriptor()
	if d.Err != nil {
		t.Fatal(d.Err)
	}
	if !d.Optional || !d.Nillable || d.StorageKey != "credit_limit_fen" || d.Name != "credit_limit" {
		t.Fatalf("descriptor = %+v", d)
	}
	if !strings.HasSuffix(d.Info.Ident, "money.Money") || d.Info.Type.String() != "int64" {
		t.Fatalf("type = %s / %s", d.Info.Ident, d.Info.Type)
	}
	if req := Field("amount").Descriptor(); req.Optional || req.Nillable {
		t.Fatalf("Field is required by default: %+v", req)
	}
}
