package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// hoRun is a Handover as the API answers it.
type hoRun struct {
	ID, FromUserID, Status string
	ToUserID               *string
	Kinds                  []string
	Counts                 map[string]struct{ Moved, Overflow int }
	Overflow               []struct{ Kind, RecordID, PoolID string }
	FinishedAt             *string
}

// hoOwned creates a record of kind owned by c (its creator) and returns its id.
func hoOwned(t *testing.T, c *apitest.Client, kind string, contacts int) string {
	t.Helper()
	var r struct {
		ID      string
		OwnerID *string
	}
	c.Do("POST", "/v1/"+kind+"s", map[string]any{"name": kind + " " + strings.Repeat("x", contacts+1)}).Expect(http.StatusCreated).JSON(&r)
	if r.OwnerID == nil {
		t.Fatalf("%s not owned by its creator", kind)
	}
	for range contacts {
		c.Do("POST", "/v1/customers/"+r.ID+"/contacts", map[string]any{"name": "Contact"}).Expect(http.StatusCreated)
	}
	return r.ID
}

// hoHistory is the operations of a record's history, in order.
func hoHistory(t *testing.T, c *apitest.Client, kind, id string) []string {
	t.Helper()
	var page struct{ Items []struct{ Operation string } }
	c.Do("GET", "/v1/"+kind+"s/"+id+"/history", nil).Expect(http.StatusOK).JSON(&page)
	var ops []string
	for _, e := range page.Items {
		ops = append(ops, e.Operation)
	}
	return ops
}

func hoCount(ops []string, op string) int {
	n := 0
	for _, o := range ops {
		if o == op {
			n++
		}
	}
	return n
}

// TestHandoverContract walks the leaver handover over HTTP: a rep owning
// leads and customers (with contacts) cannot be deactivated as he is; his
// supervisor hands everything to a colleague with room for one more lead,
// and getHandover reports the two leads that went back to their pool; each
// record has one handover in its history; a second handover moves
// nothing; scope hides both operations from a supervisor of another team.
func TestHandoverContract(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		team := env.Team("sales", nil).ID
		otherTeam := env.Team("elsewhere", nil).ID
		_, admin := env.User(auth.RoleAdmin, nil)
		_, sup := env.User(auth.RoleSupervisor, &team)
		_, other := env.User(auth.RoleSupervisor, &otherTeam)
		leaverU, leaver := env.User(auth.RoleRep, &team)
		two := 2
		targetU, target := env.User(auth.RoleRep, &team, org.Caps{MaxOwnedLeads: &two})
		hoOwned(t, target, "lead", 0) // one of his two
		leads := []string{hoOwned(t, leaver, "lead", 0), hoOwned(t, leaver, "lead", 0), hoOwned(t, leaver, "lead", 0)}
		customers := []string{hoOwned(t, leaver, "customer", 2), hoOwned(t, leaver, "customer", 0)}
		userPath := "/v1/users/" + leaverU.ID.String()

		// He owns records: no plain deactivation.
		admin.Do("PATCH", userPath, map[string]any{"active": false}, "If-Match", admin.ETag(userPath)).
			ExpectProblem(http.StatusConflict, "user_owns_records")

		body := map[string]any{"toUserId": targetU.ID.String(), "reason": "leaves the company"}
		other.Do("POST", userPath+"/handover", body).ExpectProblem(http.StatusNotFound, "not_found")
		leaver.Do("POST", userPath+"/handover", body).ExpectProblem(http.StatusForbidden, "forbidden")
		sup.Do("POST", userPath+"/handover", map[string]any{"toUserId": targetU.ID.String(), "toPoolId": targetU.ID.String(), "reason": "x"}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")

		res := sup.Do("POST", userPath+"/handover", body).Expect(http.StatusAccepted)
		var run hoRun
		res.JSON(&run)
		if run.Status != "queued" || run.FromUserID != leaverU.ID.String() || len(run.Kinds) != 2 ||
			res.Header.Get("Location") != "/v1/handovers/"+run.ID {
			t.Fatalf("queued %s, Location %q", res.Body, res.Header.Get("Location"))
		}
		other.Do("GET", "/v1/handovers/"+run.ID, nil).ExpectProblem(http.StatusNotFound, "not_found")

		env.WorkJobs()
		sup.Do("GET", "/v1/handovers/"+run.ID, nil).Expect(http.StatusOK).JSON(&run)
		if run.Status != "done" || run.FinishedAt == nil {
			t.Fatalf("run %+v", run)
		}
		if c := run.Counts["lead"]; c.Moved != 1 || c.Overflow != 2 {
			t.Errorf("lead counts %+v, want 1 moved and 2 overflow", c)
		}
		if c := run.Counts["customer"]; c.Moved != 2 || c.Overflow != 0 {
			t.Errorf("customer counts %+v, want 2 moved", c)
		}
		if len(run.Overflow) != 2 {
			t.Fatalf("overflow %+v", run.Overflow)
		}
		for _, o := range run.Overflow {
			var l struct {
				OwnerID *string
				PoolID  string
			}
			admin.Do("GET", "/v1/leads/"+o.RecordID, nil).Expect(http.StatusOK).JSON(&l)
			if o.Kind != "lead" || l.OwnerID != nil || l.PoolID != o.PoolID {
				t.Errorf("overflow %+v: lead %+v, want pooled where reported", o, l)
			}
		}
		for kind, ids := range map[string][]string{"lead": leads, "customer": customers} {
			for _, id := range ids {
				if ops := hoHistory(t, admin, kind, id); hoCount(ops, "handover") != 1 {
					t.Errorf("%s %s history %v, want one handover", kind, id, ops)
				}
			}
		}
		var contacts struct{ Items []struct{ ID string } }
		target.Do("GET", "/v1/customers/"+customers[0]+"/contacts", nil).Expect(http.StatusOK).JSON(&contacts)
		if len(contacts.Items) != 2 {
			t.Errorf("the new owner sees %d contacts, want 2", len(contacts.Items))
		}

		// Again: nothing moves.
		var again hoRun
		sup.Do("POST", userPath+"/handover", body).Expect(http.StatusAccepted).JSON(&again)
		env.WorkJobs()
		sup.Do("GET", "/v1/handovers/"+again.ID, nil).Expect(http.StatusOK).JSON(&again)
		if again.Status != "done" || again.Counts["lead"].Moved+again.Counts["lead"].Overflow+
			again.Counts["customer"].Moved+again.Counts["customer"].Overflow != 0 || len(again.Overflow) != 0 {
			t.Errorf("re-run %+v, want done with nothing moved", again)
		}
		for _, id := range leads {
			if ops := hoHistory(t, admin, "lead", id); hoCount(ops, "handover") != 1 {
				t.Errorf("lead %s history %v after the re-run, want one handover", id, ops)
			}
		}
		// He owns nothing now: a plain deactivation goes through.
		admin.Do("PATCH", userPath, map[string]any{"active": false}, "If-Match", admin.ETag(userPath)).Expect(http.StatusOK)
	})
}

