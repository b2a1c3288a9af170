package patch

import "testing"

func TestOrZeroOrNil(t *testing.T) {
	if OrZero(Field[string]{}) != nil || OrNil(Field[int]{}) != nil {
		t.Fatal("an absent field must read as nil (unchanged)")
	}
	if v := OrZero(Null[string]()); v == nil || *v != "" {
		t.Fatalf("null must read as the zero value (cleared), got %v", v)
	}
	if OrNil(Null[int]()) != nil {
		t.Fatal("null must read as nil for nil-stored inputs")
	}
	if v := OrZero(Value("x")); v == nil || *v != "x" {
		t.Fatalf("a value must read as itself, got %v", v)
	}
}
