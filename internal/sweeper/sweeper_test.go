package sweeper_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver, to look at the cluster's locks

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/sweeper"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// apitest.Main: cheap password hashes, and the PostgreSQL cluster stopped
// at the end.
func TestMain(m *testing.M) { os.Exit(apitest.Main(m)) }

const interval = 100 * time.Millisecond

// replica is one Shoal process over a shared database, running the
// periodic sweeper.
type replica struct {
	name  string
	env   *apitest.Env
	clock *clock.Adjustable

	mu        sync.Mutex
	runs      int
	reclaimed map[string]bool

	cancel context.CancelFunc
	done   chan struct{}
}

func newReplica(t *testing.T, name, databaseURL string) *replica {
	t.Helper()
	clk := &clock.Adjustable{}
	r := &replica{name: name, clock: clk, reclaimed: map[string]bool{}}
	r.env = apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Clock: clk}})
	return r
}

// start runs sweeper.Run until stop (or the end of the test).
func (r *replica) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan struct{})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		defer close(r.done)
		sweeper.Run(ctx, r.env.App.Store, r.env.App.Pools, interval, log, func(res *pool.SweepResult) {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.runs++
			for _, it := range res.Reclaimed {
				r.reclaimed[it.ID.String()] = true
			}
		})
	}()
	// Registered after apitest.New's cleanup, so it runs first: the sweeper
	// stops before the store closes.
	t.Cleanup(r.stop)
}

// stop cancels the sweeper and waits for Run to return.
func (r *replica) stop() {
	r.cancel()
	<-r.done
}

func (r *replica) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs
}

func (r *replica) didReclaim(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reclaimed[id]
}

// eventually polls cond every 20ms until it holds or within passes.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// world is an admin and a rep, with the default lead pool reclaiming after
// a day without follow-up.
type world struct {
	admin, rep *apitest.Client
	repID      string
}

func newWorld(t *testing.T, env *apitest.Env) *world {
	t.Helper()
	_, admin := env.User("admin", nil)
	u, rep := env.User("rep", nil)
	var pools struct {
		Items []struct {
			ID        string `json:"id"`
			IsDefault bool   `json:"isDefault"`
		} `json:"items"`
	}
	admin.Do("GET", "/v1/pools?kind=lead", nil).Expect(http.StatusOK).JSON(&pools)
	for _, p := range pools.Items {
		if p.IsDefault {
			admin.Do("PATCH", "/v1/pools/"+p.ID, map[string]any{"idleDays": 1}, "If-Match", admin.ETag("/v1/pools/"+p.ID)).Expect(http.StatusOK)
		}
	}
	return &world{admin: admin, rep: rep, repID: u.ID.String()}
}

// lead has the rep create a lead he owns.
func (w *world) lead(t *testing.T, n int) string {
	t.Helper()
	body := map[string]any{"name": fmt.Sprintf("Sweeper lead %d", n), "company": fmt.Sprintf("Sweeper Co %d", n), "phone": fmt.Sprintf("136%08d", n)}
	m := w.rep.Do("POST", "/v1/leads", body).Expect(http.StatusCreated).Map()
	if m["ownerId"] != w.repID {
		t.Fatalf("rep-created lead owned by %v", m["ownerId"])
	}
	return m["id"].(string)
}

// owner is the lead's owner id, "" when pooled.
func (w *world) owner(t *testing.T, id string) string {
	t.Helper()
	o, _ := w.admin.Do("GET", "/v1/leads/"+id, nil).Expect(http.StatusOK).Map()["ownerId"].(string)
	return o
}

