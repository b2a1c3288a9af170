package httpapi_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestConcurrentClaimsAnswerAlreadyOwned: of 15 members claiming one
// pooled lead at once, one gets it and every other gets 409
// already_owned, whether his claim read the lead before or after the
// winner committed.
func TestConcurrentClaimsAnswerAlreadyOwned(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		team := env.Team(env.Unique("Claimers "), nil)
		_, admin := env.User("admin", nil)
		poolID := admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": env.Unique("Race pool "),
			"memberTeamIds": []string{team.ID.String()}}).Expect(http.StatusCreated).Map()["id"].(string)
		reps := make([]*apitest.Client, 15)
		for i := range reps {
			_, reps[i] = env.User("rep", &team.ID)
		}
		for round := range 2 {
			id := admin.Do("POST", "/v1/leads", map[string]any{"name": "抢", "poolId": poolID}).Expect(http.StatusCreated).Map()["id"].(string)
			start := make(chan struct{})
			replies := make([]*apitest.Response, len(reps))
			var wg sync.WaitGroup
			for i, c := range reps {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					replies[i] = c.Do("POST", "/v1/leads/"+id+"/claim", nil)
				}()
			}
			close(start)
			wg.Wait()
			won, lost := 0, 0
			for i, r := range replies {
				switch {
				case r.Status == http.StatusOK:
					won++
				case r.Status == http.StatusConflict && r.Problem().Code == "already_owned":
					lost++
				default:
					t.Errorf("round %d claim %d: %d %s", round, i, r.Status, r.Body)
				}
			}
			if won != 1 || lost != len(reps)-1 {
				t.Fatalf("round %d: %d × 200 and %d × 409 already_owned, want 1 and %d", round, won, lost, len(reps)-1)
			}
		}
	})
}

// TestClaimOfOwnedRecord: a claim of a record another rep owns is 409
// already_owned for a member of its pool (whether it is frozen or not, and
// without owner details), 404 for anyone outside the pool; batch claims
// answer the same per item.
func TestClaimOfOwnedRecord(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		east := env.Team(env.Unique("East "), nil)
		west := env.Team(env.Unique("West "), nil)
		_, admin := env.User("admin", nil)
		_, owner := env.User("rep", &east.ID)
		_, member := env.User("rep", &east.ID)
		_, outsider := env.User("rep", &west.ID)
		eastPool := admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": env.Unique("East pool "),
			"memberTeamIds": []string{east.ID.String()}, "freezeMaxDays": 30}).Expect(http.StatusCreated).Map()["id"].(string)

		pooled := func() string {
			return admin.Do("POST", "/v1/leads", map[string]any{"name": "已领", "poolId": eastPool}).Expect(http.StatusCreated).Map()["id"].(string)
		}
		taken, frozen := pooled(), pooled()
		owner.Do("POST", "/v1/leads/"+taken+"/claim", nil).Expect(http.StatusOK)
		owner.Do("POST", "/v1/leads/"+frozen+"/claim", nil).Expect(http.StatusOK)
		owner.Do("POST", "/v1/leads/"+frozen+"/freeze", map[string]any{}).Expect(http.StatusOK)

		for name, id := range map[string]string{"owned": taken, "frozen": frozen} {
			res := member.Do("POST", "/v1/leads/"+id+"/claim", nil)
			p := res.ExpectProblem(http.StatusConflict, "already_owned")
			if len(p.Errors) != 0 {
				t.Errorf("%s: the refusal carries details %+v", name, p.Errors)
			}
			outsider.Do("POST", "/v1/leads/"+id+"/claim", nil).ExpectProblem(http.StatusNotFound, "not_found")
		}
		// The member still cannot read it: the 409 is all he learns.
		member.Do("GET", "/v1/leads/"+taken, nil).ExpectProblem(http.StatusNotFound, "not_found")

		type item struct {
			ID   string  `json:"id"`
			OK   bool    `json:"ok"`
			Code *string `json:"code"`
		}
		batch := func(c *apitest.Client) map[string]string {
			var out struct {
				Results []item `json:"results"`
			}
			c.Do("POST", "/v1/leads/batch-claim", map[string]any{"ids": []string{taken, frozen}}).Expect(http.StatusOK).JSON(&out)
			codes := map[string]string{}
			for _, r := range out.Results {
				if r.OK || r.Code == nil {
					t.Fatalf("batch item %+v succeeded", r)
				}
				codes[r.ID] = *r.Code
			}
			return codes
		}
		if got := batch(member); got[taken] != "already_owned" || got[frozen] != "already_owned" {
			t.Errorf("member's batch claim: %v, want already_owned for both", got)
		}
		if got := batch(outsider); got[taken] != "not_found" || got[frozen] != "not_found" {
			t.Errorf("outsider's batch claim: %v, want not_found for both", got)
		}
	})
}
