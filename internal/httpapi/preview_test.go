package httpapi_test

import (
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestPreviewPoolRules(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		team := env.Team("Sales", nil)
		_, rep := env.User("rep", &team.ID)
		_, admin := env.User("admin", nil)
		_, sup := env.User("supervisor", &team.ID)
		var pools struct{ Items []map[string]any }
		admin.Do("GET", "/v1/pools?kind=lead", nil).Expect(200).JSON(&pools)
		poolID := pools.Items[0]["id"].(string)
		admin.Do("PATCH", "/v1/pools/"+poolID, map[string]any{"idleDays": 10}, "If-Match", admin.ETag("/v1/pools/"+poolID)).Expect(200)
		lead := rep.Do("POST", "/v1/leads", map[string]any{"name": "预览", "company": "预览公司"}).Expect(201).Map()
		before := admin.Do("GET", "/v1/leads/"+lead["id"].(string), nil).Expect(200).Map()

		var preview struct {
			Scanned int
			Items   []map[string]any
		}
		admin.Do("POST", "/v1/pools/"+poolID+"/preview", map[string]any{"idleDays": 3}).Expect(200).JSON(&preview)
		if preview.Scanned != 1 || len(preview.Items) != 1 {
			t.Fatalf("preview: %+v", preview)
		}
		it := preview.Items[0]
		cur, _ := time.Parse(time.RFC3339Nano, it["currentReclaimAt"].(string))
		next, _ := time.Parse(time.RFC3339Nano, it["proposedReclaimAt"].(string))
		if d := cur.Sub(next); d != 7*24*time.Hour || it["proposedReason"] != "idle" {
			t.Fatalf("preview moved the deadline by %v: %v", d, it)
		}
		// Switching the rule off leaves no proposed deadline.
		admin.Do("POST", "/v1/pools/"+poolID+"/preview", map[string]any{"idleDays": nil}).Expect(200).JSON(&preview)
		if len(preview.Items) != 1 || preview.Items[0]["proposedReclaimAt"] != nil {
			t.Fatalf("preview with the rule off: %+v", preview.Items)
		}
		// Nothing was saved.
		after := admin.Do("GET", "/v1/leads/"+lead["id"].(string), nil).Expect(200).Map()
		pool := admin.Do("GET", "/v1/pools/"+poolID, nil).Expect(200).Map()
		if after["reclaimAt"] != before["reclaimAt"] || pool["idleDays"] != float64(10) {
			t.Fatalf("preview changed something: lead %v, pool %v", after["reclaimAt"], pool["idleDays"])
		}
		// Only the pool's managers and admins may preview.
		sup.Do("POST", "/v1/pools/"+poolID+"/preview", map[string]any{"idleDays": 3}).ExpectProblem(403, "wrong_pool")
		rep.Do("POST", "/v1/pools/"+poolID+"/preview", map[string]any{"idleDays": 3}).ExpectProblem(403, "forbidden")
	})
}
