package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/jobs"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// anyVersion is If-Match: * (these tests are about jobs, not versions).
var anyVersion = "*"

func TestMain(m *testing.M) { os.Exit(apitest.Main(m)) }

// testConfig polls at the minimum, so tests wait little for a job.
func testConfig() app.Config {
	return app.Config{Clock: &clock.Adjustable{}, Jobs: jobs.Config{PollInterval: jobs.MinPollInterval}}
}

// rejudgeJobs are the re-judge jobs of poolID in any state.
func rejudgeJobs(t *testing.T, env *apitest.Env, poolID uuid.UUID) []jobs.RejudgeArgs {
	t.Helper()
	rows, err := env.App.Jobs.List(context.Background(), jobs.RejudgeArgs{}.Kind())
	if err != nil {
		t.Fatal(err)
	}
	var out []jobs.RejudgeArgs
	for _, r := range rows {
		var a jobs.RejudgeArgs
		if err := json.Unmarshal(r.EncodedArgs, &a); err != nil {
			t.Fatal(err)
		}
		if a.PoolID == poolID {
			out = append(out, a)
		}
	}
	return out
}

// world is an admin and a rep owning a lead in the default lead pool.
type world struct {
	env    *apitest.Env
	admin  *apitest.Client
	adminP *auth.Principal
	rep    *apitest.Client
	poolID uuid.UUID
	lead   string
}

func newWorld(t *testing.T, env *apitest.Env) *world {
	t.Helper()
	a, admin := env.User("admin", nil)
	_, rep := env.User("rep", nil)
	w := &world{env: env, admin: admin, rep: rep, poolID: pool.DefaultPoolID("lead"),
		adminP: &auth.Principal{Type: auth.ActorUser, ID: a.ID, Name: a.Name, Role: auth.RoleAdmin}}
	// The queue is not started here: once started it works jobs in the
	// background, and the tests must see a rule change before its job ran.
	// The lead below is taken under the new rules anyway.
	w.admin.Do("PATCH", "/v1/pools/"+w.poolID.String(), map[string]any{"idleDays": 30}, "If-Match", w.admin.ETag("/v1/pools/"+w.poolID.String())).Expect(http.StatusOK)
	w.lead = rep.Do("POST", "/v1/leads", map[string]any{"name": "Job lead", "company": "Job Co"}).Expect(http.StatusCreated).Map()["id"].(string)
	return w
}

// deadline is how long after it was taken the lead's stored reclaim
// deadline falls.
func (w *world) deadline(t *testing.T) time.Duration {
	t.Helper()
	var r struct {
		OwnedAt   time.Time  `json:"ownedAt"`
		ReclaimAt *time.Time `json:"reclaimAt"`
	}
	w.admin.Do("GET", "/v1/leads/"+w.lead, nil).Expect(http.StatusOK).JSON(&r)
	if r.ReclaimAt == nil {
		t.Fatal("owned lead without a deadline")
	}
	return r.ReclaimAt.Sub(r.OwnedAt).Round(time.Hour)
}

// idle changes the pool's idle days through UpdatePool, in a request whose
// transaction fails at the last moment when fail is set.
func (w *world) idle(t *testing.T, days int, fail bool) error {
	t.Helper()
	ctx := context.Background()
	if fail {
		ctx = store.WithTxObserver(ctx, failingObserver{})
	}
	_, err := w.env.App.Pools.UpdatePool(ctx, w.adminP, w.poolID, &anyVersion, pool.PoolInput{Kind: "lead", IdleDays: patch.Value(days)})
	return err
}

var errLastMoment = errors.New("the transaction fails after its body")

// failingObserver fails every transaction after its body succeeded, as a
// failed commit would: the body's work, the job included, is rolled back.
type failingObserver struct{}

func (failingObserver) BodyStarts(context.Context) {}
func (failingObserver) BeforeCommit(context.Context, *ent.Tx) (func(bool), error) {
	return nil, errLastMoment
}

