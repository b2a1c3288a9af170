package pool

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/claimrequest"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/store"
)

// OpHandover is the history operation of a leaver handover (离职交接).
const OpHandover = "handover"

// HandOverTo is where a handover sends a record: to a user, or to a pool
// (used for records of its kind; those of other kinds go back to their own
// pool). Exactly one is set.
type HandOverTo struct {
	User *uuid.UUID
	Pool *ent.Pool
}

// HandOverResult is what HandOver did with one record.
type HandOverResult struct {
	// Skipped: the record is not owned by the leaver (any more): a resumed
	// or repeated run moves nothing twice.
	Skipped bool
	// Overflow: the target user had no room under his cap for it; it went
	// back to its own pool (PoolID) instead.
	Overflow bool
	// PoolID is the record's pool after the move.
	PoolID uuid.UUID
}

// HandOver moves one record owned by from to its handover target, in the
// caller's transaction (one batch of a handover run, internal/handover):
// the same rules as a transfer (the target locked with the leaver in id
// order, active, under his cap) or a return, one history row and one
// <kind>.handed_over event. A record the target user has no room for goes
// back to its own pool and is reported as overflow, never dropped. The
// caller has checked that actor may hand over from's records; the record
// need not be visible to him otherwise.
func (s *Service) HandOver(ctx context.Context, tx *ent.Tx, actor *auth.Principal, kind kinds.Kind, id, from uuid.UUID,
	to HandOverTo, cascade bool, reason string) (HandOverResult, error) {
	o, err := s.open(ctx, tx, kind, id, func(*op) bool { return true })
	if err != nil {
		return HandOverResult{}, err
	}
	if o.r.OwnerID == nil || *o.r.OwnerID != from {
		return HandOverResult{Skipped: true, PoolID: o.r.PoolID}, nil
	}
	if to.User != nil {
		target := *to.User
		// Both users locked in id order, as Transfer does, so that two
		// opposite handovers (or a transfer) wait rather than deadlock.
		first, second := from, target
		if strings.Compare(second.String(), first.String()) < 0 {
			first, second = second, first
		}
		if _, err := s.lockHolder(ctx, tx, first, o.st); err != nil {
			return HandOverResult{}, err
		}
		h, err := s.lockHolder(ctx, tx, second, o.st)
		if err != nil {
			return HandOverResult{}, err
		}
		if h.user.ID != target {
			if h, err = s.lockHolder(ctx, tx, target, o.st); err != nil {
				return HandOverResult{}, err
			}
		}
		if !h.user.Active {
			return HandOverResult{}, errTargetInactive
		}
		counts := o.r.Counts(o.st)
		if !counts || h.underCap(kind) {
			if counts {
				if err := adjust(ctx, tx, from, kind, -1); err != nil {
					return HandOverResult{}, err
				}
			}
			if err := s.take(ctx, o, h); err != nil {
				return HandOverResult{}, err
			}
			if kind.Desc().Dealable && cascade {
				for _, c := range s.cascaders {
					if err := c(ctx, tx, id, from, target); err != nil {
						return HandOverResult{}, err
					}
				}
			}
			err := s.commit(ctx, o, Change{Op: OpHandover, From: &from, To: &target, Actor: actor, Reason: reason, RuleVersion: o.pl.RuleVersion})
			return HandOverResult{PoolID: o.r.PoolID}, err
		}
		// Over his cap: back to its own pool, reported.
		if _, err := s.release(ctx, o); err != nil {
			return HandOverResult{}, err
		}
		err = s.commit(ctx, o, Change{Op: OpHandover, From: &from, Actor: actor, Reason: reason, RuleVersion: o.pl.RuleVersion})
		return HandOverResult{Overflow: true, PoolID: o.r.PoolID}, err
	}
	if to.Pool != nil && kinds.Kind(to.Pool.Kind) == kind && to.Pool.ID != o.r.PoolID {
		// It moves into the target pool, whose rules now judge it.
		o.r.PoolID, o.pl = to.Pool.ID, to.Pool
	}
	if _, err := s.release(ctx, o); err != nil {
		return HandOverResult{}, err
	}
	err = s.commit(ctx, o, Change{Op: OpHandover, From: &from, Actor: actor, Reason: reason, RuleVersion: o.pl.RuleVersion})
	return HandOverResult{PoolID: o.r.PoolID}, err
}

