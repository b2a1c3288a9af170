package jobs_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/jobs"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/testdb"
)

const sweepEvery = 100 * time.Millisecond

// replica is one Shoal process over a shared database, its job queue
// running the periodic sweep.
type replica struct {
	name  string
	env   *apitest.Env
	clock *clock.Adjustable

	mu sync.Mutex
	// runs are the sweep jobs this replica worked, by River job id.
	runs      map[int64]int
	reclaimed map[string]int
	stopped   bool
	late      int // sweeps heard after Stop returned
}

func newReplica(t *testing.T, name, databaseURL string) *replica {
	t.Helper()
	r := &replica{name: name, clock: &clock.Adjustable{}, runs: map[int64]int{}, reclaimed: map[string]int{}}
	r.env = apitest.New(t, databaseURL, apitest.Options{Config: app.Config{
		Clock: r.clock,
		Jobs:  jobs.Config{ID: name, SweepEvery: sweepEvery, PollInterval: jobs.MinPollInterval, OnSweep: r.heard},
	}})
	return r
}

func (r *replica) heard(run jobs.SweepRun) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		r.late++
	}
	r.runs[run.JobID]++
	for _, it := range run.Result.Reclaimed {
		r.reclaimed[it.ID.String()]++
	}
	select {
	case sweepHeard <- struct{}{}:
	default:
	}
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	if err := r.env.App.Jobs.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// stop stops the replica's queue; a sweep heard afterwards is counted as
// late.
func (r *replica) stop(t *testing.T) {
	t.Helper()
	if err := r.env.App.Jobs.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
}

// snapshot copies what the replica heard.
func (r *replica) snapshot() (runs map[int64]int, reclaimed map[string]int, late int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	runs, reclaimed = map[int64]int{}, map[string]int{}
	for k, v := range r.runs {
		runs[k] = v
	}
	for k, v := range r.reclaimed {
		reclaimed[k] = v
	}
	return runs, reclaimed, r.late
}

// sweepHeard is signalled whenever a replica hears a sweep.
var sweepHeard = make(chan struct{}, 1)

// waitFor waits until cond holds over what the replicas heard, woken by
// each sweep they hear (and once a second anyway); it fails the test
// after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s", what)
		case <-sweepHeard:
		case <-tick.C:
		}
	}
}

// total is how many sweep runs the replicas heard, and how many distinct
// jobs those were.
func total(rs ...*replica) (runs, jobsRun int) {
	ids := map[int64]bool{}
	for _, r := range rs {
		rr, _, _ := r.snapshot()
		for id, n := range rr {
			runs += n
			ids[id] = true
		}
	}
	return runs, len(ids)
}

// leadWorld has a rep own a lead in the default lead pool, which reclaims
// after a day without follow-up.
func leadWorld(t *testing.T, env *apitest.Env, n int) (rep *apitest.Client, repID string, leads []string) {
	t.Helper()
	_, admin := env.User("admin", nil)
	u, rep := env.User("rep", nil)
	admin.Do("PATCH", "/v1/pools/"+pool.DefaultPoolID("lead").String(), map[string]any{"idleDays": 1}, "If-Match", admin.ETag("/v1/pools/"+pool.DefaultPoolID("lead").String())).Expect(http.StatusOK)
	for i := range n {
		body := map[string]any{"name": fmt.Sprintf("Sweep lead %d", i), "company": fmt.Sprintf("Sweep Co %d", i)}
		leads = append(leads, rep.Do("POST", "/v1/leads", body).Expect(http.StatusCreated).Map()["id"].(string))
	}
	return rep, u.ID.String(), leads
}

