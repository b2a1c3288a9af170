package httpapi_test

import (
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// recordsWorld is two teams with a rep each, a supervisor of the first
// team, an admin and an auditor.
type recordsWorld struct {
	env                            *apitest.Env
	repA, repB, sup, admin, auditr *apitest.Client
	repAID, repBID                 string
}

func newRecordsWorld(t *testing.T, url string) *recordsWorld {
	env := apitest.New(t, url)
	east := env.Team("East", nil)
	west := env.Team("West", nil)
	a, repA := env.User("rep", &east.ID)
	b, repB := env.User("rep", &west.ID)
	_, sup := env.User("supervisor", &east.ID)
	_, admin := env.User("admin", nil)
	_, auditor := env.User("auditor", nil)
	return &recordsWorld{env: env, repA: repA, repB: repB, sup: sup, admin: admin, auditr: auditor, repAID: a.ID.String(), repBID: b.ID.String()}
}

func TestRecordsCRUDAndScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		lead := w.repA.Do("POST", "/v1/leads", map[string]any{"name": "张伟", "company": "杭州华信科技有限公司", "phone": "13800138000",
			"email": "zw@huaxin.example.cn", "region": "杭州", "tags": []string{"vip", "expo"}}).Expect(201)
		l := lead.Map()
		if l["ownerId"] != w.repAID || l["placement"] != "owned" || lead.Header.Get("ETag") == "" {
			t.Fatalf("created lead %v", l)
		}
		id := l["id"].(string)
		cust := w.repA.Do("POST", "/v1/customers", map[string]any{"name": "上海锦程贸易有限公司", "grade": "B", "creditLimit": "50000"}).Expect(201).Map()
		cid := cust["id"].(string)

		tests := []struct {
			name   string
			client *apitest.Client
			path   string
			want   int
		}{
			{"owner reads his lead", w.repA, "/v1/leads/" + id, 200},
			{"other team's rep gets 404", w.repB, "/v1/leads/" + id, 404},
			{"supervisor of the owner reads it", w.sup, "/v1/leads/" + id, 200},
			{"admin reads it", w.admin, "/v1/leads/" + id, 200},
			{"auditor reads it", w.auditr, "/v1/leads/" + id, 200},
			{"owner reads his customer", w.repA, "/v1/customers/" + cid, 200},
			{"other rep gets 404 for the customer", w.repB, "/v1/customers/" + cid, 404},
			{"missing lead is 404 too", w.repA, "/v1/leads/01a20939-ff8f-757c-b1e6-f15cc81c7a20", 404},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := tc.client.Do("GET", tc.path, nil)
				if res.Status != tc.want {
					t.Fatalf("status %d, want %d: %s", res.Status, tc.want, res.Body)
				}
				if tc.want == 404 {
					res.ExpectProblem(404, "not_found")
				}
			})
		}

		// Updates: If-Match is required and must be current.
		get := w.repA.Do("GET", "/v1/leads/"+id, nil).Expect(200)
		w.repA.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "first call"}).ExpectProblem(428, "precondition_required")
		w.repA.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "x"}, "If-Match", `"v999"`).ExpectProblem(412, "precondition_failed")
		upd := w.repA.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "first call"}, "If-Match", get.Header.Get("ETag")).Expect(200)
		if upd.Map()["notes"] != "first call" || upd.Header.Get("ETag") == get.Header.Get("ETag") {
			t.Fatalf("update did not apply or ETag did not move: %s", upd.Body)
		}
		w.repA.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "stale"}, "If-Match", get.Header.Get("ETag")).ExpectProblem(412, "precondition_failed")
		w.repB.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "mine now"}, "If-Match", upd.Header.Get("ETag")).ExpectProblem(404, "not_found")
		w.auditr.Do("PATCH", "/v1/leads/"+id, map[string]any{"notes": "audit"}, "If-Match", upd.Header.Get("ETag")).ExpectProblem(403, "forbidden")

		// Server-owned fields cannot be set on create or update.
		for _, body := range []map[string]any{{"ownerId": w.repBID}, {"poolId": "01a20939-ff8f-757c-b1e6-f15cc81c7a20"}, {"createdAt": "2020-01-01T00:00:00Z"}, {"status": "invalid"}} {
			w.repA.Do("PATCH", "/v1/leads/"+id, body, "If-Match", upd.Header.Get("ETag")).ExpectProblem(400, "validation_failed")
		}
		w.repA.Do("POST", "/v1/leads", map[string]any{"name": "x", "ownerId": w.repBID}).ExpectProblem(400, "validation_failed")

		cget := w.repA.Do("GET", "/v1/customers/"+cid, nil).Expect(200)
		cu := w.repA.Do("PATCH", "/v1/customers/"+cid, map[string]any{"grade": nil, "creditLimit": "80000.5", "website": "https://jc.example.cn"},
			"If-Match", cget.Header.Get("ETag")).Expect(200).Map()
		if cu["grade"] != nil || cu["creditLimit"] != "80000.50" || cu["website"] != "https://jc.example.cn" {
			t.Fatalf("customer merge patch: %v", cu)
		}
		deal := w.repA.Do("PUT", "/v1/customers/"+cid+"/deal-status", map[string]any{"dealStatus": true}).Expect(200).Map()
		if deal["dealStatus"] != true || deal["dealAt"] == nil {
			t.Fatalf("deal status: %v", deal)
		}
		w.repB.Do("PUT", "/v1/customers/"+cid+"/deal-status", map[string]any{"dealStatus": false}).ExpectProblem(404, "not_found")
		// If-Match is optional on the deal status, but honoured when given:
		// a stale tag changes nothing, the current one goes through.
		stale := cget.Header.Get("ETag")
		w.sup.Do("PUT", "/v1/customers/"+cid+"/deal-status", map[string]any{"dealStatus": false}, "If-Match", stale).ExpectProblem(412, "precondition_failed")
		if got := w.sup.Do("GET", "/v1/customers/"+cid, nil).Expect(200).Map(); got["dealStatus"] != true {
			t.Fatalf("a stale If-Match changed the deal status: %v", got)
		}
		w.sup.Do("PUT", "/v1/customers/"+cid+"/deal-status", map[string]any{"dealStatus": false}, "If-Match", w.sup.ETag("/v1/customers/"+cid)).Expect(200)

		// Lists apply the same scope.
		var list struct {
			Items []map[string]any
			Total *int
		}
		w.repB.Do("GET", "/v1/leads?ownerId=me", nil).Expect(200).JSON(&list)
		if len(list.Items) != 0 {
			t.Fatalf("rep B lists rep A's leads: %v", list.Items)
		}
		w.sup.Do("GET", "/v1/leads?includeTotal=true", nil).Expect(200).JSON(&list)
		if len(list.Items) != 1 || list.Total == nil || *list.Total != 1 {
			t.Fatalf("supervisor list: %+v", list)
		}
	})
}

