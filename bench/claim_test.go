package bench

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/pool"
)

// claimWorkers is the number of concurrent claimers, one rep each.
const claimWorkers = 16

// claimBench is Shoal running on one database with reps ready to claim,
// plus raw pools on the same database for seeding and for the baseline.
type claimBench struct {
	env    *apitest.Env
	seed   *rawDB
	writer *rawDB
	client *http.Client
	reps   *sessions // one rep per worker
	poolID uuid.UUID
	seeded int
}

// newClaimBench starts Shoal on databaseURL (which migrates it and creates
// the default pools) and logs in one rep without caps per worker.
func newClaimBench(tb testing.TB, databaseURL string, workers int) *claimBench {
	tb.Helper()
	c := &claimBench{
		env:    startShoal(tb, databaseURL),
		seed:   openRaw(tb, databaseURL, roleSeed),
		writer: openRaw(tb, databaseURL, roleWriter),
		client: newHTTPClient(workers),
		poolID: pool.DefaultPoolID("lead"),
	}
	tb.Cleanup(c.client.CloseIdleConnections)
	c.reps = newSessions(tb, c.env, c.client, "rep", workers)
	return c
}

// seedLeads inserts n unowned leads into the default lead pool in one
// transaction and returns their ids. Every NOT NULL column is filled as
// Shoal itself would fill it for a lead with just a name.
func (c *claimBench) seedLeads(tb testing.TB, n int) []uuid.UUID {
	tb.Helper()
	ctx := context.Background()
	ins := c.seed.newInserter("leads",
		[]string{"id", "created_at", "updated_at", "pool_id", "name", "name_norm"},
		[][2]string{{"status", "'active'"}, {"version", "1"}, {"tags", "'[]'"}, {"reclaim_reason", "''"},
			{"company", "''"}, {"phone", "''"}, {"email", "''"}, {"source", "''"}, {"region", "''"},
			{"industry", "''"}, {"notes", "''"}, {"company_norm", "''"}, {"phone_norm", "''"}, {"email_norm", "''"}})
	tx, err := c.seed.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	defer func() { _ = tx.Rollback() }()
	ids := make([]uuid.UUID, n)
	base := time.Now().UTC().Add(-time.Duration(n) * time.Millisecond)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		at := base.Add(time.Duration(i) * time.Millisecond)
		name := fmt.Sprintf("待领取线索%07d", c.seeded+i)
		if err := ins.add(ctx, tx, ids[i], at, at, c.poolID, name, dedupe.Name(name)); err != nil {
			tb.Fatalf("seed leads: %v", err)
		}
	}
	if err := ins.flush(ctx, tx); err != nil {
		tb.Fatalf("seed leads: %v", err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatalf("commit leads: %v", err)
	}
	c.seeded += n
	c.seed.settle(tb)
	return ids
}

// claimHTTP claims every lead through POST /v1/leads/{id}/claim, one worker
// per rep, worker w as rep w.
func (c *claimBench) claimHTTP(ids []uuid.UUID) run {
	return hammer(len(c.reps.ids), len(ids), func(w, i int) error {
		_, err := call(c.client, http.MethodPost, c.env.URL+"/v1/leads/"+ids[i].String()+"/claim", c.reps.token(w), http.StatusOK)
		return err
	})
}

// claimRaw claims every lead with the reference transaction of
// /work/shared/docs/performance.md: a conditional UPDATE and one history
// row, nothing else (no caps, tallies, events, audit or authorisation).
// Statements are prepared once, the best case for database/sql. Worker w
// claims for rep w (workers ≤ the number of reps).
func (c *claimBench) claimRaw(tb testing.TB, ids []uuid.UUID, workers int) run {
	tb.Helper()
	ctx := context.Background()
	update, err := c.writer.PrepareContext(ctx, c.writer.q(
		"UPDATE leads SET owner_id = ?, owned_at = ? WHERE id = ? AND owner_id IS NULL"))
	if err != nil {
		tb.Fatalf("prepare update: %v", err)
	}
	defer update.Close()
	history, err := c.writer.PrepareContext(ctx, c.writer.q(
		"INSERT INTO ownership_changes (id, record_kind, record_id, operation, to_owner_id, actor_id, actor_type, reason, pool_id, rule_version, at) "+
			"VALUES (?, 'lead', ?, 'claim', ?, ?, 'user', '', ?, 1, ?)"))
	if err != nil {
		tb.Fatalf("prepare history: %v", err)
	}
	defer history.Close()
	return hammer(workers, len(ids), func(w, i int) error {
		return c.rawClaim(ctx, update, history, c.reps.ids[w], ids[i])
	})
}

func (c *claimBench) rawClaim(ctx context.Context, update, history *sql.Stmt, owner, id uuid.UUID) error {
	tx, err := c.writer.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	now := time.Now().UTC()
	res, err := tx.StmtContext(ctx, update).ExecContext(ctx, owner, now, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("lead %s: %d rows claimed (%v)", id, n, err)
	}
	if _, err := tx.StmtContext(ctx, history).ExecContext(ctx, uuid.Must(uuid.NewV7()), id, owner, owner, c.poolID, now); err != nil {
		return err
	}
	return tx.Commit()
}

// claimResult is one engine's HTTP and raw runs at the same concurrency.
type claimResult struct{ http, raw run }

func (r claimResult) String() string {
	return fmt.Sprintf("http %.0f/s (p50 %.2f ms, p99 %.2f ms) raw %.0f/s (p99 %.2f ms) ratio %.2f [load %s, %s]",
		r.http.rate(), ms(r.http.pct(0.50)), ms(r.http.pct(0.99)),
		r.raw.rate(), ms(r.raw.pct(0.99)), r.http.rate()/r.raw.rate(), r.http.load, r.raw.load)
}

// BenchmarkClaim compares claiming pooled leads through Shoal's HTTP API
// with the raw reference transaction on the same database, both from
// claimWorkers concurrent callers; raw1 is the raw transaction from one
// caller, the set-up of the reference figure's p99. Each iteration seeds n
// fresh leads (untimed) and claims all of them.
func BenchmarkClaim(b *testing.B) {
	n := sized(500, 100_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			c := newClaimBench(b, e.url(b), claimWorkers)
			var res claimResult
			b.Run("http", func(b *testing.B) {
				res.http = run{}
				for range b.N {
					b.StopTimer()
					ids := c.seedLeads(b, n)
					b.StartTimer()
					r := c.claimHTTP(ids)
					mustSucceed(b, "http claims", r)
					res.http = res.http.merge(r)
				}
				report(b, res.http, "claims/s")
			})
			b.Run("raw", func(b *testing.B) {
				res.raw = run{}
				for range b.N {
					b.StopTimer()
					ids := c.seedLeads(b, n)
					b.StartTimer()
					r := c.claimRaw(b, ids, claimWorkers)
					mustSucceed(b, "raw claims", r)
					res.raw = res.raw.merge(r)
				}
				report(b, res.raw, "claims/s")
			})
			b.Run("raw1", func(b *testing.B) {
				var all run
				for range b.N {
					b.StopTimer()
					ids := c.seedLeads(b, n)
					b.StartTimer()
					r := c.claimRaw(b, ids, 1)
					mustSucceed(b, "raw claims", r)
					all = all.merge(r)
				}
				report(b, all, "claims/s")
			})
			if res.http.ok > 0 && res.raw.ok > 0 {
				line := fmt.Sprintf("claim/%s: %s", e.name, res)
				fmt.Println(line)
				b.Log(line)
			}
		})
	}
}
