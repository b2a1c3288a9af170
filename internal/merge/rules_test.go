package merge

import (
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/kinds"
)

func TestCheck(t *testing.T) {
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	many := make([]uuid.UUID, MaxMerged+1)
	for i := range many {
		many[i] = uuid.New()
	}
	for _, tc := range []struct {
		name  string
		kind  kinds.Kind
		in    Input
		field string // "" when valid
	}{
		{"valid", kinds.Lead, Input{Survivor: a, Merged: []uuid.UUID{b, c}, Fields: map[string]uuid.UUID{"phone": b, "name": a}}, ""},
		{"none merged", kinds.Lead, Input{Survivor: a}, "body/mergedIds"},
		{"too many", kinds.Lead, Input{Survivor: a, Merged: many}, "body/mergedIds"},
		{"survivor merged", kinds.Lead, Input{Survivor: a, Merged: []uuid.UUID{b, a}}, "body/mergedIds"},
		{"repeated", kinds.Lead, Input{Survivor: a, Merged: []uuid.UUID{b, b}}, "body/mergedIds"},
		{"field from outside", kinds.Lead, Input{Survivor: a, Merged: []uuid.UUID{b}, Fields: map[string]uuid.UUID{"phone": c}}, "body/fields/phone"},
		{"not a lead field", kinds.Lead, Input{Survivor: a, Merged: []uuid.UUID{b}, Fields: map[string]uuid.UUID{"address": b}}, "body/fields/address"},
		{"ownership is no field", kinds.Customer, Input{Survivor: a, Merged: []uuid.UUID{b}, Fields: map[string]uuid.UUID{"ownerId": b}}, "body/fields/ownerId"},
		{"customer field", kinds.Customer, Input{Survivor: a, Merged: []uuid.UUID{b}, Fields: map[string]uuid.UUID{"creditLimit": b}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			order, err := tc.in.check(tc.kind)
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if len(order) != len(tc.in.Merged)+1 {
					t.Fatalf("order %v", order)
				}
				for i := 1; i < len(order); i++ {
					if strings.Compare(order[i-1].String(), order[i].String()) >= 0 {
						t.Fatalf("not in lock order: %v", order)
					}
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Code != "validation_failed" || len(e.Fields) != 1 || e.Fields[0].Field != tc.field {
				t.Fatalf("err %v, want validation_failed on %s", err, tc.field)
			}
		})
	}
}

func TestCheckStatus(t *testing.T) {
	for _, tc := range []struct {
		status   string
		survivor bool
		code     string
	}{
		{"active", true, ""}, {"invalid", true, "record_invalid"}, {"converted", true, "merge_converted"},
		{"active", false, ""}, {"invalid", false, ""}, {"converted", false, "merge_converted"},
	} {
		err := checkStatus(tc.status, tc.survivor)
		if got := codeOf(err); got != tc.code {
			t.Errorf("%s (survivor %v): %q, want %q", tc.status, tc.survivor, got, tc.code)
		}
	}
}

func codeOf(err error) string {
	if e, ok := apperr.As(err); ok {
		return e.Code
	}
	return ""
}