// TestSweepJobSQLite: the single process sweeps every period; the sweep
// reclaims what is due; after Stop no sweep runs.
func TestSweepJobSQLite(t *testing.T) {
	r := newReplica(t, "only", testdb.SQLite(t))
	_, _, leads := leadWorld(t, r.env, 1)
	r.start(t)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(r.env.Logs.String())
		}
	})
	waitFor(t, "three sweeps", func() bool { n, _ := total(r); return n >= 3 })
	if _, rec, _ := r.snapshot(); len(rec) != 0 {
		t.Fatalf("reclaimed %v before anything was due", rec)
	}
	r.clock.Advance(24*time.Hour + time.Minute)
	waitFor(t, "the due lead reclaimed", func() bool { _, rec, _ := r.snapshot(); return rec[leads[0]] > 0 })
	r.stop(t)
	runs, jobsRun := total(r)
	if runs != jobsRun {
		t.Fatalf("%d sweep runs of %d jobs: a sweep job ran twice", runs, jobsRun)
	}
	t.Cleanup(func() {
		if _, _, late := r.snapshot(); late != 0 {
			t.Errorf("%d sweeps ran after Stop returned", late)
		}
	})
}

// TestSweepJobTwoReplicasPostgres: two replicas' job queues on one
// PostgreSQL database. River elects one leader, which alone enqueues the
// periodic sweep: every sweep job runs exactly once, on one of the two,
// and a due record is reclaimed once. When the leader stops, the other
// replica takes over and sweeps go on. (The replaced sweeper's advisory
// lock is gone: River's leader election decides.)
func TestSweepJobTwoReplicasPostgres(t *testing.T) {
	databaseURL := testdb.Postgres(t)
	a := newReplica(t, "replica-a", databaseURL)
	b := newReplica(t, "replica-b", databaseURL)
	_, _, leads := leadWorld(t, a.env, 3)
	a.start(t)
	b.start(t)
	waitFor(t, "five sweeps", func() bool { n, _ := total(a, b); return n >= 5 })

	// One leader (it alone runs River's periodic enqueuer), the same
	// the database names, and the other replica never led.
	leader := electedLeader(t, a)
	var led []string
	for _, r := range []*replica{a, b} {
		if strings.Contains(r.env.Logs.String(), "Elector: Gained leadership") {
			led = append(led, r.name)
		}
	}
	if len(led) != 1 || led[0] != leader {
		t.Fatalf("replicas that gained leadership %v, database names %q; want exactly that one", led, leader)
	}

	// Both clocks move alike; whichever replica works the next sweep
	// reclaims the due leads, once.
	a.clock.Advance(24*time.Hour + time.Minute)
	b.clock.Advance(24*time.Hour + time.Minute)
	reclaimedAll := func() bool {
		_, ra, _ := a.snapshot()
		_, rb, _ := b.snapshot()
		for _, id := range leads {
			if ra[id]+rb[id] == 0 {
				return false
			}
		}
		return true
	}
	waitFor(t, "the due leads reclaimed", reclaimedAll)

	// The leader stops; the other replica is elected and sweeps on.
	first, other := a, b
	if leader == "replica-b" {
		first, other = b, a
	}
	first.stop(t)
	before, _ := total(other)
	waitFor(t, "sweeps after the leader stopped", func() bool { n, _ := total(other); return n >= before+3 })
	if l := electedLeader(t, other); l != other.name {
		t.Fatalf("leader %q after %s stopped, want %s", l, first.name, other.name)
	}
	other.stop(t)

	runs, jobsRun := total(a, b)
	if runs != jobsRun {
		t.Fatalf("%d sweep runs of %d jobs: a sweep job ran twice", runs, jobsRun)
	}
	_, ra, _ := a.snapshot()
	_, rb, _ := b.snapshot()
	for _, id := range leads {
		if n := ra[id] + rb[id]; n != 1 {
			t.Errorf("lead %s reclaimed %d times, want once", id, n)
		}
	}
}

// electedLeader is the River client id the database names leader.
func electedLeader(t *testing.T, r *replica) string {
	t.Helper()
	var id string
	if err := r.env.App.Store.DB().QueryRowContext(context.Background(), "SELECT leader_id FROM river_leader").Scan(&id); err != nil {
		t.Fatalf("leader: %v", err)
	}
	return id
}
