package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestLongTextsAreCharactersNotBytes: the contract counts characters, so
// a text at its maximum in 4-byte characters (𠮷, 800 bytes for 200) is
// taken, on both engines, and one character more is a 400, never a 500.
func TestLongTextsAreCharactersNotBytes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		text := func(n int) string { return strings.Repeat("𠮷", n) }
		cu := w.owned(w.repA, "customer")
		for _, c := range []struct {
			name string
			do   func(n int) int
			max  int
		}{
			{"lead name", func(n int) int {
				return w.repA.Do("POST", "/v1/leads", map[string]any{"name": text(n), "company": text(n)}).Status
			}, 200},
			{"customer name and address", func(n int) int {
				return w.repA.Do("POST", "/v1/customers", map[string]any{"name": strings.Repeat("𡃁", n), "address": text(n), "industry": text(n)}).Status
			}, 200},
			{"product name", func(n int) int {
				return w.sup.Do("POST", "/v1/products", map[string]any{"sku": w.env.Unique("L"), "name": text(n), "listPrice": "1.00"}).Status
			}, 200},
			{"opportunity title", func(n int) int {
				return w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": text(n), "customerId": cu.ID, "amount": "1.00"}).Status
			}, 200},
			{"quote title", func(n int) int {
				return w.repA.Do("POST", "/v1/quotes", map[string]any{"title": text(n), "customerId": cu.ID,
					"lines": []any{map[string]any{"name": text(n), "unitPrice": "1.00", "quantity": "1"}}}).Status
			}, 200},
			{"team name", func(n int) int {
				return w.admin.Do("POST", "/v1/teams", map[string]any{"name": text(n)}).Status
			}, 200},
		} {
			if got := c.do(c.max); got != http.StatusCreated {
				t.Errorf("%s of %d characters: %d", c.name, c.max, got)
			}
			if got := c.do(c.max + 1); got != http.StatusBadRequest {
				t.Errorf("%s of %d characters: %d, want 400", c.name, c.max+1, got)
			}
		}
	})
}
