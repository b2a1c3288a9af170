package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ---- helpers shared by the contact and follow-up tests ----

// cfWorld is an organisation for the contact and follow-up tests: team
// East with supervisor supEast and reps repA and repB, team West with
// supervisor supWest, an admin and an auditor.
type cfWorld struct {
	env                                          *apitest.Env
	admin, auditor, supEast, supWest, repA, repB *apitest.Client
	repAID, repBID, supEastID                    uuid.UUID
}

func newCFWorld(t *testing.T, databaseURL string) *cfWorld {
	t.Helper()
	env := apitest.New(t, databaseURL)
	east := env.Team("East", nil)
	west := env.Team("West", nil)
	w := &cfWorld{env: env}
	_, w.admin = env.User("admin", nil)
	_, w.auditor = env.User("auditor", nil)
	supE, supEast := env.User("supervisor", &east.ID)
	_, w.supWest = env.User("supervisor", &west.ID)
	repA, repAC := env.User("rep", &east.ID)
	repB, repBC := env.User("rep", &east.ID)
	w.supEast, w.repA, w.repB = supEast, repAC, repBC
	w.repAID, w.repBID, w.supEastID = repA.ID, repB.ID, supE.ID
	return w
}

// record creates a lead or customer as c (owned by c unless poolID is
// set) and returns its id.
func (w *cfWorld) record(c *apitest.Client, kind string, poolID *uuid.UUID, fields ...any) string {
	w.env.T.Helper()
	body := map[string]any{"name": w.env.Unique("Acme ")}
	for i := 0; i+1 < len(fields); i += 2 {
		body[fields[i].(string)] = fields[i+1]
	}
	if poolID != nil {
		body["poolId"] = poolID.String()
	}
	return c.Do("POST", "/v1/"+kind+"s", body).Expect(http.StatusCreated).Map()["id"].(string)
}

// contact creates a contact of customer as c and returns it.
func (w *cfWorld) contact(c *apitest.Client, customer string, body map[string]any) contactItem {
	w.env.T.Helper()
	if _, ok := body["name"]; !ok {
		body["name"] = w.env.Unique("王伟")
	}
	var ct contactItem
	c.Do("POST", "/v1/customers/"+customer+"/contacts", body).Expect(http.StatusCreated).JSON(&ct)
	return ct
}

