package httpapi_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// opPipelineBody is a createPipeline body with one stage of each kind.
func opPipelineBody(name string) map[string]any {
	return map[string]any{"name": name, "stages": []map[string]any{
		{"name": "立项", "probability": 20, "kind": "open"},
		{"name": "中标", "probability": 100, "kind": "won"},
		{"name": "未中标", "probability": 0, "kind": "lost"},
	}}
}

type opStageOut struct {
	ID, Name, Kind string
	Code           *string
	Probability    int
	Retired        bool
}

// opStages returns a pipeline's stages.
func opStages(t *testing.T, c *apitest.Client, pipeline string) []opStageOut {
	t.Helper()
	var pl struct{ Stages []opStageOut }
	c.Do("GET", "/v1/pipelines/"+pipeline, nil).Expect(http.StatusOK).JSON(&pl)
	return pl.Stages
}

// opStage is the id of a pipeline's stage whose code (or, failing that,
// kind) is key.
func opStage(t *testing.T, c *apitest.Client, pipeline, key string) string {
	t.Helper()
	for _, st := range opStages(t, c, pipeline) {
		if (st.Code != nil && *st.Code == key) || st.Kind == key {
			return st.ID
		}
	}
	t.Fatalf("pipeline %s has no stage %s", pipeline, key)
	return ""
}

type opOut struct {
	ID, StageID, StageKind, Amount, OwnerID, PipelineID string
	Probability                                         int
	ClosedAt                                            *time.Time
	LostReason                                          *string
}

