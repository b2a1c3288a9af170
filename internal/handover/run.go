package handover

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	enthandover "github.com/shoalcrm/shoal/ent/handover"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
)

// Run works a handover run to its end, batch by batch (the job's work). It
// is safe to run again and to resume after a crash: each batch is one
// transaction that records its progress, and records no longer owned by
// the leaver are not touched. A run that ended does nothing. A rule that
// stops the run (the target user was deactivated meanwhile) marks it
// failed, with what it had moved, and is not an error: retrying would not
// help.
func (s *Service) Run(ctx context.Context, id uuid.UUID) error {
	for {
		done, err := s.Step(ctx, id)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
	}
}

// Step works one batch of a run: one transaction that moves up to the
// batch size of the leaver's records of the first kind he still owns
// records of, and adds what it did to the run's counts; or, when he owns
// none of the run's kinds any more, marks the run done. It reports whether
// the run has ended.
func (s *Service) Step(ctx context.Context, id uuid.UUID) (bool, error) {
	ended := false
	var failure error
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		ended, failure = false, nil
		h, err := store.ForUpdate(s.store, tx.Handover.Query().Where(enthandover.ID(id))).Only(ctx)
		if ent.IsNotFound(err) {
			ended = true // nothing to work
			return nil
		}
		if err != nil {
			return fmt.Errorf("load handover: %w", err)
		}
		if h.Status == enthandover.StatusDone || h.Status == enthandover.StatusFailed {
			ended = true
			return nil
		}
		moved, err := s.batchOf(ctx, tx, h)
		if e, ok := apperr.As(err); ok && e.Kind != apperr.Internal {
			// Refused by a rule: the run fails; what earlier batches
			// moved stays moved. This batch rolls back, so the failure
			// is recorded in a transaction of its own (fail).
			failure = err
			return err
		}
		if err != nil {
			return err
		}
		now := s.now()
		upd := tx.Handover.UpdateOne(h).SetCounts(h.Counts).SetOverflow(h.Overflow).SetUpdatedAt(now)
		if moved == 0 {
			h.Status, h.FinishedAt = enthandover.StatusDone, &now
			upd.SetStatus(enthandover.StatusDone).SetFinishedAt(now)
			ended = true
		} else {
			upd.SetStatus(enthandover.StatusRunning)
		}
		if err := upd.Exec(ctx); err != nil {
			return fmt.Errorf("record handover progress: %w", err)
		}
		if ended {
			return s.emitFinished(ctx, tx, h, now)
		}
		return nil
	})
	if failure != nil {
		return true, s.fail(ctx, id, failure)
	}
	return ended, err
}

// batchOf moves, in tx, the next batch of the leaver's records: those of
// the first of the run's kinds he still owns any of. It updates h's counts
// and overflow in memory and returns how many records it handled (0: he
// owns none of the run's kinds any more).
func (s *Service) batchOf(ctx context.Context, tx *ent.Tx, h *ent.Handover) (int, error) {
	actor, err := s.actor(ctx, tx, h)
	if err != nil {
		return 0, err
	}
	to := pool.HandOverTo{User: h.ToUserID}
	if h.ToPoolID != nil {
		pl, err := tx.Pool.Get(ctx, *h.ToPoolID)
		if err != nil {
			return 0, fmt.Errorf("load target pool: %w", err)
		}
		to.Pool = pl
	}
	if h.Counts == nil {
		h.Counts = map[string]schema.HandoverCount{}
	}
	for _, name := range h.Kinds {
		kind, err := kinds.Parse(name)
		if err != nil {
			return 0, err
		}
		ids, err := ownedQuery(ctx, tx, kind, h.FromUserID, s.batch)
		if err != nil {
			return 0, err
		}
		if len(ids) == 0 {
			continue
		}
		c := h.Counts[name]
		for _, rid := range ids {
			res, err := s.pools.HandOver(ctx, tx, actor, kind, rid, h.FromUserID, to, h.Cascade, h.Reason)
			if err != nil {
				return 0, err
			}
			switch {
			case res.Skipped:
			case res.Overflow:
				c.Overflow++
				h.Overflow = append(h.Overflow, schema.HandoverOverflow{Kind: name, RecordID: rid, PoolID: res.PoolID})
			default:
				c.Moved++
			}
		}
		h.Counts[name] = c
		return len(ids), nil
	}
	return 0, nil
}

// actor is the principal the run acts as: the user who asked for it.
func (s *Service) actor(ctx context.Context, tx *ent.Tx, h *ent.Handover) (*auth.Principal, error) {
	u, err := tx.User.Get(ctx, h.RequestedBy)
	if err != nil {
		return nil, fmt.Errorf("load handover requester: %w", err)
	}
	return auth.UserPrincipal(u), nil
}

// fail marks the run failed with why, in a transaction of its own (the
// batch that met the refusal rolled back).
func (s *Service) fail(ctx context.Context, id uuid.UUID, why error) error {
	msg := why.Error()
	if e, ok := apperr.As(why); ok {
		msg = e.Code + ": " + e.Message
	}
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		h, err := store.ForUpdate(s.store, tx.Handover.Query().Where(enthandover.ID(id))).Only(ctx)
		if err != nil {
			return fmt.Errorf("load handover: %w", err)
		}
		if h.Status == enthandover.StatusDone || h.Status == enthandover.StatusFailed {
			return nil
		}
		now := s.now()
		h.Status, h.FinishedAt = enthandover.StatusFailed, &now
		if err := tx.Handover.UpdateOne(h).SetStatus(enthandover.StatusFailed).SetError(msg).SetFinishedAt(now).
			SetUpdatedAt(now).Exec(ctx); err != nil {
			return fmt.Errorf("fail handover: %w", err)
		}
		return s.emitFinished(ctx, tx, h, now)
	})
}

func (s *Service) emitFinished(ctx context.Context, tx *ent.Tx, h *ent.Handover, now time.Time) error {
	actor, err := s.actor(ctx, tx, h)
	if err != nil {
		return err
	}
	return events.Emit(ctx, tx, events.Event{Type: events.HandoverFinished, SubjectKind: events.KindHandover, SubjectID: h.ID,
		Actor: actor.EventActor(), OccurredAt: now, Data: payload(h)})
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