// TestDeactivateWithHandover: updateUser deactivates a user who owns
// records when the same request hands them over (or forces), and refuses
// handover or force without deactivation.
func TestDeactivateWithHandover(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		team := env.Team("sales", nil).ID
		_, admin := env.User(auth.RoleAdmin, nil)
		leaverU, leaver := env.User(auth.RoleRep, &team)
		ld := hoOwned(t, leaver, "lead", 0)
		path := "/v1/users/" + leaverU.ID.String()
		var pools struct {
			Items []struct {
				ID        string
				IsDefault bool
			}
		}
		admin.Do("GET", "/v1/pools?kind=lead", nil).Expect(http.StatusOK).JSON(&pools)
		var leadPool string
		for _, p := range pools.Items {
			if p.IsDefault {
				leadPool = p.ID
			}
		}

		admin.Do("PATCH", path, map[string]any{"force": true}, "If-Match", admin.ETag(path)).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		admin.Do("PATCH", path, map[string]any{"active": false}, "If-Match", admin.ETag(path)).
			ExpectProblem(http.StatusConflict, "user_owns_records")
		var u struct{ Active bool }
		admin.Do("PATCH", path, map[string]any{"active": false, "handover": map[string]any{"toPoolId": leadPool, "kinds": []string{"lead"}, "reason": "leaves"}},
			"If-Match", admin.ETag(path)).Expect(http.StatusOK).JSON(&u)
		if u.Active {
			t.Fatal("still active")
		}
		env.WorkJobs()
		var l struct{ OwnerID *string }
		admin.Do("GET", "/v1/leads/"+ld, nil).Expect(http.StatusOK).JSON(&l)
		if l.OwnerID != nil {
			t.Errorf("lead still owned by %s", *l.OwnerID)
		}
		if ops := hoHistory(t, admin, "lead", ld); hoCount(ops, "handover") != 1 {
			t.Errorf("history %v, want one handover", ops)
		}

		// force: deactivated, the record stays his.
		keeperU, keeper := env.User(auth.RoleRep, &team)
		kept := hoOwned(t, keeper, "lead", 0)
		kpath := "/v1/users/" + keeperU.ID.String()
		admin.Do("PATCH", kpath, map[string]any{"active": false, "force": true}, "If-Match", admin.ETag(kpath)).Expect(http.StatusOK)
		admin.Do("GET", "/v1/leads/"+kept, nil).Expect(http.StatusOK).JSON(&l)
		if l.OwnerID == nil || *l.OwnerID != keeperU.ID.String() {
			t.Errorf("forced deactivation moved the lead to %v", l.OwnerID)
		}
	})
}
