package httpapi_test

import (
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// creditLimit is an exact decimal string: what is sent is what is read
// back, to the fen, including amounts a float cannot hold (0.10, 0.30,
// and 17 significant digits).
func TestCustomerCreditLimitExact(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		tests := []struct{ in, out string }{
			{"1234.50", "1234.50"},
			{"1234.5", "1234.50"},
			{"0.1", "0.10"},
			{"0.20", "0.20"},
			{"0.30", "0.30"},
			{"0", "0.00"},
			{"007.05", "7.05"},
			{"999999999999999.99", "999999999999999.99"}, // a float64 reads this back as 1e15
		}
		for _, tt := range tests {
			t.Run(tt.in, func(t *testing.T) {
				res := w.repA.Do("POST", "/v1/customers", map[string]any{"name": w.env.Unique("额度客户"), "creditLimit": tt.in}).Expect(201)
				if !strings.Contains(string(res.Body), `"creditLimit":"`+tt.out+`"`) {
					t.Fatalf("created: creditLimit is not the string %q: %s", tt.out, res.Body)
				}
				id := res.Map()["id"].(string)
				if got := w.repA.Do("GET", "/v1/customers/"+id, nil).Expect(200).Map()["creditLimit"]; got != tt.out {
					t.Fatalf("read back %v, want %q", got, tt.out)
				}
			})
		}

		// Update: a value, absent (unchanged), null (cleared).
		created := w.repA.Do("POST", "/v1/customers", map[string]any{"name": w.env.Unique("额度客户")}).Expect(201)
		c := created.Map()
		if c["creditLimit"] != nil {
			t.Fatalf("no limit given, got %v", c["creditLimit"])
		}
		id, tag := c["id"].(string), created.Header.Get("ETag")
		patch := func(body map[string]any) map[string]any {
			t.Helper()
			res := w.repA.Do("PATCH", "/v1/customers/"+id, body, "If-Match", tag).Expect(200)
			tag = res.Header.Get("ETag")
			return res.Map()
		}
		if got := patch(map[string]any{"creditLimit": "0.10"})["creditLimit"]; got != "0.10" {
			t.Fatalf("set 0.10: %v", got)
		}
		if got := patch(map[string]any{"creditLimit": "0.3"})["creditLimit"]; got != "0.30" {
			t.Fatalf("set 0.3: %v", got)
		}
		if got := patch(map[string]any{"region": "杭州"})["creditLimit"]; got != "0.30" {
			t.Fatalf("absent changed it: %v", got)
		}
		if got := patch(map[string]any{"creditLimit": nil})["creditLimit"]; got != nil {
			t.Fatalf("null did not clear it: %v", got)
		}
		if got := w.repA.Do("GET", "/v1/customers/"+id, nil).Expect(200).Map()["creditLimit"]; got != nil {
			t.Fatalf("cleared limit reads back %v", got)
		}
	})
}

// Anything but a plain non-negative amount with at most two decimals is
// a 400 validation_failed naming the field, on create and on update;
// nothing is rounded and nothing is stored.
func TestCustomerCreditLimitRefused(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		created := w.repA.Do("POST", "/v1/customers", map[string]any{"name": w.env.Unique("额度客户"), "creditLimit": "100.00"}).Expect(201)
		id, tag := created.Map()["id"].(string), created.Header.Get("ETag")
		bad := []struct {
			name string
			v    any
		}{
			{"three decimals", "1.234"},
			{"exponent", "1e3"},
			{"JSON number", 1234.5},
			{"JSON integer", 50000},
			{"negative", "-1.00"},
			{"negative cent", "-0.01"},
			{"empty", ""},
			{"grouping", "1,000.00"},
			{"full-width digits", "１２"},
			{"sixteen digits", "1000000000000000"},
			{"spaces", " 12"},
			{"bare point", ".5"},
		}
		for _, tt := range bad {
			t.Run(tt.name, func(t *testing.T) {
				p := w.repA.Do("POST", "/v1/customers", map[string]any{"name": w.env.Unique("额度客户"), "creditLimit": tt.v}).
					ExpectProblem(400, "validation_failed")
				if len(p.Errors) == 0 || p.Errors[0].Field != "body/creditLimit" {
					t.Fatalf("create: errors %+v, want body/creditLimit", p.Errors)
				}
				p = w.repA.Do("PATCH", "/v1/customers/"+id, map[string]any{"creditLimit": tt.v}, "If-Match", tag).
					ExpectProblem(400, "validation_failed")
				if len(p.Errors) == 0 || p.Errors[0].Field != "body/creditLimit" {
					t.Fatalf("update: errors %+v, want body/creditLimit", p.Errors)
				}
			})
		}
		get := w.repA.Do("GET", "/v1/customers/"+id, nil).Expect(200)
		if got := get.Map()["creditLimit"]; got != "100.00" || get.Header.Get("ETag") != tag {
			t.Fatalf("a refused update changed the customer: %v, ETag %s → %s", got, tag, get.Header.Get("ETag"))
		}
	})
}