// TestOpportunityThroughTheDefaultPipeline: a rep's opportunity on his
// customer walks every stage of the default pipeline, each move in its
// history; a lost stage needs a reason; winning marks the customer dealt,
// so the no-deal reclaim no longer applies; the rep's colleague does not
// see it, his supervisor does, an auditor reads it and changes nothing.
func TestOpportunityThroughTheDefaultPipeline(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newSWWorld(t, dbURL)
		pool := w.pool("customer", map[string]any{"memberTeamIds": []string{w.team.String()}, "noDealDays": 30})
		cu := w.claimed(w.repA, "customer", pool, nil)
		if r := w.get("customer", cu.ID); r.ReclaimAt == nil {
			t.Fatal("the customer has no no-deal reclaim to stop")
		}
		var pls struct {
			Items []struct {
				ID        string
				IsDefault bool
				Stages    []opStageOut
			}
		}
		w.repA.Do("GET", "/v1/pipelines", nil).Expect(http.StatusOK).JSON(&pls)
		if len(pls.Items) == 0 || !pls.Items[0].IsDefault || len(pls.Items[0].Stages) != 6 {
			t.Fatalf("pipelines %+v", pls.Items)
		}
		def := pls.Items[0]
		var codes []string
		for _, st := range def.Stages {
			codes = append(codes, *st.Code)
		}
		if !slices.Equal(codes, []string{"qualification", "needs", "proposal", "negotiation", "won", "lost"}) {
			t.Errorf("default stages %v", codes)
		}

		w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "x", "customerId": cu.ID, "amount": "1.00", "ownerId": w.repB.ID}).
			ExpectProblem(http.StatusForbidden, "forbidden")
		w.repB.Do("POST", "/v1/opportunities", map[string]any{"title": "x", "customerId": cu.ID, "amount": "1.00"}).
			ExpectProblem(http.StatusNotFound, "not_found")
		var o opOut
		w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "恒达 CRM 采购", "customerId": cu.ID, "amount": "198000.10",
			"expectedCloseDate": "2027-01-31"}).Expect(http.StatusCreated).JSON(&o)
		if o.OwnerID != w.repA.ID || o.StageID != def.Stages[0].ID || o.Probability != 10 || o.Amount != "198000.10" || o.PipelineID != def.ID {
			t.Fatalf("created %+v", o)
		}
		path := "/v1/opportunities/" + o.ID
		w.repB.Do("GET", path, nil).ExpectProblem(http.StatusNotFound, "not_found")
		w.sup.Do("GET", path, nil).Expect(http.StatusOK)
		w.admin.Do("GET", path, nil).Expect(http.StatusOK)
		_, auditor := w.env.User("auditor", nil)
		auditor.Do("GET", path, nil).Expect(http.StatusOK)
		auditor.Do("POST", path+"/stage", map[string]any{"stageId": def.Stages[1].ID}).ExpectProblem(http.StatusForbidden, "forbidden")

		for _, st := range def.Stages[1:4] {
			w.repA.Do("POST", path+"/stage", map[string]any{"stageId": st.ID}).Expect(http.StatusOK).JSON(&o)
			if o.StageID != st.ID || o.Probability != st.Probability || o.StageKind != "open" {
				t.Fatalf("at %s: %+v", st.Name, o)
			}
		}
		lost, won := def.Stages[5], def.Stages[4]
		w.repA.Do("POST", path+"/stage", map[string]any{"stageId": lost.ID}).ExpectProblem(http.StatusUnprocessableEntity, "lost_reason_required")
		w.repA.Do("POST", path+"/stage", map[string]any{"stageId": lost.ID, "lostReason": "预算取消"}).Expect(http.StatusOK).JSON(&o)
		if o.StageKind != "lost" || o.ClosedAt == nil || o.LostReason == nil {
			t.Fatalf("lost: %+v", o)
		}
		if w.get("customer", cu.ID).DealStatus {
			t.Fatal("losing dealt the customer")
		}
		o = opOut{}
		w.repA.Do("POST", path+"/stage", map[string]any{"stageId": def.Stages[3].ID}).Expect(http.StatusOK).JSON(&o)
		if o.ClosedAt != nil || o.LostReason != nil {
			t.Fatalf("reopened: %+v", o)
		}
		w.repA.Do("POST", path+"/stage", map[string]any{"stageId": won.ID}, "If-Match", `"v1"`).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")
		w.repA.Do("POST", path+"/stage", map[string]any{"stageId": won.ID}).Expect(http.StatusOK).JSON(&o)
		if o.StageKind != "won" || o.ClosedAt == nil || o.Probability != 100 {
			t.Fatalf("won: %+v", o)
		}
		c := w.get("customer", cu.ID)
		if !c.DealStatus || c.ReclaimAt != nil {
			t.Errorf("after the win the customer is dealt %t, reclaimAt %v", c.DealStatus, c.ReclaimAt)
		}
		var hist struct {
			Items []struct {
				FromStageID *string
				ToStageID   string
				LostReason  *string
			}
		}
		w.repA.Do("GET", path+"/history", nil).Expect(http.StatusOK).JSON(&hist)
		if len(hist.Items) != 7 || hist.Items[0].FromStageID != nil || hist.Items[6].ToStageID != won.ID || hist.Items[4].LostReason == nil {
			t.Errorf("history %+v", hist.Items)
		}

		// Filters.
		var page struct{ Items []opOut }
		for q, want := range map[string]int{
			"stageKind=won": 1, "stageKind=open": 0, "ownerId=me": 1, "customerId=" + cu.ID: 1, "amountMin=198000.10": 1,
			"amountMin=198000.11": 0, "expectedCloseTo=2027-01-30": 0, "expectedCloseFrom=2027-01-31": 1, "q=CRM": 1, "q=ERP": 0,
		} {
			w.repA.Do("GET", "/v1/opportunities?"+q, nil).Expect(http.StatusOK).JSON(&page)
			if len(page.Items) != want {
				t.Errorf("?%s: %d items, want %d", q, len(page.Items), want)
			}
		}
		w.repB.Do("GET", "/v1/opportunities", nil).Expect(http.StatusOK).JSON(&page)
		if len(page.Items) != 0 {
			t.Errorf("the colleague lists %d opportunities", len(page.Items))
		}
		// The feed shows the opportunity's events to those who see its
		// customer.
		evOf := func(c *apitest.Client) int {
			var feed struct {
				Items []struct {
					Type    string
					Subject struct{ ID string }
				}
			}
			c.Do("GET", "/v1/events?type=opportunity.created,opportunity.stage_changed&limit=200", nil).Expect(http.StatusOK).JSON(&feed)
			n := 0
			for _, e := range feed.Items {
				if e.Subject.ID == o.ID {
					n++
				}
			}
			return n
		}
		if a, b := evOf(w.repA.Client), evOf(w.repB.Client); a != 7 || b != 0 {
			t.Errorf("opportunity events in the feed: the owner sees %d (want 7), his colleague %d (want 0)", a, b)
		}
		for _, mt := range []string{mtCSV, mtXLSX} {
			exSame(t, "opportunities "+mt, exExport(t, w.repA.Client, "/v1/opportunities", nil, mt), exJSON(t, w.repA.Client, "/v1/opportunities", nil))
		}
	})
}

