package opportunities

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
)

func TestCheckStages(t *testing.T) {
	old := []schema.Stage{{ID: uuid.New(), Name: "a", Kind: KindOpen}}
	st := func(name, kind string, prob int) StageInput {
		return StageInput{Name: name, Kind: kind, Probability: prob}
	}
	keep := st("a2", KindOpen, 10)
	keep.ID = &old[0].ID
	stranger := st("x", KindOpen, 10)
	other := uuid.New()
	stranger.ID = &other
	again := st("a3", KindOpen, 10)
	again.ID = &old[0].ID
	retiredWon := st("w", KindWon, 100)
	retiredWon.Retired = true
	for _, tc := range []struct {
		name  string
		in    []StageInput
		field string // the refused field; "" when accepted
	}{
		{"one of each kind", []StageInput{st("o", KindOpen, 10), st("w", KindWon, 100), st("l", KindLost, 0)}, ""},
		{"keeps an old id", []StageInput{keep, st("w", KindWon, 100), st("l", KindLost, 0)}, ""},
		{"no won stage", []StageInput{st("o", KindOpen, 10), st("o2", KindOpen, 10), st("l", KindLost, 0)}, "body/stages"},
		{"only a retired won stage", []StageInput{st("o", KindOpen, 10), retiredWon, st("l", KindLost, 0)}, "body/stages"},
		{"duplicate name", []StageInput{st("o", KindOpen, 10), st("o", KindWon, 100), st("l", KindLost, 0)}, "body/stages/1/name"},
		{"blank name", []StageInput{st(" ", KindOpen, 10), st("w", KindWon, 100), st("l", KindLost, 0)}, "body/stages/0/name"},
		{"probability over 100", []StageInput{st("o", KindOpen, 101), st("w", KindWon, 100), st("l", KindLost, 0)}, "body/stages/0/probability"},
		{"unknown kind", []StageInput{st("o", "maybe", 10), st("w", KindWon, 100), st("l", KindLost, 0)}, "body/stages/0/kind"},
		{"an id of another pipeline", []StageInput{stranger, st("w", KindWon, 100), st("l", KindLost, 0)}, "body/stages/0/id"},
		{"an id twice", []StageInput{keep, again, st("w", KindWon, 100), st("l", KindLost, 0)}, "body/stages/1/id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := checkStages(tc.in, old)
			if tc.field == "" {
				if err != nil || len(out) != len(tc.in) {
					t.Fatalf("refused: %v", err)
				}
				if tc.in[0].ID != nil && out[0].ID != *tc.in[0].ID {
					t.Errorf("the old id was not kept")
				}
				return
			}
			var e *apperr.Error
			if !errors.As(err, &e) || len(e.Fields) != 1 || e.Fields[0].Field != tc.field {
				t.Fatalf("got %v, want a refusal of %s", err, tc.field)
			}
		})
	}
}
