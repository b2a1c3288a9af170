package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/pool"
)

// sweepOwners is how many reps own the swept records.
func sweepOwners() int { return sized(5, 50) }

// sweepBench is Shoal with many owned leads, a tenth of them past their
// idle deadline, plus pooled leads for claimers to take meanwhile.
type sweepBench struct {
	env    *apitest.Env
	seed   *rawDB
	writer *rawDB
	client *http.Client
	claim  *claimBench
	owned  int
	due    int
	// dueRows are the seeded due leads, so rearm can make them due again
	// and several sweeps run over the same data.
	dueRows []dueLead
	pooled  []uuid.UUID
	claimed int
}

// dueLead is a seeded lead past its idle deadline.
type dueLead struct {
	id, owner uuid.UUID
	ownedAt   time.Time
}

// sweepOwned is how many owned leads the sweep benchmark seeds. It can be
// set with SHOAL_BENCH_SWEEP_OWNED, to profile at a size between the small
// and the full one.
func sweepOwned() int {
	if n, err := strconv.Atoi(os.Getenv("SHOAL_BENCH_SWEEP_OWNED")); err == nil && n > 0 {
		return n
	}
	return sized(5_000, 1_000_000)
}

// newSweepBench seeds n owned leads (n/10 due) in the default lead pool with
// idleDays 30, and m pooled leads for the claimers.
func newSweepBench(tb testing.TB, databaseURL string, n, m int) *sweepBench {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env := apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger, Clock: &clock.Adjustable{}}})
	s := &sweepBench{env: env, seed: openRaw(tb, databaseURL, roleSeed), writer: openRaw(tb, databaseURL, roleWriter), client: newHTTPClient(claimWorkers)}
	tb.Cleanup(s.client.CloseIdleConnections)
	ctx := context.Background()
	if _, err := s.seed.Exec(s.seed.q("UPDATE pools SET idle_days = 30 WHERE id = ?"), pool.DefaultPoolID("lead")); err != nil {
		tb.Fatalf("set idleDays: %v", err)
	}
	owners := newSessions(tb, env, s.client, "rep", sweepOwners())

	ins := s.seed.newInserter("leads",
		[]string{"id", "created_at", "updated_at", "pool_id", "name", "name_norm", "owner_id", "owned_at", "reclaim_at"},
		[][2]string{{"status", "'active'"}, {"version", "1"}, {"tags", "'[]'"}, {"reclaim_reason", "'idle'"},
			{"company", "''"}, {"phone", "''"}, {"email", "''"}, {"source", "''"}, {"region", "''"},
			{"industry", "''"}, {"notes", "''"}, {"company_norm", "''"}, {"phone_norm", "''"}, {"email_norm", "''"}})
	tx, err := s.seed.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UTC()
	for i := range n {
		owned := now.Add(-24 * time.Hour)
		if i%10 == 0 {
			owned = now.Add(-40 * 24 * time.Hour) // 10 days past its idle deadline
			s.due++
		}
		at := owned.Add(time.Duration(i) * time.Microsecond)
		name := fmt.Sprintf("在跟线索%07d", i)
		id, owner := uuid.Must(uuid.NewV7()), owners.ids[i%sweepOwners()]
		if i%10 == 0 {
			s.dueRows = append(s.dueRows, dueLead{id: id, owner: owner, ownedAt: at})
		}
		if err := ins.add(ctx, tx, id, at, at, pool.DefaultPoolID("lead"), name, dedupe.Name(name),
			owner, at, at.Add(30*24*time.Hour)); err != nil {
			tb.Fatalf("seed owned leads: %v", err)
		}
	}
	if err := ins.flush(ctx, tx); err != nil {
		tb.Fatalf("seed owned leads: %v", err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE users SET owned_leads = (SELECT COUNT(*) FROM leads WHERE leads.owner_id = users.id)"); err != nil {
		tb.Fatalf("set counters: %v", err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatalf("commit: %v", err)
	}
	s.owned = n
	s.claim = &claimBench{env: env, seed: s.seed, client: s.client, poolID: pool.DefaultPoolID("lead"), seeded: n}
	s.claim.reps = newSessions(tb, env, s.client, "rep", claimWorkers)
	s.pooled = s.claim.seedLeads(tb, m)
	return s
}

// claims claims the next k pooled leads through HTTP from claimWorkers
// callers.
func (s *sweepBench) claims(k int) run {
	ids := s.pooled[s.claimed : s.claimed+k]
	s.claimed += k
	return s.claim.claimHTTP(ids)
}

// rearm makes the seeded due leads owned and due again after a sweep took
// them, with their owners' counters recounted and no cooldowns left, so
// the next sweep starts from the data the first one saw.
func (s *sweepBench) rearm(tb testing.TB) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.seed.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	tuple := "(?, ?, ?, ?)"
	if s.seed.pg {
		tuple = "(?::uuid, ?::uuid, ?::timestamptz, ?::timestamptz)"
	}
	for rows := range slices.Chunk(s.dueRows, rowsPerInsert) {
		args := make([]any, 0, 4*len(rows))
		for _, r := range rows {
			args = append(args, r.id, r.owner, r.ownedAt, r.ownedAt.Add(30*24*time.Hour))
		}
		query := "UPDATE leads SET owner_id = v.column2, owned_at = v.column3, reclaim_at = v.column4, reclaim_reason = 'idle', " +
			"last_follow_up_at = NULL FROM (VALUES " + strings.Repeat(tuple+", ", len(rows)-1) + tuple + ") AS v WHERE leads.id = v.column1"
		if _, err := tx.ExecContext(ctx, s.seed.q(query), args...); err != nil {
			tb.Fatalf("rearm leads: %v", err)
		}
	}
	for _, q := range []string{
		"UPDATE users SET owned_leads = (SELECT COUNT(*) FROM leads WHERE leads.owner_id = users.id AND leads.status = 'active')",
		"DELETE FROM cooldowns",
	} {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			tb.Fatalf("rearm: %s: %v", q, err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatalf("commit: %v", err)
	}
	s.seed.settle(tb)
}

// timedSweep is one timed sweep: how long, how many it reclaimed, and the
// load average when it ended.
type timedSweep struct {
	took      time.Duration
	reclaimed int
	load      string
}

func (t timedSweep) String() string {
	return fmt.Sprintf("%.2f s for %d reclaimed [load %s]", t.took.Seconds(), t.reclaimed, t.load)
}

// sweepAlone times Shoal's sweep with nothing else running.
func (s *sweepBench) sweepAlone(tb testing.TB) timedSweep {
	tb.Helper()
	t0 := time.Now()
	swept, err := s.env.App.Pools.Sweep(context.Background(), nil, false)
	if err != nil {
		tb.Fatalf("sweep: %v", err)
	}
	return timedSweep{took: time.Since(t0), reclaimed: len(swept.Reclaimed), load: loadAvg()}
}

// rawSweepBatch is the batch of the raw sweep, as in the reference figure
// of /work/shared/docs/performance.md.
const rawSweepBatch = 10_000

// sweepRaw is the baseline: the reference sweep in plain SQL on the same
// database, one writer connection configured like Shoal's. Each batch is
// one transaction that selects due ids through the reclaim_at index,
// clears their owner with one UPDATE … WHERE id IN (…) and writes their
// history rows with multi-row INSERTs; nothing else (no re-check, counters,
// events or cooldowns).
func (s *sweepBench) sweepRaw(tb testing.TB) timedSweep {
	tb.Helper()
	ctx := context.Background()
	history := s.writer.newInserter("ownership_changes", []string{"id", "record_id", "from_owner_id", "at"},
		[][2]string{{"record_kind", "'lead'"}, {"operation", "'reclaim'"}, {"actor_type", "'system'"}, {"reason", "'idle'"},
			{"pool_id", "'" + pool.DefaultPoolID("lead").String() + "'"}, {"rule_version", "1"}})
	now := time.Now().UTC()
	res := timedSweep{}
	t0 := time.Now()
	for {
		n, err := s.rawSweepBatch(ctx, history, now)
		if err != nil {
			tb.Fatalf("raw sweep: %v", err)
		}
		res.reclaimed += n
		if n < rawSweepBatch {
			break
		}
	}
	res.took, res.load = time.Since(t0), loadAvg()
	return res
}

func (s *sweepBench) rawSweepBatch(ctx context.Context, history *inserter, now time.Time) (int, error) {
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback() }()
	rows, err := tx.QueryContext(ctx, s.writer.q("SELECT id, owner_id FROM leads WHERE reclaim_at <= ? ORDER BY reclaim_at, id LIMIT ?"), now, rawSweepBatch)
	if err != nil {
		return 0, err
	}
	var ids, owners []any
	for rows.Next() {
		var id, owner uuid.UUID
		if err := rows.Scan(&id, &owner); err != nil {
			rows.Close()
			return 0, err
		}
		ids, owners = append(ids, id), append(owners, owner)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil || len(ids) == 0 {
		return 0, err
	}
	update := "UPDATE leads SET owner_id = NULL, owned_at = NULL, reclaim_at = NULL, reclaim_reason = '', version = version + 1, updated_at = ? " +
		"WHERE id IN (" + strings.Repeat("?, ", len(ids)-1) + "?)"
	if _, err := tx.ExecContext(ctx, s.writer.q(update), append([]any{now}, ids...)...); err != nil {
		return 0, err
	}
	for i := range ids {
		if err := history.add(ctx, tx, uuid.Must(uuid.NewV7()), ids[i], owners[i], now); err != nil {
			return 0, err
		}
	}
	if err := history.flush(ctx, tx); err != nil {
		return 0, err
	}
	return len(ids), tx.Commit()
}

// sweepResult is the sweep alone, the raw baseline, and the sweep with
// claimers running, with the claim latencies idle and during it.
type sweepResult struct {
	due          int
	alone, raw   timedSweep
	withClaims   timedSweep
	idle, during run
}

func (r sweepResult) String() string {
	return fmt.Sprintf("%d due; sweep alone %s; raw sweep %s; alone ÷ raw %.2f; "+
		"sweep with %d claimers %s; claim p99 idle %.2f ms, during sweep %.2f ms (ratio %.2f, %d claims during) [load %s]",
		r.due, r.alone, r.raw, r.alone.took.Seconds()/max(r.raw.took.Seconds(), 1e-9),
		claimWorkers, r.withClaims, ms(r.idle.pct(0.99)), ms(r.during.pct(0.99)),
		float64(r.during.pct(0.99))/float64(max(r.idle.pct(0.99), 1)), r.during.ok, r.during.load)
}

// check fails the test unless every phase reclaimed exactly the due leads.
func (r sweepResult) check(tb testing.TB) {
	tb.Helper()
	for what, n := range map[string]int{"sweep alone": r.alone.reclaimed, "raw sweep": r.raw.reclaimed, "sweep with claims": r.withClaims.reclaimed} {
		if n != r.due {
			tb.Fatalf("%s reclaimed %d, want %d", what, n, r.due)
		}
	}
}

// measure times the sweep alone, then the raw baseline, then claims while
// idle, then the sweep with claims running against it for as long as it
// runs; the due leads are re-armed between the phases.
func (s *sweepBench) measure(tb testing.TB, claimsPerRun int) sweepResult {
	tb.Helper()
	res := sweepResult{due: s.due}
	res.alone = s.sweepAlone(tb)
	s.rearm(tb)
	res.raw = s.sweepRaw(tb)
	s.rearm(tb)
	res.idle = s.claims(claimsPerRun)
	mustSucceed(tb, "idle claims", res.idle)
	res.withClaims, res.during = s.sweepWithClaims(tb)
	return res
}

// sweepWithClaims times a real sweep while claimers claim in rounds until
// it ends, so every claim timed ran while it did (the last round may end a
// little after it).
func (s *sweepBench) sweepWithClaims(tb testing.TB) (timedSweep, run) {
	tb.Helper()
	var (
		wg       sync.WaitGroup
		done     = make(chan struct{})
		sweepErr error
		swept    *pool.SweepResult
		res      timedSweep
		during   run
	)
	wg.Go(func() {
		defer close(done)
		t0 := time.Now()
		swept, sweepErr = s.env.App.Pools.Sweep(context.Background(), nil, false)
		res.took, res.load = time.Since(t0), loadAvg()
	})
	finish := func() (timedSweep, run) {
		<-done
		wg.Wait()
		if sweepErr != nil {
			tb.Fatalf("sweep: %v", sweepErr)
		}
		res.reclaimed = len(swept.Reclaimed)
		return res, during
	}
	for {
		r := s.claims(min(claimWorkers*4, len(s.pooled)-s.claimed))
		during = during.merge(r)
		mustSucceed(tb, "claims during the sweep", r)
		select {
		case <-done:
			return finish()
		default:
		}
		if len(s.pooled)-s.claimed < claimWorkers*4 {
			tb.Logf("ran out of pooled leads to claim before the sweep ended")
			return finish()
		}
	}
}

// BenchmarkSweep sweeps n owned leads of which a tenth are due, on SQLite
// and PostgreSQL: alone, as a raw-SQL baseline on the same data, and with
// claimers running, comparing claim p99 during the sweep with claim p99
// idle. Targets (performance.md): 1,000,000 records in ≤ 5 s on SQLite,
// ≤ 20 s on PostgreSQL; claim p99 during a sweep ≤ 2 × idle.
func BenchmarkSweep(b *testing.B) {
	n := sweepOwned()
	m := sized(2_000, 60_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			for range b.N {
				b.StopTimer()
				s := newSweepBench(b, e.url(b), n, m)
				b.StartTimer()
				res := s.measure(b, sized(500, 2_000))
				b.StopTimer()
				res.check(b)
				b.ReportMetric(res.alone.took.Seconds(), "alone-s")
				b.ReportMetric(res.raw.took.Seconds(), "raw-s")
				b.ReportMetric(res.withClaims.took.Seconds(), "sweep-s")
				b.ReportMetric(ms(res.idle.pct(0.99)), "idle-p99-ms")
				b.ReportMetric(ms(res.during.pct(0.99)), "during-p99-ms")
				fmt.Printf("sweep/%s (%d owned): %s\n", e.name, n, res)
			}
		})
	}
}

// TestSweepBenchSmall keeps BenchmarkSweep's code working in `make test`:
// each phase of a small sweep reclaims exactly the due tenth while claims
// succeed, and the owners' counters still equal what they own.
func TestSweepBenchSmall(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			s := newSweepBench(t, e.url(t), 600, 600)
			res := s.measure(t, 100)
			res.check(t)
			wrong := s.seed.count(t, "SELECT COUNT(*) FROM users WHERE owned_leads <> (SELECT COUNT(*) FROM leads WHERE leads.owner_id = users.id AND leads.status = 'active')")
			if wrong != 0 {
				t.Fatalf("%d users' counters are off after the sweep", wrong)
			}
			if got := s.seed.count(t, "SELECT COUNT(*) FROM ownership_changes WHERE operation = 'reclaim'"); got != 3*s.due {
				t.Fatalf("%d reclaim history rows, want %d", got, 3*s.due)
			}
			t.Logf("%s", res)
		})
	}
}
