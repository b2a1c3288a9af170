package pool

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/kinds"
)

// Batches of the sweep's writes are sized by time, not count, since how
// many records fit in a given time depends on the schema, the cache and
// the load. The size doubles while a batch's transaction takes under half
// the budget and halves when it takes more than the budget. Sizes stay
// powers of two, which keeps the shapes of the batch statements (and so
// the prepared statements cached for them) few.
//
// On SQLite a batch holds the database's one write lock, so every claim
// waits behind it: the budget is short. On PostgreSQL a batch locks only
// its own records (and, for its last statements, their owners' counter
// rows), so claims run beside it: a longer budget saves round trips, and a
// short one would only shrink the batches when the machine is busy.
const (
	sweepTxBudgetSQLite   = 20 * time.Millisecond
	sweepTxBudgetPostgres = 250 * time.Millisecond
	sweepBatchMin         = 32
	sweepBatchMax         = 2048 // 10 history columns × 2048 rows stay under SQLite's 32,766 parameters
	sweepBatch            = 500  // fixed page size of the read-only walks (Rejudge, Preview)
)

// sweepYieldSQLite is how much longer than its last batch took the sweep
// waits before the next one when other writes asked for SQLite's writer
// meanwhile. Claims then get the writer at least 60% of the time however
// long the sweep runs, and with a closed loop of claimers their latency
// grows by about the share the sweep takes. A sweep nobody waits behind
// never pauses.
const sweepYieldSQLite = 1.5

// pacer sizes the next batch from how long the last one held its
// transaction.
type pacer struct {
	size   int
	budget time.Duration
	fixed  bool

	// asked, when set, counts the writes asked for so far (see
	// store.WritesAsked); seen is its count after the last batch, and
	// pause how long to wait before the next.
	asked func() (uint64, bool)
	seen  uint64
	pause time.Duration
}

// newPacer starts a pacer for this engine's budget.
func (s *Service) newPacer() *pacer {
	budget := sweepTxBudgetSQLite
	if s.store.Dialect == dialect.Postgres {
		budget = sweepTxBudgetPostgres
	}
	p := &pacer{size: 256, budget: budget}
	if _, ok := s.store.WritesAsked(); ok {
		p.asked = s.store.WritesAsked
		p.seen, _ = p.asked()
	}
	return p
}

// fixedPacer always asks for n records, for walks that take no write lock.
func fixedPacer(n int) *pacer { return &pacer{size: n, fixed: true} }

// sweepPacer paces a sweep pass: by time when it writes, in fixed pages
// when it is a dry run and writes nothing.
func (s *Service) sweepPacer(dryRun bool) *pacer {
	if dryRun {
		return fixedPacer(sweepBatch)
	}
	return s.newPacer()
}

func (p *pacer) next() int { return p.size }

// took records how long the last batch held its transaction.
func (p *pacer) took(d time.Duration) {
	switch {
	case p.fixed:
	case d < p.budget/2 && p.size < sweepBatchMax:
		p.size *= 2
	case d > p.budget && p.size > sweepBatchMin:
		p.size /= 2
	}
	p.pause = 0
	if p.asked != nil {
		n, _ := p.asked()
		// The batch itself was one of the writes asked for.
		if n-p.seen > 1 {
			p.pause = time.Duration(float64(d) * sweepYieldSQLite)
		}
		p.seen = n
	}
}

// rest waits the pause the last batch earned, if any.
func (p *pacer) rest(ctx context.Context) error {
	if p.pause <= 0 {
		return nil
	}
	t := time.NewTimer(p.pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// cursor is a position in (due time, id) order.
type cursor struct {
	at time.Time
	id uuid.UUID
}

// candidates pages through the owned, active records (for what ==
// "freeze": all records) whose due time (the freeze end, or the stored
// reclaim deadline) is at or before bound, in (due time, id) order after
// the cursor. The keyset is a row-value comparison, so each page is one
// range scan of the (due time, id) index however many are due. It reads
// through the reader pool: the sweep's transactions re-check everything
// they act on, so a page may be a moment stale.
func (s *Service) candidates(ctx context.Context, kind kinds.Kind, what string, bound time.Time, after cursor, limit int) ([]cursor, error) {
	// Leads and customers share the ownership columns (PoolableMixin), so
	// one predicate serves both.
	col := colReclaimAt
	if what == "freeze" {
		col = colFrozenUntil
	}
	due := func(sel *sql.Selector) {
		c := sel.C(col)
		sel.Where(sql.LTE(c, bound))
		if after.id != uuid.Nil {
			sel.Where(sql.CompositeGT([]string{c, sel.C(colID)}, after.at, after.id))
		}
		if what != "freeze" {
			sel.Where(sql.And(sql.NotNull(sel.C(colOwnerID)), sql.EQ(sel.C(colStatus), "active")))
		}
		sel.OrderBy(sql.Asc(c), sql.Asc(sel.C(colID)))
	}
	recs, err := s.rows(ctx, via(s.store.Reader), kind, selection{where: due, limit: limit,
		columns: []string{colID, colReclaimAt, colFrozenUntil}})
	if err != nil {
		return nil, err
	}
	out := make([]cursor, len(recs))
	for i, r := range recs {
		t := r.stored.ReclaimAt // the stored deadline, which the index orders by
		if what == "freeze" {
			t = r.FrozenUntil
		}
		out[i].id = r.ID
		if t != nil {
			out[i].at = *t
		}
	}
	return out, nil
}

// eachBatch calls fn with the ids of each page of candidates, sized by p,
// until none are left.
func (s *Service) eachBatch(ctx context.Context, kind kinds.Kind, what string, bound time.Time, p *pacer, fn func(ids []uuid.UUID) error) error {
	var after cursor
	for {
		limit := p.next()
		page, err := s.candidates(ctx, kind, what, bound, after, limit)
		if err != nil {
			return fmt.Errorf("sweep %s %s: %w", kind, what, err)
		}
		if len(page) > 0 {
			ids := make([]uuid.UUID, len(page))
			for i, c := range page {
				ids[i] = c.id
			}
			if err := fn(ids); err != nil {
				return err
			}
		}
		if len(page) < limit {
			return nil
		}
		if err := p.rest(ctx); err != nil {
			return err
		}
		after = page[len(page)-1]
	}
}