func TestRecordListsFiltersAndPages(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		regions := []string{"北京", "上海", "深圳"}
		for i := range 12 {
			w.repA.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("客户%d", i), "company": fmt.Sprintf("测试%02d科技有限公司", i),
				"phone": fmt.Sprintf("1390000%04d", i), "region": regions[i%3], "source": "website", "tags": []string{fmt.Sprintf("t%d", i%2)}}).Expect(201)
		}
		count := func(query string) int {
			var page struct {
				Items      []map[string]any
				NextCursor *string
			}
			w.repA.Do("GET", "/v1/leads?"+query, nil).Expect(200).JSON(&page)
			return len(page.Items)
		}
		tests := []struct {
			query string
			want  int
		}{
			{"", 12},
			{"region=" + url.QueryEscape("北京"), 4},
			{"tag=t1", 6},
			{"q=" + url.QueryEscape("测试03"), 1},
			{"q=" + url.QueryEscape("ＴＥＳＴ"), 0},
			{"q=" + url.QueryEscape("+86 139-0000-0005"), 1},
			{"ownerId=me&source=website", 12},
			{"ownerId=none", 0},
			{"status=invalid", 0},
			{"sort=lastFollowUpAt", 12}, // nulls last, never dropped
		}
		for _, tc := range tests {
			if got := count(tc.query); got != tc.want {
				t.Errorf("GET /v1/leads?%s: %d items, want %d", tc.query, got, tc.want)
			}
		}

		// Keyset pages cover everything once, in every sort order.
		for _, sort := range []string{"-createdAt", "createdAt", "-updatedAt", "ownedAt"} {
			seen := map[string]bool{}
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatalf("sort %s: too many pages", sort)
				}
				q := "/v1/leads?limit=5&sort=" + url.QueryEscape(sort)
				if cursor != "" {
					q += "&cursor=" + cursor
				}
				var page struct {
					Items      []map[string]any
					NextCursor *string
				}
				w.repA.Do("GET", q, nil).Expect(200).JSON(&page)
				for _, it := range page.Items {
					id := it["id"].(string)
					if seen[id] {
						t.Fatalf("sort %s: %s listed twice", sort, id)
					}
					seen[id] = true
				}
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			if len(seen) != 12 {
				t.Errorf("sort %s: %d leads over all pages, want 12", sort, len(seen))
			}
		}
		w.repA.Do("GET", "/v1/leads?cursor=bm90LWEtY3Vyc29y", nil).ExpectProblem(400, "invalid_cursor")
		w.repA.Do("GET", "/v1/leads?sort=name", nil).ExpectProblem(400, "validation_failed")
	})
}

