package pool

import (
	"context"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/cooldown"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// sweepReclaims takes back what is due, re-judging each record under its
// lock inside the batch's transaction.
func (s *Service) sweepReclaims(ctx context.Context, kind kinds.Kind, now time.Time, dryRun bool, res *SweepResult) error {
	p := s.sweepPacer(dryRun)
	return s.eachBatch(ctx, kind, "reclaim", now, p, func(ids []uuid.UUID) error {
		if dryRun {
			return s.previewReclaims(ctx, kind, ids, now, res)
		}
		items, err := s.reclaimBatch(ctx, kind, ids, now, p)
		res.Reclaimed = append(res.Reclaimed, items...)
		return err
	})
}

// previewReclaims reports which of ids a real sweep would reclaim now.
func (s *Service) previewReclaims(ctx context.Context, kind kinds.Kind, ids []uuid.UUID, now time.Time, res *SweepResult) error {
	recs, err := s.peekMany(ctx, kind, ids)
	if err != nil {
		return err
	}
	pools := poolCache{c: s.store.Reader, m: map[uuid.UUID]*ent.Pool{}}
	for _, r := range recs {
		pl, err := pools.get(ctx, r.PoolID)
		if err != nil {
			return err
		}
		if c := poolrules.ReclaimClock(now, r.Pure(), Rules(pl)); poolrules.Due(now, c) {
			res.Reclaimed = append(res.Reclaimed, SweepItem{ID: r.ID, Kind: kind, PreviousOwnerID: r.OwnerID, Reason: c.Reason, ReclaimAt: c.ReclaimAt})
		}
	}
	return nil
}

// dueRecord is a record a reclaim batch re-judged as due, with its pool
// and clock.
type dueRecord struct {
	r  *Record
	pl *ent.Pool
	c  poolrules.Clock
}

// reclaimBatch reclaims the due records among ids in one transaction and
// tells p how long the transaction held its locks: from the start of its
// body to the end of its commit. The commit counts: on SQLite writing a
// large batch's pages to the WAL takes as long as the body, and claims
// wait for both.
func (s *Service) reclaimBatch(ctx context.Context, kind kinds.Kind, ids []uuid.UUID, now time.Time, p *pacer) ([]SweepItem, error) {
	var items []SweepItem
	var t0 time.Time
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		t0 = time.Now()
		var err error
		items, err = s.reclaimIn(ctx, tx, kind, ids, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.took(time.Since(t0))
	return items, nil
}

// reclaimIn reclaims the due records among ids in tx. The records still due
// by their stored deadline are read and locked in one statement and
// re-judged one by one, so a follow-up, deal or freeze committed a moment
// earlier keeps its record. Those still due go back to pools without
// autoAssign through a handful of set-based statements whatever the
// batch's size (reclaimBulk); in pools with autoAssign each takes the
// one-record path, which assigns it again.
func (s *Service) reclaimIn(ctx context.Context, tx *ent.Tx, kind kinds.Kind, ids []uuid.UUID, now time.Time) ([]SweepItem, error) {
	recs, err := s.lockDue(ctx, tx, kind, ids, now)
	if err != nil || len(recs) == 0 {
		return nil, err
	}
	st, err := loadSettings(ctx, tx.Setting)
	if err != nil {
		return nil, err
	}
	pools := poolCache{c: tx.Client(), m: map[uuid.UUID]*ent.Pool{}}
	var items []SweepItem
	var bulk []dueRecord
	for _, r := range recs {
		pl, err := pools.get(ctx, r.PoolID)
		if err != nil {
			return nil, err
		}
		c := poolrules.ReclaimClock(now, r.Pure(), Rules(pl))
		switch {
		case !poolrules.Due(now, c):
			// The stored deadline is stale (the rules changed since it
			// was stored): store the true one and leave the record be.
			if err := s.save(ctx, tx, r, pl, now); err != nil {
				return nil, err
			}
		case pl.AutoAssign != entpool.AutoAssignOff:
			it, err := s.reclaimOne(ctx, tx, dueRecord{r, pl, c}, st, now)
			if err != nil {
				return nil, err
			}
			items = append(items, it)
		default:
			bulk = append(bulk, dueRecord{r, pl, c})
		}
	}
	done, err := s.reclaimBulk(ctx, tx, kind, bulk, st, now)
	if err != nil {
		return nil, err
	}
	return append(items, done...), nil
}

// lockDue reads the records among ids that are still owned, active and due
// by their stored deadline, in id order. On PostgreSQL it locks them,
// skipping rows another transaction holds: a record being claimed,
// followed up or reclaimed by a concurrent sweep right now is left to that
// transaction (and to the next sweep), and the sweep never waits for, or
// deadlocks with, the operations of reps. SQLite needs no row locks: the
// transaction holds the database's write lock.
//
// It selects every column save compares against (the stored deadline
// included): a record whose deadline turns out stale is saved with only
// its changed columns, and a missing column would read as unchanged.
func (s *Service) lockDue(ctx context.Context, tx *ent.Tx, kind kinds.Kind, ids []uuid.UUID, now time.Time) ([]*Record, error) {
	t, err := tableOf(kind)
	if err != nil {
		return nil, err
	}
	recs, err := s.rows(ctx, inTx(tx), kind, selection{
		where: where(s.idIn(ids), sql.FieldNotNull(colOwnerID), sql.FieldEQ(colStatus, "active"), sql.FieldLTE(colReclaimAt, now)),
		order: byID, lock: lockSkipLocked, columns: t.judged})
	if err != nil {
		return nil, fmt.Errorf("lock due %ss: %w", kind, err)
	}
	return recs, nil
}

// reclaimOne reclaims one record through the engine's one-record path and
// hands it to autoAssign.
func (s *Service) reclaimOne(ctx context.Context, tx *ent.Tx, d dueRecord, st Settings, now time.Time) (SweepItem, error) {
	o := &op{tx: tx, r: d.r, pl: d.pl, st: st, now: now}
	prev, err := s.release(ctx, o)
	if err != nil {
		return SweepItem{}, err
	}
	if err := s.commit(ctx, o, Change{Op: "reclaim", From: prev, Reason: d.c.Reason, RuleVersion: d.pl.RuleVersion}); err != nil {
		return SweepItem{}, err
	}
	if _, err := s.autoAssign(ctx, tx, d.pl, d.r, prev, now); err != nil {
		return SweepItem{}, err
	}
	return SweepItem{ID: d.r.ID, Kind: d.r.Kind, PreviousOwnerID: prev, Reason: d.c.Reason, ReclaimAt: d.c.ReclaimAt}, nil
}

// reclaimBulk returns due records to their pools with one update of the
// records, one multi-row insert each of history rows, events and
// cooldowns, and one counter update per previous owner.
func (s *Service) reclaimBulk(ctx context.Context, tx *ent.Tx, kind kinds.Kind, due []dueRecord, st Settings, now time.Time) ([]SweepItem, error) {
	if len(due) == 0 {
		return nil, nil
	}
	if err := s.clearOwners(ctx, tx, kind, due, now); err != nil {
		return nil, err
	}
	lost := map[uuid.UUID]int{}
	items := make([]SweepItem, len(due))
	history := make([]*ent.OwnershipChangeCreate, len(due))
	evs := make([]events.Event, len(due))
	cooldowns := make([]*ent.CooldownCreate, len(due))
	for i, d := range due {
		prev := *d.r.OwnerID
		if d.r.Counts(st) {
			lost[prev]++
		}
		history[i] = tx.OwnershipChange.Create().SetRecordKind(ownershipchange.RecordKind(kind)).SetRecordID(d.r.ID).
			SetOperation(ownershipchange.OperationReclaim).SetFromOwnerID(prev).SetActorType(ownershipchange.ActorTypeSystem).
			SetReason(d.c.Reason).SetPoolID(d.r.PoolID).SetRuleVersion(d.pl.RuleVersion).SetAt(now)
		evs[i] = events.Event{Type: events.Type(kind + ".reclaimed"), SubjectKind: string(kind), SubjectID: d.r.ID,
			Actor: events.System, OccurredAt: now, Data: Change{Op: "reclaim", From: &prev, Reason: d.c.Reason,
				RuleVersion: d.pl.RuleVersion}.ownership(d.r.PoolID)}
		cooldowns[i] = tx.Cooldown.Create().SetRecordID(d.r.ID).SetUserID(prev).SetLostAt(now)
		items[i] = SweepItem{ID: d.r.ID, Kind: kind, PreviousOwnerID: &prev, Reason: d.c.Reason, ReclaimAt: d.c.ReclaimAt}
	}
	if err := tx.OwnershipChange.CreateBulk(history...).Exec(ctx); err != nil {
		return nil, fmt.Errorf("write history: %w", err)
	}
	if err := events.EmitAll(ctx, tx, evs); err != nil {
		return nil, err
	}
	if err := tx.Cooldown.CreateBulk(cooldowns...).OnConflictColumns(cooldown.FieldRecordID, cooldown.FieldUserID).
		UpdateLostAt().Exec(ctx); err != nil {
		return nil, fmt.Errorf("start cooldowns: %w", err)
	}
	if err := adjustLost(ctx, tx, kind, lost); err != nil {
		return nil, err
	}
	return items, nil
}

// adjustLost takes what each previous owner lost off his counter, one
// update per owner in id order (the order every transaction locks users
// in). It comes last in the batch, so on PostgreSQL the owners' rows stay
// locked, and their own claims wait, only for the commit.
func adjustLost(ctx context.Context, tx *ent.Tx, kind kinds.Kind, lost map[uuid.UUID]int) error {
	owners := make([]uuid.UUID, 0, len(lost))
	for o := range lost {
		owners = append(owners, o)
	}
	slices.SortFunc(owners, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
	for _, o := range owners {
		if err := adjust(ctx, tx, o, kind, -lost[o]); err != nil {
			return err
		}
	}
	return nil
}

// clearOwners returns the records to their pools with one UPDATE. It
// clears only the columns some record of the batch has set: every column
// named in an UPDATE costs a rewrite of each index on it, and most due
// records were never frozen (or followed up).
func (s *Service) clearOwners(ctx context.Context, tx *ent.Tx, kind kinds.Kind, due []dueRecord, now time.Time) error {
	ids := make([]uuid.UUID, len(due))
	var followedUp, frozen, released bool
	for i, d := range due {
		ids[i] = d.r.ID
		followedUp = followedUp || d.r.LastFollowUpAt != nil
		frozen = frozen || d.r.FrozenUntil != nil
		released = released || d.r.ReleasedAt != nil
	}
	clear := func(m ownershipMutation) {
		m.ClearOwnerID()
		m.ClearOwnedAt()
		m.ClearReclaimAt()
		m.SetReclaimReason("")
		m.AddVersion(1)
		m.SetUpdatedAt(now)
		if followedUp {
			m.ClearLastFollowUpAt()
		}
		if frozen {
			m.ClearFrozenUntil()
		}
		if released {
			m.ClearReleasedAt()
		}
	}
	n, err := s.update(ctx, inTx(tx), kind, s.idIn(ids), "", clear)
	if err != nil {
		return fmt.Errorf("reclaim records: %w", err)
	}
	if n != len(ids) {
		// The records are locked (or the database is): nothing else can
		// have removed them since lockDue read them.
		return fmt.Errorf("reclaim records: %d of %d updated", n, len(ids))
	}
	return nil
}

// poolCache reads each pool once per batch.
type poolCache struct {
	c *ent.Client
	m map[uuid.UUID]*ent.Pool
}

func (pc poolCache) get(ctx context.Context, id uuid.UUID) (*ent.Pool, error) {
	if pl, ok := pc.m[id]; ok {
		return pl, nil
	}
	pl, err := pc.c.Pool.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("load pool: %w", err)
	}
	pc.m[id] = pl
	return pl, nil
}

// peekMany reads records by id without locking (for dry runs and
// warnings), in no particular order; ids that no longer exist are left
// out.
func (s *Service) peekMany(ctx context.Context, kind kinds.Kind, ids []uuid.UUID) ([]*Record, error) {
	recs, err := s.rows(ctx, via(s.store.Reader), kind, selection{where: s.idIn(ids)})
	if err != nil {
		return nil, fmt.Errorf("load %ss: %w", kind, err)
	}
	return recs, nil
}
