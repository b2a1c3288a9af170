package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// sweepWarnings warns owners of records due within their pool's
// notifyDaysBefore; the unique (record, deadline) index keeps it to one
// warning per deadline, and only an inserted warning raises an event.
func (s *Service) sweepWarnings(ctx context.Context, kind kinds.Kind, now time.Time, dryRun bool, res *SweepResult) error {
	pools, err := s.store.Reader.Pool.Query().All(ctx)
	if err != nil {
		return fmt.Errorf("load pools: %w", err)
	}
	cache := poolCache{c: s.store.Reader, m: map[uuid.UUID]*ent.Pool{}}
	maxNotify := 0
	for _, pl := range pools {
		cache.m[pl.ID] = pl
		if kinds.Kind(pl.Kind) == kind && pl.NotifyDaysBefore != nil && *pl.NotifyDaysBefore > maxNotify {
			maxNotify = *pl.NotifyDaysBefore
		}
	}
	if maxNotify == 0 {
		return nil
	}
	horizon := now.Add(time.Duration(maxNotify) * 24 * time.Hour)
	p := s.newPacer()
	return s.eachBatch(ctx, kind, "reclaim", horizon, p, func(ids []uuid.UUID) error {
		due, err := s.warningsDue(ctx, kind, ids, cache, now)
		if err != nil || len(due) == 0 {
			return err
		}
		if dryRun {
			res.Warned = append(res.Warned, due...)
			return nil
		}
		warned, err := s.writeWarnings(ctx, kind, due, now, p)
		res.Warned = append(res.Warned, warned...)
		return err
	})
}

// warningsDue judges a page of candidates without locks (most need no
// warning yet) and returns those whose warning time has come and who have
// no warning for their current deadline.
func (s *Service) warningsDue(ctx context.Context, kind kinds.Kind, ids []uuid.UUID, pools poolCache, now time.Time) ([]SweepItem, error) {
	recs, err := s.peekMany(ctx, kind, ids)
	if err != nil {
		return nil, err
	}
	var due []SweepItem
	for _, r := range recs {
		pl, err := pools.get(ctx, r.PoolID)
		if err != nil {
			return nil, err
		}
		c := poolrules.ReclaimClock(now, r.Pure(), Rules(pl))
		warnAt := poolrules.WarnAt(c, Rules(pl))
		if warnAt == nil || now.Before(*warnAt) || poolrules.Due(now, c) || r.OwnerID == nil {
			continue
		}
		due = append(due, SweepItem{ID: r.ID, Kind: kind, OwnerID: r.OwnerID, Reason: c.Reason, ReclaimAt: c.ReclaimAt})
	}
	if len(due) == 0 {
		return nil, nil
	}
	dueIDs := make([]uuid.UUID, len(due))
	for i, it := range due {
		dueIDs[i] = it.ID
	}
	existing, err := s.store.Reader.ReclaimWarning.Query().
		Where(reclaimwarning.RecordIDIn(dueIDs...)).
		Select(reclaimwarning.FieldRecordID, reclaimwarning.FieldReclaimAt).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load warnings: %w", err)
	}
	warned := map[uuid.UUID][]time.Time{}
	for _, w := range existing {
		warned[w.RecordID] = append(warned[w.RecordID], w.ReclaimAt)
	}
	out := due[:0]
	for _, it := range due {
		if !containsTime(warned[it.ID], *it.ReclaimAt) {
			out = append(out, it)
		}
	}
	return out, nil
}

func containsTime(ts []time.Time, t time.Time) bool {
	for _, u := range ts {
		if u.Equal(t) {
			return true
		}
	}
	return false
}

// writeWarnings inserts the warnings in one transaction; a warning another
// sweep inserted first is skipped, without an event.
func (s *Service) writeWarnings(ctx context.Context, kind kinds.Kind, due []SweepItem, now time.Time, p *pacer) ([]SweepItem, error) {
	var warned []SweepItem
	var took time.Duration
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		t0 := time.Now()
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
			if err := events.Emit(ctx, tx, events.Event{Type: events.Type(kind + ".reclaim_warned"), SubjectKind: string(kind),
				SubjectID: it.ID, Actor: events.System, OccurredAt: now,
				Data: events.ReclaimWarning{OwnerID: *it.OwnerID, ReclaimAt: it.ReclaimAt.UTC(), Reason: it.Reason}}); err != nil {
				return err
			}
		}
		took = time.Since(t0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.took(took)
	return warned, nil
}