func TestDuplicates(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		w.repA.Do("POST", "/v1/leads", map[string]any{"name": "王芳", "company": "ＡＢＣ科技有限公司", "phone": "+86 138-0013-8000", "email": "Foo@Example.com "}).Expect(201)
		tests := []struct {
			name      string
			body      map[string]any
			matchedOn string
		}{
			{"same phone in another format", map[string]any{"name": "李四", "phone": "13800138000"}, "phone"},
			{"full-width company with legal suffix", map[string]any{"name": "赵六", "company": "abc科技"}, "name"},
			{"email case and spaces", map[string]any{"name": "钱七", "email": "foo@example.com"}, "email"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := w.repB.Do("POST", "/v1/leads", tc.body)
				res.ExpectProblem(409, "duplicate")
				var body struct {
					Matches []map[string]any
				}
				res.JSON(&body)
				if len(body.Matches) != 1 || body.Matches[0]["matchedOn"] != tc.matchedOn || body.Matches[0]["kind"] != "lead" {
					t.Fatalf("matches %v", body.Matches)
				}
				// Rep B may not see rep A's lead: he learns whose it is, not its id.
				if _, hasID := body.Matches[0]["id"]; hasID || body.Matches[0]["ownerName"] == nil {
					t.Fatalf("match reveals too much or too little: %v", body.Matches[0])
				}
			})
		}
		// A customer with the same company is a duplicate across kinds.
		w.repB.Do("POST", "/v1/customers", map[string]any{"name": "ABC 科技"}).ExpectProblem(409, "duplicate")
		// The look-up reps use to avoid 撞单.
		var found struct{ Matches []map[string]any }
		w.repB.Do("GET", "/v1/duplicates?phone="+url.QueryEscape("0086 13800138000"), nil).Expect(200).JSON(&found)
		if len(found.Matches) != 1 || found.Matches[0]["poolName"] == nil {
			t.Fatalf("checkDuplicates: %v", found.Matches)
		}
		w.repA.Do("GET", "/v1/duplicates?name="+url.QueryEscape("abc科技"), nil).Expect(200).JSON(&found)
		if len(found.Matches) != 1 || found.Matches[0]["id"] == nil {
			t.Fatalf("the owner should see the id: %v", found.Matches)
		}
		w.repA.Do("GET", "/v1/duplicates", nil).ExpectProblem(400, "validation_failed")
		// Nothing was written by the refused creates.
		var all struct{ Items []map[string]any }
		w.admin.Do("GET", "/v1/leads", nil).Expect(200).JSON(&all)
		if len(all.Items) != 1 {
			t.Fatalf("refused duplicates were written: %d leads", len(all.Items))
		}
	})
}

func TestConcurrentDuplicateCreates(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		for round := range 5 {
			phone := fmt.Sprintf("+86 137-0000-%04d", round)
			var wg sync.WaitGroup
			statuses := make([]int, 8)
			for i := range statuses {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c := w.repA
					if i%2 == 1 {
						c = w.repB
					}
					statuses[i] = c.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("并发%d", i), "phone": phone}).Status
				}()
			}
			wg.Wait()
			created, dup := 0, 0
			for _, s := range statuses {
				switch s {
				case 201:
					created++
				case 409:
					dup++
				default:
					t.Fatalf("round %d: unexpected status %d", round, s)
				}
			}
			if created != 1 || dup != 7 {
				t.Fatalf("round %d: %d created, %d duplicates; want 1 and 7", round, created, dup)
			}
		}
	})
}

func TestCreateAtCapAndMasking(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		team := env.Team("Sales", nil)
		one := 1
		_, capped := env.User("rep", &team.ID, org.Caps{MaxOwnedLeads: &one})
		_, other := env.User("rep", &team.ID)
		_, admin := env.User("admin", nil)
		capped.Do("POST", "/v1/leads", map[string]any{"name": "第一", "company": "甲公司集团"}).Expect(201)
		second := capped.Do("POST", "/v1/leads", map[string]any{"name": "第二", "company": "乙有限公司", "phone": "13912345678", "email": "yi@example.cn"}).Expect(201).Map()
		if second["placement"] != "pooled" || second["ownerId"] != nil {
			t.Fatalf("create at cap: %v", second)
		}
		// The default pool shows only name and region to non-owners.
		var pools struct{ Items []map[string]any }
		admin.Do("GET", "/v1/pools?kind=lead", nil).Expect(200).JSON(&pools)
		poolID := pools.Items[0]["id"].(string)
		admin.Do("PATCH", "/v1/pools/"+poolID, map[string]any{"visibleFields": []string{"name", "region"}}, "If-Match", admin.ETag("/v1/pools/"+poolID)).Expect(200)
		seen := other.Do("GET", "/v1/leads/"+second["id"].(string), nil).Expect(200).Map()
		if seen["masked"] != true || seen["phone"] != "139****5678" || seen["email"] != "y***@example.cn" || seen["name"] != "第二" {
			t.Fatalf("masking: %v", seen)
		}
		unmasked := admin.Do("GET", "/v1/leads/"+second["id"].(string), nil).Expect(200).Map()
		if unmasked["masked"] != false || unmasked["phone"] != "13912345678" {
			t.Fatalf("admin sees masked data: %v", unmasked)
		}
	})
}