// TestPipelineStagesAndTransfers: a custom pipeline's stage in use cannot
// be removed, only retired, and a retired stage takes no opportunity; a
// customer's transfer takes its open opportunities to the new owner.
func TestPipelineStagesAndTransfers(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newSWWorld(t, dbURL)
		w.repA.Do("POST", "/v1/pipelines", opPipelineBody("项目型")).ExpectProblem(http.StatusForbidden, "forbidden")
		bad := opPipelineBody("缺赢单")
		bad["stages"] = []map[string]any{{"name": "a", "probability": 1, "kind": "open"}, {"name": "b", "probability": 1, "kind": "open"}, {"name": "c", "probability": 0, "kind": "lost"}}
		w.admin.Do("POST", "/v1/pipelines", bad).ExpectProblem(http.StatusBadRequest, "validation_failed")
		res := w.admin.Do("POST", "/v1/pipelines", opPipelineBody("项目型")).Expect(http.StatusCreated)
		pl := res.Map()["id"].(string)
		w.admin.Do("POST", "/v1/pipelines", opPipelineBody("项目型")).ExpectProblem(http.StatusConflict, "pipeline_name_taken")
		stages := opStages(t, w.admin.Client, pl)

		pool := w.pool("customer", map[string]any{"memberTeamIds": []string{w.team.String()}})
		cu := w.claimed(w.repA, "customer", pool, nil)
		var o opOut
		w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "标书", "customerId": cu.ID, "amount": "5000", "pipelineId": pl}).
			Expect(http.StatusCreated).JSON(&o)
		if o.StageID != stages[0].ID || o.Probability != 20 {
			t.Fatalf("created %+v", o)
		}

		path := "/v1/pipelines/" + pl
		without := []map[string]any{{"name": "新阶段", "probability": 40, "kind": "open"},
			{"id": stages[1].ID, "name": stages[1].Name, "probability": 100, "kind": "won"},
			{"id": stages[2].ID, "name": stages[2].Name, "probability": 0, "kind": "lost"}}
		w.admin.Do("PATCH", path, map[string]any{"stages": without}, "If-Match", w.admin.ETag(path)).ExpectProblem(http.StatusConflict, "stage_in_use")
		retired := append([]map[string]any{{"id": stages[0].ID, "name": stages[0].Name, "probability": 20, "kind": "open", "retired": true}}, without...)
		w.admin.Do("PATCH", path, map[string]any{"stages": retired}, "If-Match", w.admin.ETag(path)).Expect(http.StatusOK)
		w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "x", "customerId": cu.ID, "amount": "1", "pipelineId": pl, "stageId": stages[0].ID}).
			ExpectProblem(http.StatusUnprocessableEntity, "stage_not_open")
		w.repA.Do("GET", "/v1/opportunities/"+o.ID, nil).Expect(http.StatusOK).JSON(&o)
		if o.StageID != stages[0].ID {
			t.Errorf("the opportunity left its retired stage: %+v", o)
		}

		// A supervisor's transfer of the customer moves its open
		// opportunity; a closed one stays with its owner.
		var closed opOut
		w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "已输", "customerId": cu.ID, "amount": "1", "pipelineId": pl}).
			Expect(http.StatusCreated).JSON(&closed)
		w.repA.Do("POST", "/v1/opportunities/"+closed.ID+"/stage", map[string]any{"stageId": stages[2].ID, "lostReason": "价格"}).Expect(http.StatusOK)
		w.sup.Do("POST", "/v1/customers/"+cu.ID+"/transfer", map[string]any{"ownerId": w.repB.ID}).Expect(http.StatusOK)
		w.repB.Do("GET", "/v1/opportunities/"+o.ID, nil).Expect(http.StatusOK).JSON(&o)
		if o.OwnerID != w.repB.ID {
			t.Errorf("the open opportunity stayed with %s", o.OwnerID)
		}
		w.admin.Do("GET", "/v1/opportunities/"+closed.ID, nil).Expect(http.StatusOK).JSON(&closed)
		if closed.OwnerID != w.repA.ID {
			t.Errorf("the lost opportunity moved to %s", closed.OwnerID)
		}
		// Only a supervisor or admin names an owner.
		w.repB.Do("PATCH", "/v1/opportunities/"+o.ID, map[string]any{"ownerId": w.repA.ID}, "If-Match", "*").ExpectProblem(http.StatusForbidden, "forbidden")
		w.sup.Do("PATCH", "/v1/opportunities/"+o.ID, map[string]any{"ownerId": w.repA.ID, "probability": 55}, "If-Match", "*").Expect(http.StatusOK).JSON(&o)
		if o.OwnerID != w.repA.ID || o.Probability != 55 {
			t.Errorf("after the supervisor's update %+v", o)
		}
	})
}