// TestRejudgeEnqueuedInTx: the re-judge job is part of the rule change's
// transaction: a rolled-back change leaves no job, a committed one exactly
// one, and until it is worked the stored deadline is the old one.
func TestRejudgeEnqueuedInTx(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url, apitest.Options{Config: testConfig()})
		w := newWorld(t, env)
		before := len(rejudgeJobs(t, env, w.poolID))
		if d := w.deadline(t); d != 30*24*time.Hour {
			t.Fatalf("deadline %s after taking, want 30 days", d)
		}

		if err := w.idle(t, 5, true); !errors.Is(err, errLastMoment) {
			t.Fatalf("failing update: %v", err)
		}
		if n := len(rejudgeJobs(t, env, w.poolID)); n != before {
			t.Fatalf("%d re-judge jobs after a rolled-back rule change, want %d", n, before)
		}

		if err := w.idle(t, 5, false); err != nil {
			t.Fatal(err)
		}
		got := rejudgeJobs(t, env, w.poolID)
		if len(got) != before+1 {
			t.Fatalf("%d re-judge jobs after a committed rule change, want %d", len(got), before+1)
		}
		pl, err := env.App.Store.Reader.Pool.Get(context.Background(), w.poolID)
		if err != nil {
			t.Fatal(err)
		}
		if last := got[len(got)-1]; last.RuleVersion != pl.RuleVersion {
			t.Fatalf("job for rule version %d, pool at %d", last.RuleVersion, pl.RuleVersion)
		}
		// Not re-judged inline: the job does it.
		if d := w.deadline(t); d != 30*24*time.Hour {
			t.Fatalf("deadline %s before the job ran, want still 30 days", d)
		}
		// A rename is not a rule change: no job.
		w.admin.Do("PATCH", "/v1/pools/"+w.poolID.String(), map[string]any{"name": "Renamed"}, "If-Match", w.admin.ETag("/v1/pools/"+w.poolID.String())).Expect(http.StatusOK)
		if n := len(rejudgeJobs(t, env, w.poolID)); n != before+1 {
			t.Fatalf("%d re-judge jobs after a rename, want %d", n, before+1)
		}

		env.WorkJobs()
		if d := w.deadline(t); d != 5*24*time.Hour {
			t.Fatalf("deadline %s after the job ran, want 5 days", d)
		}
	})
}

// TestRejudgeUniqueAndSuperseded: enqueuing the same (pool, version) twice
// keeps one job; of two rule changes in a row, both jobs end and the
// deadline follows the newer rules.
func TestRejudgeUniqueAndSuperseded(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url, apitest.Options{Config: testConfig()})
		w := newWorld(t, env)
		before := len(rejudgeJobs(t, env, w.poolID))
		ctx := context.Background()
		for range 2 {
			err := env.App.Store.WithTx(ctx, func(tx *ent.Tx) error {
				return env.App.Jobs.EnqueueRejudge(ctx, tx, w.poolID, 1000)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if n := len(rejudgeJobs(t, env, w.poolID)); n != before+1 {
			t.Fatalf("%d jobs after enqueuing one (pool, version) twice, want %d", n, before+1)
		}
		if err := w.idle(t, 7, false); err != nil {
			t.Fatal(err)
		}
		if err := w.idle(t, 3, false); err != nil {
			t.Fatal(err)
		}
		env.WorkJobs()
		if d := w.deadline(t); d != 3*24*time.Hour {
			t.Fatalf("deadline %s after both changes' jobs, want 3 days (the newer rules)", d)
		}
		pending, err := env.App.Jobs.Pending(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 0 {
			t.Fatalf("%d jobs left after working the queue", len(pending))
		}
	})
}

// TestRejudgeAfterCrash: the rule change commits and the process dies
// before working its job; the next process (a new job client on the same
// database) works it, and the deadline follows the new rules.
func TestRejudgeAfterCrash(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url, apitest.Options{Config: testConfig()})
		w := newWorld(t, env)
		// The queue of env is started (newWorld worked it); stop it, as a
		// crash would, before the change.
		if err := env.App.Jobs.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := w.idle(t, 4, false); err != nil {
			t.Fatal(err)
		}
		if d := w.deadline(t); d != 30*24*time.Hour {
			t.Fatalf("deadline %s with nobody working jobs, want still 30 days", d)
		}
		next, err := jobs.New(context.Background(), env.App.Store, env.App.Pools, jobs.Config{PollInterval: jobs.MinPollInterval})
		if err != nil {
			t.Fatal(err)
		}
		if err := next.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = next.Stop(context.Background()) })
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := next.Drain(ctx); err != nil {
			t.Fatal(err)
		}
		if d := w.deadline(t); d != 4*24*time.Hour {
			t.Fatalf("deadline %s after the next process worked the job, want 4 days", d)
		}
	})
}

// TestEnqueueOutsideTx: Enqueue refuses a transaction the store did not
// begin.
func TestEnqueueOutsideTx(t *testing.T) {
	env := apitest.New(t, testdb.SQLite(t), apitest.Options{Config: testConfig()})
	if err := env.App.Jobs.Enqueue(context.Background(), &ent.Tx{}, jobs.RejudgeArgs{}); err == nil {
		t.Fatal("enqueue in a foreign transaction succeeded")
	}
}