// TestSweeperSQLite: the single process sweeps every interval, and its
// sweeps reclaim what is due.
func TestSweeperSQLite(t *testing.T) {
	r := newReplica(t, "only", testdb.SQLite(t))
	w := newWorld(t, r.env)
	id := w.lead(t, 1)
	r.start(t)
	if !eventually(2*time.Second, func() bool { return r.count() >= 3 }) {
		t.Fatalf("%d sweeps in 2s at a %s interval", r.count(), interval)
	}
	if w.owner(t, id) != w.repID {
		t.Fatal("a lead that is not due was reclaimed")
	}
	r.clock.Advance(24*time.Hour + time.Minute)
	if !eventually(3*time.Second, func() bool { return r.didReclaim(id) }) {
		t.Fatal("the sweeper did not reclaim a due lead")
	}
	if o := w.owner(t, id); o != "" {
		t.Fatalf("reclaimed lead owned by %q", o)
	}
	r.stop()
	n := r.count()
	time.Sleep(3 * interval)
	if r.count() != n {
		t.Fatal("the sweeper kept running after its context ended")
	}
}

// TestSweeperLeaderPostgres: two replicas on one PostgreSQL database; only
// the one holding the advisory lock sweeps, and when it stops (its session
// ends) the other takes over.
func TestSweeperLeaderPostgres(t *testing.T) {
	databaseURL := testdb.Postgres(t)
	a := newReplica(t, "a", databaseURL)
	b := newReplica(t, "b", databaseURL)
	w := newWorld(t, a.env)
	a.start(t)
	b.start(t)

	// Wait for sweeps rather than a fixed time: once five have run (half
	// a second at the interval, however slow the machine), the replica not
	// leading has had as many tries at the lock and must have lost them all.
	if !eventually(10*time.Second, func() bool { return a.count()+b.count() >= 5 }) {
		t.Fatalf("%d sweeps in 10s at a %s interval", a.count()+b.count(), interval)
	}
	ca, cb := a.count(), b.count()
	var leader, follower *replica
	switch {
	case ca > 0 && cb == 0:
		leader, follower = a, b
	case cb > 0 && ca == 0:
		leader, follower = b, a
	default:
		t.Fatalf("replica a swept %d times and b %d times; want exactly one of them sweeping", ca, cb)
	}
	if n := advisoryLocks(t, databaseURL); n != 1 {
		t.Fatalf("%d advisory locks held, want 1 (the leader's)", n)
	}

	// The leader's sweeps do the work (both replicas' clocks move alike).
	first := w.lead(t, 1)
	advanceAll(24*time.Hour+time.Minute, a, b)
	if !eventually(3*time.Second, func() bool { return leader.didReclaim(first) }) {
		t.Fatalf("leader %s did not reclaim a due lead", leader.name)
	}
	if follower.count() != 0 || follower.didReclaim(first) {
		t.Fatalf("follower %s swept %d times", follower.name, follower.count())
	}

	// The leader stops: its connection, and with it the lock, goes away,
	// and the follower takes over within a couple of seconds.
	leader.stop()
	if !eventually(3*time.Second, func() bool { return follower.count() > 0 }) {
		t.Fatalf("follower %s did not take over within 3s of the leader stopping (%d advisory locks held)",
			follower.name, advisoryLocks(t, databaseURL))
	}
	second := w.lead(t, 2)
	advanceAll(24*time.Hour+time.Minute, a, b)
	if !eventually(3*time.Second, func() bool { return follower.didReclaim(second) }) {
		t.Fatalf("new leader %s did not reclaim a due lead", follower.name)
	}
	if n := advisoryLocks(t, databaseURL); n != 1 {
		t.Fatalf("%d advisory locks held after the takeover, want 1", n)
	}
}

func advanceAll(d time.Duration, rs ...*replica) {
	for _, r := range rs {
		r.clock.Advance(d)
	}
}

// advisoryLocks counts the advisory locks granted in the test's database.
func advisoryLocks(t *testing.T, databaseURL string) int {
	t.Helper()
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer db.Close()
	var n int
	err = db.QueryRow(`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&n)
	if err != nil {
		t.Fatalf("count advisory locks: %v", err)
	}
	return n
}
