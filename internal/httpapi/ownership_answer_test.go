package httpapi_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestOwnershipAnswerMatchesRead checks that what claim, assign, transfer,
// freeze and unfreeze answer (rendered from the operation's own
// transaction, not read back) is exactly what a later read returns, ETag
// included, on both engines: times at the engine's precision, the new
// version, the reclaim clock and the owner's name.
func TestOwnershipAnswerMatchesRead(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		for _, kind := range pwKinds {
			t.Run(kind, func(t *testing.T) {
				w.sub(t)
				rules := map[string]any{"idleDays": 30, "freezeMaxDays": 10}
				if kind == "customer" {
					rules["noDealDays"] = 90
				}
				pl := w.pool(kind, rules)
				rep, other := w.rep(), w.rep()
				id := w.pooled(kind, pl)
				// A freeze end with nanoseconds, which PostgreSQL cannot keep.
				until := w.clock.Now().Add(72*time.Hour + 123456789*time.Nanosecond).UTC().Format(time.RFC3339Nano)
				steps := []struct {
					name string
					who  pwActor
					op   string
					body any
				}{
					{"claim", rep, "claim", nil},
					{"freeze", rep, "freeze", map[string]any{"until": until}},
					{"unfreeze", rep, "unfreeze", nil},
					{"transfer", w.sup, "transfer", map[string]any{"ownerId": other.ID, "reason": "holiday"}},
					{"return", other, "return", map[string]any{"reason": "no budget"}},
					{"assign", w.admin, "assign", map[string]any{"ownerId": rep.ID}},
				}
				for _, st := range steps {
					w.clock.Advance(1500 * time.Millisecond) // every step at a new time
					res := w.do(st.who, kind, id, st.op, st.body).Expect(http.StatusOK)
					read := w.admin.Do("GET", "/v1/"+kind+"s/"+id, nil).Expect(http.StatusOK)
					if got, want := answerOf(t, res), answerOf(t, read); !reflect.DeepEqual(got, want) {
						t.Fatalf("%s answered\n%v\nbut a read gives\n%v", st.name, got, want)
					}
					if got, want := res.Header.Get("ETag"), read.Header.Get("ETag"); got != want || got == "" {
						t.Fatalf("%s answered ETag %q, a read %q", st.name, got, want)
					}
				}
				if r := w.get(kind, id); r.owner() != rep.ID {
					t.Fatalf("owner at the end %q, want %s", r.owner(), rep.ID)
				}
			})
		}
	})
}

// answerOf is a record's JSON as a generic map, its times parsed so that
// equal instants compare equal however they are written.
func answerOf(t *testing.T, r *apitest.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	for k, v := range m {
		if s, ok := v.(string); ok {
			if at, err := time.Parse(time.RFC3339Nano, s); err == nil {
				m[k] = at.UTC()
			}
		}
	}
	return m
}
