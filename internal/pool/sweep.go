package pool

import (
	"context"

	"entgo.io/ent/dialect/sql"
	"fmt"
	"sort"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/cooldown"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/poolrules"
	"github.com/shoalcrm/shoal/internal/store"
)

// sweepBatch bounds each query and transaction of the sweep, so claims keep
// flowing while it runs.
const sweepBatch = 500

// SweepItem is one record the sweep acted on (or would act on).
type SweepItem struct {
	ID              uuid.UUID
	Kind            string
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
	for _, kind := range []string{"lead", "customer"} {
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

// candidates pages through the records whose due time (the freeze end, or
// the stored reclaim deadline) is at or before bound, in (due time, id)
// order, so every page is an index range scan however many are due.
func (s *Service) candidates(ctx context.Context, kind, what string, bound time.Time, after cursor) ([]cursor, error) {
	col := "reclaim_at"
	if what == "freeze" {
		col = "frozen_until"
	}
	where := func(sel *sql.Selector) {
		c := sel.C(col)
		sel.Where(sql.And(
			sql.LTE(c, bound),
			sql.Or(sql.GT(c, after.at), sql.And(sql.EQ(c, after.at), sql.GT(sel.C("id"), after.id))),
		))
		if what != "freeze" {
			sel.Where(sql.And(sql.NotNull(sel.C("owner_id")), sql.EQ(sel.C("status"), "active")))
		}
		sel.OrderBy(sql.Asc(c), sql.Asc(sel.C("id")))
	}
	var out []cursor
	switch kind {
	case "lead":
		rows, err := s.store.Client.Lead.Query().Where(predicate.Lead(where)).Limit(sweepBatch).
			Select(lead.FieldID, lead.FieldReclaimAt, lead.FieldFrozenUntil).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out = append(out, cursorOf(what, r.ID, r.ReclaimAt, r.FrozenUntil))
		}
	default:
		rows, err := s.store.Client.Customer.Query().Where(predicate.Customer(where)).Limit(sweepBatch).
			Select(customer.FieldID, customer.FieldReclaimAt, customer.FieldFrozenUntil).All(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			out = append(out, cursorOf(what, r.ID, r.ReclaimAt, r.FrozenUntil))
		}
	}
	return out, nil
}

// cursor is a position in (due time, id) order.
type cursor struct {
	at time.Time
	id uuid.UUID
}

func cursorOf(what string, id uuid.UUID, reclaimAt, frozenUntil *time.Time) cursor {
	t := reclaimAt
	if what == "freeze" {
		t = frozenUntil
	}
	c := cursor{id: id}
	if t != nil {
		c.at = *t
	}
	return c
}

func (s *Service) eachBatch(ctx context.Context, kind, what string, bound time.Time, fn func(ids []uuid.UUID) error) error {
	var after cursor
	for {
		page, err := s.candidates(ctx, kind, what, bound, after)
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
		if len(page) < sweepBatch {
			return nil
		}
		after = page[len(page)-1]
	}
}

// batch is the state of one sweep transaction over a batch of records: the
// pools and settings it has read, and what it did. A retried attempt starts
// from scratch, so a record is reported only by the attempt that commits.
type batch struct {
	pools map[uuid.UUID]*ent.Pool
	st    *Settings
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

func (b *batch) settings(ctx context.Context, tx *ent.Tx) (Settings, error) {
	if b.st == nil {
		st, err := loadSettings(ctx, tx.Setting)
		if err != nil {
			return Settings{}, err
		}
		b.st = &st
	}
	return *b.st, nil
}

// inBatch runs fn for every id in one bounded transaction and returns what
// the committed attempt did.
func (s *Service) inBatch(ctx context.Context, ids []uuid.UUID, fn func(tx *ent.Tx, b *batch, id uuid.UUID) error) ([]SweepItem, error) {
	var b *batch
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
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
	return b.items, nil
}

// sweepFreezes ends freezes whose time is up; the end starts a fresh grace
// period from the freeze's end.
func (s *Service) sweepFreezes(ctx context.Context, kind string, now time.Time, dryRun bool, res *SweepResult) error {
	return s.eachBatch(ctx, kind, "freeze", now, func(ids []uuid.UUID) error {
		if dryRun {
			for _, id := range ids {
				res.Released = append(res.Released, SweepItem{ID: id, Kind: kind})
			}
			return nil
		}
		items, err := s.inBatch(ctx, ids, func(tx *ent.Tx, b *batch, id uuid.UUID) error {
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

// sweepReclaims takes back what is due, re-judging each record under its
// lock inside the batch's transaction.
func (s *Service) sweepReclaims(ctx context.Context, kind string, now time.Time, dryRun bool, res *SweepResult) error {
	return s.eachBatch(ctx, kind, "reclaim", now, func(ids []uuid.UUID) error {
		if dryRun {
			for _, id := range ids {
				r, pl, err := s.peek(ctx, kind, id)
				if err != nil {
					return err
				}
				if c := poolrules.ReclaimClock(now, r.Pure(), Rules(pl)); poolrules.Due(now, c) {
					res.Reclaimed = append(res.Reclaimed, SweepItem{ID: id, Kind: kind, PreviousOwnerID: r.OwnerID, Reason: c.Reason, ReclaimAt: c.ReclaimAt})
				}
			}
			return nil
		}
		items, err := s.reclaimBatch(ctx, kind, ids, now)
		res.Reclaimed = append(res.Reclaimed, items...)
		return err
	})
}

// peek reads a record and its pool without locking (for dry runs).
func (s *Service) peek(ctx context.Context, kind string, id uuid.UUID) (*Record, *ent.Pool, error) {
	var r *Record
	if kind == "lead" {
		l, err := s.store.Reader.Lead.Get(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("load lead: %w", err)
		}
		r = fromLead(l)
	} else {
		c, err := s.store.Reader.Customer.Get(ctx, id)
		if err != nil {
			return nil, nil, fmt.Errorf("load customer: %w", err)
		}
		r = fromCustomer(c)
	}
	pl, err := s.store.Reader.Pool.Get(ctx, r.PoolID)
	if err != nil {
		return nil, nil, fmt.Errorf("load pool: %w", err)
	}
	return r, pl, nil
}

// sweepWarnings warns owners of records due within their pool's
// notifyDaysBefore; the unique (record, deadline) index keeps it to one
// warning per deadline, and only an inserted warning raises an event.
func (s *Service) sweepWarnings(ctx context.Context, kind string, now time.Time, dryRun bool, res *SweepResult) error {
	pools, err := s.store.Reader.Pool.Query().All(ctx)
	if err != nil {
		return fmt.Errorf("load pools: %w", err)
	}
	maxNotify := 0
	for _, pl := range pools {
		if string(pl.Kind) == kind && pl.NotifyDaysBefore != nil && *pl.NotifyDaysBefore > maxNotify {
			maxNotify = *pl.NotifyDaysBefore
		}
	}
	if maxNotify == 0 {
		return nil
	}
	horizon := now.Add(time.Duration(maxNotify) * 24 * time.Hour)
	return s.eachBatch(ctx, kind, "reclaim", horizon, func(ids []uuid.UUID) error {
		// Judge without locks first: most candidates need no warning yet.
		var due []SweepItem
		for _, id := range ids {
			r, pl, err := s.peek(ctx, kind, id)
			if err != nil {
				return err
			}
			c := poolrules.ReclaimClock(now, r.Pure(), Rules(pl))
			warnAt := poolrules.WarnAt(c, Rules(pl))
			if warnAt == nil || now.Before(*warnAt) || poolrules.Due(now, c) || r.OwnerID == nil {
				continue
			}
			exists, err := s.store.Reader.ReclaimWarning.Query().Where(reclaimwarning.RecordID(id), reclaimwarning.ReclaimAt(c.ReclaimAt.UTC())).Exist(ctx)
			if err != nil {
				return fmt.Errorf("load warning: %w", err)
			}
			if !exists {
				due = append(due, SweepItem{ID: id, Kind: kind, OwnerID: r.OwnerID, Reason: c.Reason, ReclaimAt: c.ReclaimAt})
			}
		}
		if dryRun || len(due) == 0 {
			if dryRun {
				res.Warned = append(res.Warned, due...)
			}
			return nil
		}
		var warned []SweepItem
		err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
			warned = warned[:0]
			for _, it := range due {
				_, err := tx.ReclaimWarning.Create().SetKind(reclaimwarning.Kind(kind)).SetRecordID(it.ID).SetOwnerID(*it.OwnerID).
					SetReclaimAt(it.ReclaimAt.UTC()).SetReason(it.Reason).SetCreatedAt(now).
					OnConflictColumns(reclaimwarning.FieldRecordID, reclaimwarning.FieldReclaimAt).DoNothing().ID(ctx)
				if isNoRows(err) {
					continue // another sweep warned first
				}
				if err != nil {
					return fmt.Errorf("write warning: %w", err)
				}
				warned = append(warned, it)
				if err := tx.DomainEvent.Create().SetType(kind + ".reclaimWarning").SetSubjectKind(kind).SetSubjectID(it.ID).
					SetData(map[string]any{"ownerId": it.OwnerID.String(), "reclaimAt": it.ReclaimAt.UTC(), "reason": it.Reason}).
					SetAt(now).Exec(ctx); err != nil {
					return fmt.Errorf("write warning event: %w", err)
				}
			}
			return nil
		})
		if err == nil {
			res.Warned = append(res.Warned, warned...)
		}
		return err
	})
}

// Warnings lists reclaim warnings p may see, newest first: his own; for a
// supervisor also those of everyone in his subtree; all for admins and
// auditors.
func (s *Service) Warnings(ctx context.Context, p *auth.Principal, before *uuid.UUID, limit int) ([]*ent.ReclaimWarning, error) {
	q := s.store.Reader.ReclaimWarning.Query().Order(ent.Desc(reclaimwarning.FieldID)).Limit(limit)
	if p.Role != auth.RoleAdmin && p.Role != auth.RoleAuditor {
		owners := []uuid.UUID{p.ID}
		if p.Role == auth.RoleSupervisor && p.TeamPath != "" {
			ids, err := s.store.Reader.User.Query().Where(user.TeamPathHasPrefix(p.TeamPath)).IDs(ctx)
			if err != nil {
				return nil, fmt.Errorf("load subtree: %w", err)
			}
			owners = append(owners, ids...)
		}
		q = q.Where(reclaimwarning.OwnerIDIn(owners...))
	}
	if before != nil {
		q = q.Where(reclaimwarning.IDLT(*before))
	}
	ws, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list warnings: %w", err)
	}
	return ws, nil
}

// Rejudge recomputes the stored reclaim deadline of every owned record of a
// pool after its rules changed, in bounded batches, so the sweep's
// due-time index stays true.
func (s *Service) Rejudge(ctx context.Context, poolID uuid.UUID) error {
	pl, err := s.store.Client.Pool.Get(ctx, poolID)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	kind := string(pl.Kind)
	var after uuid.UUID
	for {
		var ids []uuid.UUID
		if kind == "lead" {
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
	Kind     string
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
		if pl.Kind == "lead" {
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

// reclaimBatch reclaims the due records among ids in one transaction. The
// records are read (and on PostgreSQL locked) together and re-judged one by
// one; those still due in pools without autoAssign are reclaimed with a
// handful of set-based statements (one update of the records, one insert
// each of history rows, events and cooldowns, one counter update per
// owner), which is what keeps a sweep of 100,000 due records in seconds.
// The rest take the one-record path.
func (s *Service) reclaimBatch(ctx context.Context, kind string, ids []uuid.UUID, now time.Time) ([]SweepItem, error) {
	var items []SweepItem
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		items = items[:0]
		b := &batch{pools: map[uuid.UUID]*ent.Pool{}}
		recs, err := s.loadMany(ctx, tx, kind, ids)
		if err != nil {
			return err
		}
		st, err := b.settings(ctx, tx)
		if err != nil {
			return err
		}
		type due struct {
			r  *Record
			pl *ent.Pool
			c  poolrules.Clock
		}
		var bulk []due
		for _, r := range recs {
			pl, err := b.pool(ctx, tx, r.PoolID)
			if err != nil {
				return err
			}
			c := poolrules.ReclaimClock(now, r.Pure(), Rules(pl))
			switch {
			case !poolrules.Due(now, c):
				// A follow-up, deal or freeze got there first: store the
				// fresh deadline and leave the record be.
				if err := s.save(ctx, tx, r, pl, now); err != nil {
					return err
				}
			case pl.AutoAssign != entpool.AutoAssignOff:
				o := &op{tx: tx, r: r, pl: pl, st: st, now: now}
				prev, err := s.release(ctx, o)
				if err != nil {
					return err
				}
				if err := s.commit(ctx, o, Change{Op: "reclaim", From: prev, Reason: c.Reason, RuleVersion: pl.RuleVersion}); err != nil {
					return err
				}
				items = append(items, SweepItem{ID: r.ID, Kind: kind, PreviousOwnerID: prev, Reason: c.Reason, ReclaimAt: c.ReclaimAt})
				if _, err := s.autoAssign(ctx, tx, pl, r, prev, now); err != nil {
					return err
				}
			default:
				bulk = append(bulk, due{r, pl, c})
			}
		}
		if len(bulk) == 0 {
			return nil
		}
		bulkIDs := make([]uuid.UUID, len(bulk))
		perOwner := map[uuid.UUID]int{}
		history := make([]*ent.OwnershipChangeCreate, len(bulk))
		events := make([]*ent.DomainEventCreate, len(bulk))
		cooldowns := make([]*ent.CooldownCreate, len(bulk))
		for i, d := range bulk {
			prev := *d.r.OwnerID
			bulkIDs[i] = d.r.ID
			if d.r.Counts(st) {
				perOwner[prev]--
			}
			history[i] = tx.OwnershipChange.Create().SetRecordKind(ownershipchange.RecordKind(kind)).SetRecordID(d.r.ID).
				SetOperation(ownershipchange.OperationReclaim).SetFromOwnerID(prev).SetActorType(ownershipchange.ActorTypeSystem).
				SetReason(d.c.Reason).SetPoolID(d.r.PoolID).SetRuleVersion(d.pl.RuleVersion).SetAt(now)
			events[i] = tx.DomainEvent.Create().SetType(kind + ".reclaim").SetSubjectKind(kind).SetSubjectID(d.r.ID).SetAt(now).
				SetData(map[string]any{"operation": "reclaim", "poolId": d.r.PoolID.String(), "actorType": "system",
					"ruleVersion": d.pl.RuleVersion, "fromOwnerId": prev.String(), "reason": d.c.Reason})
			cooldowns[i] = tx.Cooldown.Create().SetRecordID(d.r.ID).SetUserID(prev).SetLostAt(now)
			items = append(items, SweepItem{ID: d.r.ID, Kind: kind, PreviousOwnerID: &prev, Reason: d.c.Reason, ReclaimAt: d.c.ReclaimAt})
		}
		if kind == "lead" {
			err = tx.Lead.Update().Where(lead.IDIn(bulkIDs...)).ClearOwnerID().ClearOwnedAt().ClearLastFollowUpAt().
				ClearFrozenUntil().ClearReleasedAt().ClearReclaimAt().SetReclaimReason("").AddVersion(1).SetUpdatedAt(now).Exec(ctx)
		} else {
			err = tx.Customer.Update().Where(customer.IDIn(bulkIDs...)).ClearOwnerID().ClearOwnedAt().ClearLastFollowUpAt().
				ClearFrozenUntil().ClearReleasedAt().ClearReclaimAt().SetReclaimReason("").AddVersion(1).SetUpdatedAt(now).Exec(ctx)
		}
		if err != nil {
			return fmt.Errorf("reclaim records: %w", err)
		}
		for owner, delta := range perOwner {
			if err := adjust(ctx, tx, owner, kind, delta); err != nil {
				return err
			}
		}
		if err := tx.OwnershipChange.CreateBulk(history...).Exec(ctx); err != nil {
			return fmt.Errorf("write history: %w", err)
		}
		if err := tx.DomainEvent.CreateBulk(events...).Exec(ctx); err != nil {
			return fmt.Errorf("write events: %w", err)
		}
		if err := tx.Cooldown.CreateBulk(cooldowns...).OnConflictColumns(cooldown.FieldRecordID, cooldown.FieldUserID).
			UpdateLostAt().Exec(ctx); err != nil {
			return fmt.Errorf("start cooldowns: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// loadMany reads records by id inside tx, locking them on PostgreSQL in
// id order (the order every transaction locks records in).
func (s *Service) loadMany(ctx context.Context, tx *ent.Tx, kind string, ids []uuid.UUID) ([]*Record, error) {
	var out []*Record
	if kind == "lead" {
		ls, err := store.ForUpdate(s.store, tx.Lead.Query().Where(lead.IDIn(ids...)).Order(ent.Asc(lead.FieldID))).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load leads: %w", err)
		}
		for _, l := range ls {
			out = append(out, fromLead(l))
		}
		return out, nil
	}
	cs, err := store.ForUpdate(s.store, tx.Customer.Query().Where(customer.IDIn(ids...)).Order(ent.Asc(customer.FieldID))).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load customers: %w", err)
	}
	for _, c := range cs {
		out = append(out, fromCustomer(c))
	}
	return out, nil
}
