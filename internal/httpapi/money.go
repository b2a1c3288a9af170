package httpapi

import (
	"errors"

	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
)

// moneyIn reads an API amount. The contract's pattern already refuses
// most bad input; this is the exact parse, and its refusals come out as
// the same 400 validation_failed the contract check gives.
func moneyIn(field string, s api.Money) (money.Money, error) {
	m, err := money.Parse(s)
	if err == nil {
		return m, nil
	}
	code := "pattern"
	if errors.Is(err, money.ErrRange) {
		code = "maximum"
	}
	return money.Money{}, &apperr.Error{Kind: apperr.Invalid, Code: "validation_failed", Message: field + ": " + err.Error(),
		Fields: []apperr.FieldError{{Field: field, Code: code, Message: err.Error()}}, Err: err}
}

// moneyField reads a nullable amount of a merge patch.
func moneyField(field string, n nullable.Nullable[api.Money]) (patch.Field[money.Money], error) {
	if !n.IsSpecified() {
		return patch.Field[money.Money]{}, nil
	}
	if n.IsNull() {
		return patch.Null[money.Money](), nil
	}
	m, err := moneyIn(field, n.MustGet())
	if err != nil {
		return patch.Field[money.Money]{}, err
	}
	return patch.Value(m), nil
}

// moneyOut renders a stored amount; a missing one is null.
func moneyOut(m *money.Money) nullable.Nullable[api.Money] {
	if m == nil {
		return nullable.NewNullNullable[api.Money]()
	}
	return nullable.NewNullableWithValue(m.String())
}
