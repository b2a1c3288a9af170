package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestProductCatalogue: supervisors and admins manage the catalogue
// (SKUs unique without regard to case or spaces, exact money, If-Match,
// filters); reps and auditors read it and cannot change it.
func TestProductCatalogue(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		team := env.Team(env.Unique("t"), nil)
		_, sup := env.User("supervisor", &team.ID)
		_, rep := env.User("rep", &team.ID)
		_, auditor := env.User("auditor", nil)

		body := map[string]any{"sku": " crm-pro-1y ", "name": "客户管理系统专业版", "category": "软件", "unit": "套",
			"listPrice": "19800.00", "internalCost": "6200.05"}
		rep.Do("POST", "/v1/products", body).ExpectProblem(http.StatusForbidden, "forbidden")
		auditor.Do("POST", "/v1/products", body).ExpectProblem(http.StatusForbidden, "forbidden")
		res := sup.Do("POST", "/v1/products", body).Expect(http.StatusCreated)
		pr := res.Map()
		if pr["sku"] != "crm-pro-1y" || pr["listPrice"] != "19800.00" || pr["internalCost"] != "6200.05" || pr["margin"] != "13599.95" || pr["active"] != true {
			t.Fatalf("created %s", res.Body)
		}
		id := pr["id"].(string)
		sup.Do("POST", "/v1/products", map[string]any{"sku": "CRM-PRO-1Y", "name": "again", "listPrice": "1"}).
			ExpectProblem(http.StatusConflict, "sku_taken")
		sup.Do("POST", "/v1/products", map[string]any{"sku": "X-1", "name": "bad", "listPrice": "1.005"}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		sup.Do("POST", "/v1/products", map[string]any{"sku": "X-2", "name": "neg", "listPrice": "-1.00"}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		other := sup.Do("POST", "/v1/products", map[string]any{"sku": "SVC-1", "name": "实施服务", "category": "服务", "listPrice": "5000"}).
			Expect(http.StatusCreated).Map()

		path := "/v1/products/" + id
		rep.Do("PATCH", path, map[string]any{"listPrice": "1.00"}, "If-Match", "*").ExpectProblem(http.StatusForbidden, "forbidden")
		sup.Do("PATCH", path, map[string]any{"listPrice": "18800.10"}).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")
		up := sup.Do("PATCH", path, map[string]any{"listPrice": "18800.10", "unit": nil}, "If-Match", sup.ETag(path)).Expect(http.StatusOK).Map()
		if up["listPrice"] != "18800.10" || up["margin"] != "12600.05" || up["unit"] != nil {
			t.Errorf("updated %v", up)
		}
		sup.Do("PATCH", path, map[string]any{"sku": "svc-1"}, "If-Match", sup.ETag(path)).ExpectProblem(http.StatusConflict, "sku_taken")
		sup.Do("PATCH", "/v1/products/"+other["id"].(string), map[string]any{"active": false}, "If-Match", "*").Expect(http.StatusOK)

		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", []string{"SVC-1", "crm-pro-1y"}},
			{"q=PRO", []string{"crm-pro-1y"}},
			{"q=" + url.QueryEscape("实施"), []string{"SVC-1"}},
			{"category=" + url.QueryEscape("软件"), []string{"crm-pro-1y"}},
			{"active=true", []string{"crm-pro-1y"}},
			{"active=false", []string{"SVC-1"}},
		} {
			var page struct{ Items []struct{ Sku string } }
			rep.Do("GET", "/v1/products?"+tc.query, nil).Expect(http.StatusOK).JSON(&page)
			var got []string
			for _, it := range page.Items {
				got = append(got, it.Sku)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("?%s: %v, want %v", tc.query, got, tc.want)
			}
		}
		auditor.Do("GET", path, nil).Expect(http.StatusOK)
		sup.Do("GET", "/v1/products/"+team.ID.String(), nil).ExpectProblem(http.StatusNotFound, "not_found")
	})
}

// TestProductCostNeverReachesReps: a product's internal cost and margin
// are in a supervisor's JSON, CSV and XLSX, and in none of a rep's or an
// auditor's, nor in any error or event they can read.
func TestProductCostNeverReachesReps(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		team := env.Team(env.Unique("t"), nil)
		_, sup := env.User("supervisor", &team.ID)
		_, rep := env.User("rep", &team.ID)
		_, auditor := env.User("auditor", nil)
		const cost, margin = "7777.31", "4568.69"
		res := sup.Do("POST", "/v1/products", map[string]any{"sku": "SEC-1", "name": "保密成本", "listPrice": "12346.00", "internalCost": cost}).
			Expect(http.StatusCreated)
		id := res.Map()["id"].(string)
		if !strings.Contains(string(res.Body), cost) || !strings.Contains(string(res.Body), margin) {
			t.Fatalf("the supervisor does not see the cost: %s", res.Body)
		}
		for _, mt := range []string{mtCSV, mtXLSX} {
			ex := exExport(t, sup, "/v1/products", url.Values{}, mt)
			if !slices.Contains(ex.header, "internalCost") || !slices.Contains(ex.header, "margin") {
				t.Errorf("%s: the supervisor's export lacks the cost: %v", mt, ex.header)
			}
			exSame(t, "supervisor "+mt, ex, exJSON(t, sup, "/v1/products", nil))
		}
		for name, c := range map[string]*apitest.Client{"rep": rep, "auditor": auditor} {
			bodies := [][]byte{
				c.Do("GET", "/v1/products/"+id, nil).Expect(http.StatusOK).Body,
				c.Do("GET", "/v1/products", nil).Expect(http.StatusOK).Body,
				c.Do("GET", "/v1/products?q=SEC", nil).Expect(http.StatusOK).Body,
				c.Do("PATCH", "/v1/products/"+id, map[string]any{"internalCost": "1.00"}, "If-Match", "*").Expect(http.StatusForbidden).Body,
				c.Do("GET", "/v1/events?limit=200", nil).Expect(http.StatusOK).Body,
			}
			for _, mt := range []string{mtCSV, mtXLSX} {
				ex := exExport(t, c, "/v1/products", url.Values{}, mt)
				if slices.Contains(ex.header, "internalCost") || slices.Contains(ex.header, "margin") {
					t.Errorf("%s's %s export has cost columns: %v", name, mt, ex.header)
				}
				exSame(t, name+" "+mt, ex, exJSON(t, c, "/v1/products", nil))
				for _, row := range ex.rows {
					bodies = append(bodies, []byte(strings.Join(row, ",")))
				}
			}
			for _, b := range bodies {
				s := string(b)
				if strings.Contains(s, cost) || strings.Contains(s, margin) || strings.Contains(s, "internalCost") {
					t.Errorf("%s sees the cost: %s", name, s)
				}
			}
		}
	})
}
