package pool

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// SweepItem is one record the sweep acted on (or would act on).
type SweepItem struct {
	ID              uuid.UUID
	Kind            kinds.Kind
	PreviousOwnerID *uuid.UUID
	OwnerID         *uuid.UUID
	Reason          string
	ReclaimAt       *time.Time
}

// SweepResult is what a sweep did.
type SweepResult struct {
	Reclaimed, Released, Warned []SweepItem
}

// Sweep releases expired freezes, reclaims what is due and warns owners
// ahead of reclaims, as of asOf. A real run (dryRun false) must use the
// engine's clock; each record is re-judged inside its own transaction
// under its lock, so a follow-up logged a moment earlier is never ignored
// and two sweeps at once act on each record once.
func (s *Service) Sweep(ctx context.Context, asOf *time.Time, dryRun bool) (*SweepResult, error) {
	now := s.clock.Now()
	if asOf != nil {
		if !dryRun {
			return nil, apperr.Invalidf("body/asOf", "not_allowed", "asOf is only for dry runs; a real sweep uses the server clock")
		}
		now = asOf.UTC()
	}
	res := &SweepResult{}
	for _, kind := range kinds.All {
		if err := s.sweepFreezes(ctx, kind, now, dryRun, res); err != nil {
			return nil, err
		}
		if err := s.sweepReclaims(ctx, kind, now, dryRun, res); err != nil {
			return nil, err
		}
		if err := s.sweepWarnings(ctx, kind, now, dryRun, res); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// batch is the state of one sweep transaction over a batch of records: the
// pools it has read, and what it did. A retried attempt starts
// from scratch, so a record is reported only by the attempt that commits.
type batch struct {
	pools map[uuid.UUID]*ent.Pool
	items []SweepItem
}

func (b *batch) pool(ctx context.Context, tx *ent.Tx, id uuid.UUID) (*ent.Pool, error) {
	if pl, ok := b.pools[id]; ok {
		return pl, nil
	}
	pl, err := tx.Pool.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load pool: %w", err)
	}
	b.pools[id] = pl
	return pl, nil
}

// inBatch runs fn for every id in one transaction, tells p how long the
// transaction held its locks (body and commit, as reclaimBatch), and
// returns what the committed attempt did.
func (s *Service) inBatch(ctx context.Context, ids []uuid.UUID, p *pacer, fn func(tx *ent.Tx, b *batch, id uuid.UUID) error) ([]SweepItem, error) {
	var b *batch
	var t0 time.Time
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		t0 = time.Now()
		b = &batch{pools: map[uuid.UUID]*ent.Pool{}}
		for _, id := range ids {
			if err := fn(tx, b, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.took(time.Since(t0))
	return b.items, nil
}

// sweepFreezes ends freezes whose time is up; the end starts a fresh grace
// period from the freeze's end.
func (s *Service) sweepFreezes(ctx context.Context, kind kinds.Kind, now time.Time, dryRun bool, res *SweepResult) error {
	p := s.sweepPacer(dryRun)
	return s.eachBatch(ctx, kind, "freeze", now, p, func(ids []uuid.UUID) error {
		if dryRun {
			for _, id := range ids {
				res.Released = append(res.Released, SweepItem{ID: id, Kind: kind})
			}
			return nil
		}
		items, err := s.inBatch(ctx, ids, p, func(tx *ent.Tx, b *batch, id uuid.UUID) error {
			r, err := s.load(ctx, tx, kind, id)
			if err != nil {
				return err
			}
			if r.FrozenUntil == nil || r.FrozenUntil.After(now) {
				return nil // unfrozen or re-frozen meanwhile
			}
			pl, err := b.pool(ctx, tx, r.PoolID)
			if err != nil {
				return err
			}
			end := *r.FrozenUntil
			r.FrozenUntil, r.ReleasedAt = nil, &end
			if err := s.save(ctx, tx, r, pl, now); err != nil {
				return err
			}
			b.items = append(b.items, SweepItem{ID: id, Kind: kind, OwnerID: r.OwnerID})
			return s.log(ctx, tx, r, Change{Op: "unfreeze", From: r.OwnerID, To: r.OwnerID, Reason: "freeze expired", RuleVersion: pl.RuleVersion}, now)
		})
		res.Released = append(res.Released, items...)
		return err
	})
}

// warningColumns: a reclaim warning is seen by those who see its owner's
// records (him, his supervisors, admins and auditors), whoever owns the
// record now.
var warningColumns = authz.Columns{Owner: reclaimwarning.FieldOwnerID}

// warningList orders reclaim warnings by id, newest first.
var warningList = listing.ByID(reclaimwarning.FieldID, func(w *ent.ReclaimWarning) uuid.UUID { return w.ID }, true)

// Warnings lists reclaim warnings p may see, newest first: his own; for a
// supervisor also those of everyone in his subtree; all for admins and
// auditors. It returns the cursor of the next page.
func (s *Service) Warnings(ctx context.Context, p *auth.Principal, cursor *listing.Cursor, limit int) ([]*ent.ReclaimWarning, *listing.Cursor, error) {
	pg, err := warningList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.ReclaimWarning.Query().Where(predicate.ReclaimWarning(pg.Apply)).Limit(pg.Limit)
	q = q.Where(predicate.ReclaimWarning(authz.NewScope(p, nil).Predicate(warningColumns)))
	ws, err := q.All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list warnings: %w", err)
	}
	return ws, pg.Next(ws), nil
}

// Rejudge recomputes the stored reclaim deadline of every owned record of a
// pool after its rules changed, in bounded batches, so the sweep's
// due-time index stays true.
func (s *Service) Rejudge(ctx context.Context, poolID uuid.UUID) error {
	pl, err := s.store.Client.Pool.Get(ctx, poolID)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	kind := kinds.Kind(pl.Kind)
	var after uuid.UUID
	for {
		var ids []uuid.UUID
		if kind == kinds.Lead {
			ids, err = s.store.Client.Lead.Query().Where(lead.PoolID(poolID), lead.OwnerIDNotNil(), lead.IDGT(after)).
				Order(ent.Asc(lead.FieldID)).Limit(sweepBatch).IDs(ctx)
		} else {
			ids, err = s.store.Client.Customer.Query().Where(customer.PoolID(poolID), customer.OwnerIDNotNil(), customer.IDGT(after)).
				Order(ent.Asc(customer.FieldID)).Limit(sweepBatch).IDs(ctx)
		}
		if err != nil {
			return fmt.Errorf("rejudge: %w", err)
		}
		if len(ids) == 0 {
			return nil
		}
		err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
			cur, err := tx.Pool.Get(ctx, poolID)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			for _, id := range ids {
				r, err := s.load(ctx, tx, kind, id)
				if err != nil {
					return err
				}
				if err := s.save(ctx, tx, r, cur, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		after = ids[len(ids)-1]
	}
}

// PreviewItem compares one record's deadline under the current and the
// proposed rules.
type PreviewItem struct {
	ID       uuid.UUID
	Kind     kinds.Kind
	OwnerID  *uuid.UUID
	Current  poolrules.Clock
	Proposed poolrules.Clock
}

// Preview judges every owned record of a pool under proposed rules (the
// current ones with the input's changes applied) without saving anything,
// and returns those with a deadline under either, soonest proposed first,
// plus how many records were judged. Only the pool's managers and admins
// may preview.
func (s *Service) Preview(ctx context.Context, p *auth.Principal, poolID uuid.UUID, in PoolInput, limit int) ([]PreviewItem, int, error) {
	pl, err := s.store.Reader.Pool.Get(ctx, poolID)
	if ent.IsNotFound(err) {
		return nil, 0, apperr.NotFoundf("pool")
	}
	if err != nil {
		return nil, 0, fmt.Errorf("load pool: %w", err)
	}
	if !IsManager(p, pl) {
		return nil, 0, errWrongPool
	}
	proposed := *pl
	m := s.store.Reader.Pool.UpdateOne(&proposed).Mutation()
	applyPool(m, in)
	proposed = applyMutation(proposed, m)
	cur, next := Rules(pl), Rules(&proposed)
	now := s.clock.Now()
	var items []PreviewItem
	scanned := 0
	var after uuid.UUID
	for {
		var recs []*Record
		if kinds.Kind(pl.Kind) == kinds.Lead {
			ls, err := s.store.Reader.Lead.Query().Where(lead.PoolID(poolID), lead.OwnerIDNotNil(), lead.StatusEQ(lead.StatusActive), lead.IDGT(after)).
				Order(ent.Asc(lead.FieldID)).Limit(sweepBatch).All(ctx)
			if err != nil {
				return nil, 0, fmt.Errorf("preview: %w", err)
			}
			for _, l := range ls {
				recs = append(recs, fromLead(l))
			}
		} else {
			cs, err := s.store.Reader.Customer.Query().Where(customer.PoolID(poolID), customer.OwnerIDNotNil(), customer.StatusEQ(customer.StatusActive), customer.IDGT(after)).
				Order(ent.Asc(customer.FieldID)).Limit(sweepBatch).All(ctx)
			if err != nil {
				return nil, 0, fmt.Errorf("preview: %w", err)
			}
			for _, c := range cs {
				recs = append(recs, fromCustomer(c))
			}
		}
		for _, r := range recs {
			scanned++
			a, b := poolrules.ReclaimClock(now, r.Pure(), cur), poolrules.ReclaimClock(now, r.Pure(), next)
			if a.ReclaimAt != nil || b.ReclaimAt != nil {
				items = append(items, PreviewItem{ID: r.ID, Kind: r.Kind, OwnerID: r.OwnerID, Current: a, Proposed: b})
			}
		}
		if len(recs) < sweepBatch {
			break
		}
		after = recs[len(recs)-1].ID
	}
	sort.Slice(items, func(i, j int) bool { return earlier(items[i].Proposed.ReclaimAt, items[j].Proposed.ReclaimAt) })
	if len(items) > limit {
		items = items[:limit]
	}
	return items, scanned, nil
}

// earlier orders deadlines, none last.
func earlier(a, b *time.Time) bool {
	switch {
	case a == nil:
		return false
	case b == nil:
		return true
	}
	return a.Before(*b)
}

// applyMutation copies the rule fields a mutation sets onto a pool value.
func applyMutation(pl ent.Pool, m *ent.PoolMutation) ent.Pool {
	intField := func(get func() (int, bool), cleared bool, dst **int) {
		if v, ok := get(); ok {
			*dst = &v
		} else if cleared {
			*dst = nil
		}
	}
	intField(m.IdleDays, m.IdleDaysCleared(), &pl.IdleDays)
	intField(m.NoDealDays, m.NoDealDaysCleared(), &pl.NoDealDays)
	intField(m.NotifyDaysBefore, m.NotifyDaysBeforeCleared(), &pl.NotifyDaysBefore)
	intField(m.FreezeMaxDays, m.FreezeMaxDaysCleared(), &pl.FreezeMaxDays)
	intField(m.ClaimCooldownDays, m.ClaimCooldownDaysCleared(), &pl.ClaimCooldownDays)
	intField(m.DailyClaimLimit, m.DailyClaimLimitCleared(), &pl.DailyClaimLimit)
	if v, ok := m.ReclaimDealt(); ok {
		pl.ReclaimDealt = v
	}
	if v, ok := m.ByGrade(); ok {
		pl.ByGrade = v
	}
	return pl
}

// peek reads a record and its pool without locking.
func (s *Service) peek(ctx context.Context, kind kinds.Kind, id uuid.UUID) (*Record, *ent.Pool, error) {
	var r *Record
	if kind == kinds.Lead {
		l, err := s.store.Reader.Lead.Get(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("load lead: %w", err)
		}
		r = fromLead(l)
		r.lead = l
	} else {
		c, err := s.store.Reader.Customer.Get(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("load customer: %w", err)
		}
		r = fromCustomer(c)
		r.customer = c
	}
	pl, err := s.store.Reader.Pool.Get(ctx, r.PoolID)
	if err != nil {
		return nil, nil, fmt.Errorf("load pool: %w", err)
	}
	return r, pl, nil
}