// TestConcurrentStageChanges: many moves of one opportunity at once, on
// both engines, leave a history whose every entry starts where the one
// before ended, whose last entry is the opportunity's stage, and one entry
// per move that succeeded.
func TestConcurrentStageChanges(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newSWWorld(t, dbURL)
		pool := w.pool("customer", map[string]any{"memberTeamIds": []string{w.team.String()}})
		cu := w.claimed(w.repA, "customer", pool, nil)
		res := w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "race", "customerId": cu.ID, "amount": "1"}).Expect(http.StatusCreated)
		id, pl := res.Map()["id"].(string), res.Map()["pipelineId"].(string)
		stages := opStages(t, w.repA.Client, pl)
		const movers = 12
		var wg sync.WaitGroup
		ok := make([]bool, movers)
		for i := range movers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := stages[i%len(stages)]
				body := map[string]any{"stageId": st.ID}
				if st.Kind == "lost" {
					body["lostReason"] = "race"
				}
				r := w.repA.Do("POST", "/v1/opportunities/"+id+"/stage", body)
				ok[i] = r.Status == http.StatusOK
			}()
		}
		wg.Wait()
		var hist struct {
			Items []struct {
				FromStageID *string
				ToStageID   string
			}
		}
		w.repA.Do("GET", "/v1/opportunities/"+id+"/history", nil).Expect(http.StatusOK).JSON(&hist)
		for i := 1; i < len(hist.Items); i++ {
			if hist.Items[i].FromStageID == nil || *hist.Items[i].FromStageID != hist.Items[i-1].ToStageID {
				t.Fatalf("history entry %d does not start where %d ended: %+v", i, i-1, hist.Items)
			}
		}
		var o opOut
		w.repA.Do("GET", "/v1/opportunities/"+id, nil).Expect(http.StatusOK).JSON(&o)
		if last := hist.Items[len(hist.Items)-1]; last.ToStageID != o.StageID {
			t.Errorf("the last history entry ends at %s, the opportunity is at %s", last.ToStageID, o.StageID)
		}
		moved := 0
		for _, b := range ok {
			if b {
				moved++
			}
		}
		// A move to the stage it is already at succeeds without an entry.
		if len(hist.Items)-1 > moved {
			t.Errorf("%d history moves from %d successful requests", len(hist.Items)-1, moved)
		}
		won := w.get("customer", cu.ID).DealStatus
		sawWon := false
		for _, h := range hist.Items {
			if h.ToStageID == stages[4].ID {
				sawWon = true
			}
		}
		if won != sawWon {
			t.Errorf("customer dealt %t, a won move in the history %t", won, sawWon)
		}
	})
}