type contactItem struct {
	ID         string    `json:"id"`
	CustomerID string    `json:"customerId"`
	Name       string    `json:"name"`
	Title      *string   `json:"title"`
	Phone      *string   `json:"phone"`
	Email      *string   `json:"email"`
	Wechat     *string   `json:"wechat"`
	Notes      *string   `json:"notes"`
	IsPrimary  bool      `json:"isPrimary"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

type contactPage struct {
	Items      []contactItem `json:"items"`
	NextCursor *string       `json:"nextCursor"`
}

func listContacts(t *testing.T, c *apitest.Client, customer string, query url.Values) contactPage {
	t.Helper()
	var p contactPage
	c.Do("GET", "/v1/customers/"+customer+"/contacts?"+query.Encode(), nil).Expect(http.StatusOK).JSON(&p)
	return p
}

func cfStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// ---- contacts ----

func TestContactCRUD(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		cust := w.record(w.repA, "customer", nil)

		created := w.contact(w.repA, cust, map[string]any{"name": " 李娜 ", "title": "采购经理", "phone": "139 0000 1111",
			"email": "Li.Na@Example.com", "wechat": "lina_wx", "notes": "prefers mornings"})
		if created.CustomerID != cust || created.Name != "李娜" || cfStr(created.Title) != "采购经理" ||
			cfStr(created.Phone) != "139 0000 1111" || cfStr(created.Email) != "Li.Na@Example.com" ||
			cfStr(created.Wechat) != "lina_wx" || cfStr(created.Notes) != "prefers mornings" || created.IsPrimary {
			t.Fatalf("created contact %+v", created)
		}
		if created.CreatedAt.IsZero() || !created.CreatedAt.Equal(created.UpdatedAt) {
			t.Fatalf("timestamps %v / %v", created.CreatedAt, created.UpdatedAt)
		}

		var got contactItem
		w.repA.Do("GET", "/v1/contacts/"+created.ID, nil).Expect(http.StatusOK).JSON(&got)
		if got.ID != created.ID || got.Name != "李娜" || cfStr(got.Email) != "Li.Na@Example.com" {
			t.Fatalf("get contact %+v", got)
		}

		var upd contactItem
		w.repA.Do("PATCH", "/v1/contacts/"+created.ID, map[string]any{"title": "总监", "email": ""}, "If-Match", w.repA.ETag("/v1/contacts/"+created.ID)).Expect(http.StatusOK).JSON(&upd)
		if cfStr(upd.Title) != "总监" || upd.Email != nil || upd.Name != "李娜" || cfStr(upd.Phone) != "139 0000 1111" {
			t.Fatalf("updated contact %+v", upd)
		}
		if upd.UpdatedAt.Before(created.UpdatedAt) {
			t.Fatalf("updatedAt went back: %v < %v", upd.UpdatedAt, created.UpdatedAt)
		}
		w.repA.Do("PATCH", "/v1/contacts/"+created.ID, map[string]any{"email": "not an email"}, "If-Match", w.repA.ETag("/v1/contacts/"+created.ID)).ExpectProblem(http.StatusBadRequest, "validation_failed")
		w.repA.Do("PATCH", "/v1/contacts/"+created.ID, map[string]any{}, "If-Match", w.repA.ETag("/v1/contacts/"+created.ID)).Expect(http.StatusBadRequest)

		// Pages of two, in creation (id) order.
		second := w.contact(w.repA, cust, map[string]any{})
		third := w.contact(w.repA, cust, map[string]any{})
		p1 := listContacts(t, w.repA, cust, url.Values{"limit": {"2"}})
		if len(p1.Items) != 2 || p1.Items[0].ID != created.ID || p1.Items[1].ID != second.ID || p1.NextCursor == nil {
			t.Fatalf("page 1: %+v", p1)
		}
		p2 := listContacts(t, w.repA, cust, url.Values{"limit": {"2"}, "cursor": {*p1.NextCursor}})
		if len(p2.Items) != 1 || p2.Items[0].ID != third.ID || p2.NextCursor != nil {
			t.Fatalf("page 2: %+v", p2)
		}
		w.repA.Do("GET", "/v1/customers/"+cust+"/contacts?cursor=forged", nil).ExpectProblem(http.StatusBadRequest, "invalid_cursor")

		w.repA.Do("DELETE", "/v1/contacts/"+created.ID, nil, "If-Match", w.repA.ETag("/v1/contacts/"+created.ID)).Expect(http.StatusNoContent)
		w.repA.Do("GET", "/v1/contacts/"+created.ID, nil).ExpectProblem(http.StatusNotFound, "not_found")
		w.repA.Do("DELETE", "/v1/contacts/"+created.ID, nil, "If-Match", "*").ExpectProblem(http.StatusNotFound, "not_found")
		if n := len(listContacts(t, w.repA, cust, nil).Items); n != 2 {
			t.Fatalf("%d contacts after delete, want 2", n)
		}

		// Unknown customer and contact.
		missing := uuid.Must(uuid.NewV7()).String()
		w.repA.Do("GET", "/v1/customers/"+missing+"/contacts", nil).ExpectProblem(http.StatusNotFound, "not_found")
		w.repA.Do("POST", "/v1/customers/"+missing+"/contacts", map[string]any{"name": "x"}).ExpectProblem(http.StatusNotFound, "not_found")
		w.repA.Do("PATCH", "/v1/contacts/"+missing, map[string]any{"name": "x"}, "If-Match", "*").ExpectProblem(http.StatusNotFound, "not_found")
	})
}

func TestContactScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		cust := w.record(w.repA, "customer", nil)
		existing := w.contact(w.repA, cust, map[string]any{})

		cases := []struct {
			name   string
			c      *apitest.Client
			read   int    // GET contact and list
			change int    // create, update, delete
			code   string // problem code of a refused change
		}{
			{"owner", w.repA, 200, 0, ""},
			{"other rep", w.repB, 404, 404, "not_found"},
			{"supervisor of the owner", w.supEast, 200, 0, ""},
			{"supervisor of another team", w.supWest, 404, 404, "not_found"},
			{"admin", w.admin, 200, 0, ""},
			{"auditor", w.auditor, 200, 403, "forbidden"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := tc.c.Do("GET", "/v1/contacts/"+existing.ID, nil)
				if res.Status != tc.read {
					t.Fatalf("get: %d, want %d: %s", res.Status, tc.read, res.Body)
				}
				res = tc.c.Do("GET", "/v1/customers/"+cust+"/contacts", nil)
				if res.Status != tc.read {
					t.Fatalf("list: %d, want %d: %s", res.Status, tc.read, res.Body)
				}
				if tc.read == 404 {
					res.ExpectProblem(404, "not_found")
				}
				if tc.change != 0 {
					tc.c.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "x"}).ExpectProblem(tc.change, tc.code)
					tc.c.Do("PATCH", "/v1/contacts/"+existing.ID, map[string]any{"name": "x"}, "If-Match", "*").ExpectProblem(tc.change, tc.code)
					tc.c.Do("DELETE", "/v1/contacts/"+existing.ID, nil, "If-Match", "*").ExpectProblem(tc.change, tc.code)
					return
				}
				ct := w.contact(tc.c, cust, map[string]any{})
				tc.c.Do("PATCH", "/v1/contacts/"+ct.ID, map[string]any{"title": "CTO"}, "If-Match", tc.c.ETag("/v1/contacts/"+ct.ID)).Expect(http.StatusOK)
				tc.c.Do("DELETE", "/v1/contacts/"+ct.ID, nil, "If-Match", tc.c.ETag("/v1/contacts/"+ct.ID)).Expect(http.StatusNoContent)
			})
		}

		// A pooled customer: any member rep sees its contacts, masked, but
		// only its pool's managers (here the admin) change them.
		ctx := context.Background()
		err := w.env.App.Store.Client.Pool.UpdateOneID(pool.DefaultPoolID("customer")).
			SetVisibleFields([]string{"name"}).Exec(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pooled := w.record(w.admin, "customer", cfPtr(pool.DefaultPoolID("customer")))
		pc := w.contact(w.admin, pooled, map[string]any{"name": "赵敏", "phone": "13912345678", "email": "zhao@example.com",
			"wechat": "zhaomin", "notes": "secret", "title": "CEO"})
		var masked contactItem
		w.repB.Do("GET", "/v1/contacts/"+pc.ID, nil).Expect(http.StatusOK).JSON(&masked)
		if masked.Name != "赵敏" || cfStr(masked.Phone) != "139****5678" || cfStr(masked.Email) != "z***@example.com" ||
			cfStr(masked.Wechat) != "z**" || cfStr(masked.Notes) != "s**" || cfStr(masked.Title) != "CEO" {
			t.Fatalf("masked contact %+v", masked)
		}
		if items := listContacts(t, w.repB, pooled, nil).Items; len(items) != 1 || cfStr(items[0].Phone) != "139****5678" {
			t.Fatalf("masked list %+v", items)
		}
		var clear contactItem
		w.admin.Do("GET", "/v1/contacts/"+pc.ID, nil).Expect(http.StatusOK).JSON(&clear)
		if cfStr(clear.Phone) != "13912345678" || cfStr(clear.Email) != "zhao@example.com" {
			t.Fatalf("admin sees %+v", clear)
		}
		w.repB.Do("POST", "/v1/customers/"+pooled+"/contacts", map[string]any{"name": "x"}).ExpectProblem(http.StatusForbidden, "not_record_owner")
		w.repB.Do("PATCH", "/v1/contacts/"+pc.ID, map[string]any{"name": "x"}, "If-Match", "*").ExpectProblem(http.StatusForbidden, "not_record_owner")
		w.repB.Do("DELETE", "/v1/contacts/"+pc.ID, nil, "If-Match", "*").ExpectProblem(http.StatusForbidden, "not_record_owner")
	})
}

func cfPtr[T any](v T) *T { return &v }

// cfDupMatch is one entry of a 409 duplicate's matches.
type cfDupMatch struct {
	Kind       string  `json:"kind"`
	ID         *string `json:"id"`
	CustomerID *string `json:"customerId"`
	OwnerName  *string `json:"ownerName"`
	MatchedOn  string  `json:"matchedOn"`
}

func cfDuplicates(t *testing.T, res *apitest.Response) []cfDupMatch {
	t.Helper()
	res.ExpectProblem(http.StatusConflict, "duplicate")
	var body struct{ Matches []cfDupMatch }
	res.JSON(&body)
	if len(body.Matches) == 0 {
		t.Fatalf("duplicate without matches: %s", res.Body)
	}
	return body.Matches
}

func TestContactDuplicates(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		lead := w.record(w.repA, "lead", nil, "phone", "+86 138-0013-8000")
		cust := w.record(w.repA, "customer", nil)
		other := w.record(w.repB, "customer", nil)

		// A contact's phone against a lead's, in another format.
		m := cfDuplicates(t, w.repA.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "张三", "phone": "13800138000"}))
		if m[0].Kind != "lead" || m[0].MatchedOn != "phone" || m[0].ID == nil || *m[0].ID != lead {
			t.Fatalf("matches %+v", m)
		}
		// Rep B may not see the lead: he learns its owner, not its id.
		m = cfDuplicates(t, w.repB.Do("POST", "/v1/customers/"+other+"/contacts", map[string]any{"name": "张三", "phone": "0086 13800138000"}))
		if m[0].Kind != "lead" || m[0].ID != nil || m[0].OwnerName == nil {
			t.Fatalf("matches for another rep %+v", m)
		}

		// A lead's email against a contact's, and contact against contact.
		ct := w.contact(w.repA, cust, map[string]any{"email": "buyer@example.com", "phone": "13700000001"})
		m = cfDuplicates(t, w.repA.Do("POST", "/v1/leads", map[string]any{"name": "x", "email": "BUYER@Example.com"}))
		if m[0].Kind != "contact" || m[0].MatchedOn != "email" || m[0].ID == nil || *m[0].ID != ct.ID ||
			m[0].CustomerID == nil || *m[0].CustomerID != cust {
			t.Fatalf("matches %+v", m)
		}
		cfDuplicates(t, w.repB.Do("POST", "/v1/customers/"+other+"/contacts", map[string]any{"name": "y", "email": "buyer@example.com"}))

		// Updates: to someone else's phone is a duplicate; keeping its own is not.
		second := w.contact(w.repA, cust, map[string]any{"phone": "13700000002"})
		cfDuplicates(t, w.repA.Do("PATCH", "/v1/contacts/"+second.ID, map[string]any{"phone": "137-0000-0001"}, "If-Match", w.repA.ETag("/v1/contacts/"+second.ID)))
		w.repA.Do("PATCH", "/v1/contacts/"+second.ID, map[string]any{"phone": "+86 137 0000 0002"}, "If-Match", w.repA.ETag("/v1/contacts/"+second.ID)).Expect(http.StatusOK)

		// A changed phone releases the old one; a deleted contact its keys.
		w.repA.Do("PATCH", "/v1/contacts/"+second.ID, map[string]any{"phone": "13700000003"}, "If-Match", w.repA.ETag("/v1/contacts/"+second.ID)).Expect(http.StatusOK)
		w.contact(w.repB, other, map[string]any{"phone": "13700000002"})
		w.repA.Do("DELETE", "/v1/contacts/"+ct.ID, nil, "If-Match", w.repA.ETag("/v1/contacts/"+ct.ID)).Expect(http.StatusNoContent)
		w.contact(w.repB, other, map[string]any{"email": "buyer@example.com", "phone": "13700000001"})
	})
}

func TestContactPrimary(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		cust := w.record(w.repA, "customer", nil)
		primaries := func() []string {
			t.Helper()
			var ids []string
			for _, c := range listContacts(t, w.repA, cust, nil).Items {
				if c.IsPrimary {
					ids = append(ids, c.ID)
				}
			}
			return ids
		}
		a := w.contact(w.repA, cust, map[string]any{"isPrimary": true})
		b := w.contact(w.repA, cust, map[string]any{"isPrimary": true})
		w.contact(w.repA, cust, map[string]any{"isPrimary": false})
		if p := primaries(); len(p) != 1 || p[0] != b.ID {
			t.Fatalf("primaries %v, want [%s]", p, b.ID)
		}
		w.repA.Do("PATCH", "/v1/contacts/"+a.ID, map[string]any{"isPrimary": true}, "If-Match", w.repA.ETag("/v1/contacts/"+a.ID)).Expect(http.StatusOK)
		if p := primaries(); len(p) != 1 || p[0] != a.ID {
			t.Fatalf("primaries %v, want [%s]", p, a.ID)
		}
		w.repA.Do("PATCH", "/v1/contacts/"+a.ID, map[string]any{"isPrimary": false}, "If-Match", w.repA.ETag("/v1/contacts/"+a.ID)).Expect(http.StatusOK)
		if p := primaries(); len(p) != 0 {
			t.Fatalf("primaries %v, want none", p)
		}
		// Another customer's primary is unaffected.
		other := w.record(w.repA, "customer", nil)
		o := w.contact(w.repA, other, map[string]any{"isPrimary": true})
		w.contact(w.repA, cust, map[string]any{"isPrimary": true})
		var got contactItem
		w.repA.Do("GET", "/v1/contacts/"+o.ID, nil).Expect(http.StatusOK).JSON(&got)
		if !got.IsPrimary {
			t.Fatal("another customer's primary contact was demoted")
		}

		// Concurrent "make primary" requests leave exactly one primary.
		var wg sync.WaitGroup
		statuses := make(chan int, 8)
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := w.repA.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "c" + string(rune('a'+i)), "isPrimary": true})
				statuses <- res.Status
			}()
		}
		wg.Wait()
		close(statuses)
		for s := range statuses {
			if s != http.StatusCreated {
				t.Fatalf("concurrent create: %d", s)
			}
		}
		if p := primaries(); len(p) != 1 {
			t.Fatalf("%d primaries after concurrent creates, want 1", len(p))
		}
	})
}