// ReplaceManager re-routes what a leaving pool manager would have decided,
// in tx: in every pool he manages, he is replaced by successor (his
// supervisor), or only removed when successor is nil or already a manager
// there; the pools' pending claim requests then go to the successor (and
// to admins, who decide every pool's). Each changed pool's version moves
// and it gets a pool.updated event; its rules do not change. It returns
// the pools changed.
func (s *Service) ReplaceManager(ctx context.Context, tx *ent.Tx, actor *auth.Principal, leaver uuid.UUID, successor *uuid.UUID) ([]uuid.UUID, error) {
	// Pools are few: find his among all of them rather than query the
	// JSON column differently per engine, then lock only those (in id
	// order) and look again under the lock.
	all, err := tx.Pool.Query().Select(entpool.FieldID, entpool.FieldManagerIds).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load pools: %w", err)
	}
	var his []uuid.UUID
	for _, pl := range all {
		if slices.Contains(pl.ManagerIds, leaver) {
			his = append(his, pl.ID)
		}
	}
	if len(his) == 0 {
		return nil, nil
	}
	pools, err := store.ForUpdate(s.store, tx.Pool.Query().Where(entpool.IDIn(his...)).Order(ent.Asc(entpool.FieldID))).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("lock pools: %w", err)
	}
	var changed []uuid.UUID
	for _, pl := range pools {
		if !slices.Contains(pl.ManagerIds, leaver) {
			continue
		}
		managers := make([]uuid.UUID, 0, len(pl.ManagerIds))
		for _, m := range pl.ManagerIds {
			if m != leaver {
				managers = append(managers, m)
			}
		}
		if successor != nil && *successor != leaver && !slices.Contains(managers, *successor) {
			managers = append(managers, *successor)
		}
		if err := tx.Pool.UpdateOne(pl).SetManagerIds(managers).AddVersion(1).Exec(ctx); err != nil {
			return nil, fmt.Errorf("replace pool manager: %w", err)
		}
		if err := events.Emit(ctx, tx, events.Event{Type: events.PoolUpdated, SubjectKind: events.KindPool, SubjectID: pl.ID,
			Actor: actor.EventActor(), OccurredAt: s.clock.Now(), Data: events.Changed{Fields: []string{"managerIds"}}}); err != nil {
			return nil, err
		}
		changed = append(changed, pl.ID)
	}
	return changed, nil
}

// RejectRequestsOf rejects, in tx, every pending claim request requester
// filed (he is leaving: no record should go to him), with reason, decided
// by actor; each gets a claim_request.rejected event. It returns how many.
func (s *Service) RejectRequestsOf(ctx context.Context, tx *ent.Tx, actor *auth.Principal, requester uuid.UUID, reason string) (int, error) {
	reqs, err := store.ForUpdate(s.store, tx.ClaimRequest.Query().
		Where(claimrequest.RequesterID(requester), claimrequest.StatusEQ(claimrequest.StatusPending)).
		Order(ent.Asc(claimrequest.FieldID))).All(ctx)
	if err != nil {
		return 0, fmt.Errorf("load claim requests: %w", err)
	}
	now := s.clock.Now()
	for _, r := range reqs {
		upd := tx.ClaimRequest.UpdateOne(r).SetStatus(claimrequest.StatusRejected).SetReason(reason).SetDecidedAt(now)
		if actor != nil && actor.Type == auth.ActorUser {
			upd.SetDeciderID(actor.ID)
		}
		out, err := upd.Save(ctx)
		if err != nil {
			return 0, fmt.Errorf("reject claim request: %w", err)
		}
		if err := emitClaimRequest(ctx, tx, events.ClaimRequestRejected, actor, out, now); err != nil {
			return 0, err
		}
	}
	return len(reqs), nil
}
