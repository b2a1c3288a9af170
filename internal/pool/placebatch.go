package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
	"github.com/shoalcrm/shoal/internal/store"
)

// historyChunk bounds a multi-row insert of history rows or events: well
// under SQLite's 32766 variables and PostgreSQL's 65535 parameters.
const historyChunk = 500

// PlaceNewBatch places len(ids) new records of kind created by p in tx at
// once, as PlaceNew would place them one after the other in the order of
// ids: Place decides once where they land; when they are the creator's,
// his counter is locked and takes as many as his cap leaves room for, in
// one statement, and the rest are pooled (over his cap), as PlaceNew pools
// them once he is at his cap. insert writes the rows (owners[i] is the
// owner of ids[i], nil when pooled). Then the create history rows and
// events are written with one multi-row insert each, the owned records'
// reclaim clock with one update, and a pooled record in a pool with
// autoAssign is handed to a member, one at a time. It returns each
// record's placement.
func (s *Service) PlaceNewBatch(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, ids []uuid.UUID, requested *uuid.UUID,
	insert func(poolID uuid.UUID, owners []*uuid.UUID, now time.Time) error) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	pl, err := s.Place(ctx, tx, p, kind, requested)
	if err != nil {
		return nil, err
	}
	now := pl.Now
	owners := make([]*uuid.UUID, len(ids))
	how := make([]string, len(ids))
	for i := range how {
		how[i] = PlacedPooled
	}
	owned := 0
	if pl.pending {
		pl.pending = false
		if owned, err = takeSlots(ctx, s.store, tx, *pl.OwnerID, kind, len(ids), pl.ownerCap); err != nil {
			return nil, err
		}
		for i := range owned {
			owners[i], how[i] = pl.OwnerID, PlacedOwned
		}
	}
	if err := insert(pl.Pool.ID, owners, now); err != nil {
		return nil, err
	}
	recs := make([]*Record, len(ids))
	changes := make([]Change, len(ids))
	for i, id := range ids {
		recs[i] = &Record{Kind: kind, ID: id, OwnerID: owners[i], PoolID: pl.Pool.ID, Status: "active"}
		if owners[i] != nil {
			recs[i].OwnedAt = &now
		}
		changes[i] = Change{Op: "create", To: owners[i], Actor: p, RuleVersion: pl.Pool.RuleVersion}
	}
	if err := s.logAll(ctx, tx, recs, changes, now); err != nil {
		return nil, err
	}
	if owned > 0 {
		// As Created's save of an owned record: its reclaim deadline under
		// the pool's rules, and one version more. Every owned record of
		// the batch has the same owner, pool and time, so the same clock.
		clk := poolrules.ReclaimClock(now, recs[0].Pure(), Rules(pl.Pool))
		for from := 0; from < owned; from += historyChunk {
			to := min(owned, from+historyChunk)
			if _, err := s.update(ctx, inTx(tx), kind, s.idIn(ids[from:to]), "", func(m ownershipMutation) {
				if clk.ReclaimAt != nil {
					m.SetReclaimAt(*clk.ReclaimAt)
				}
				m.SetReclaimReason(clk.Reason)
				m.AddVersion(1)
				m.SetUpdatedAt(now)
			}); err != nil {
				return nil, fmt.Errorf("save %s: %w", kind, err)
			}
		}
	}
	if owned < len(ids) && pl.Pool.AutoAssign != entpool.AutoAssignOff {
		for i := owned; i < len(ids); i++ {
			// The pool as the previous assignment left it (round
			// robin remembers its last pick).
			fresh, err := tx.Pool.Get(ctx, pl.Pool.ID)
			if err != nil {
				return nil, fmt.Errorf("load pool: %w", err)
			}
			r, err := s.load(ctx, tx, kind, ids[i])
			if err != nil {
				return nil, err
			}
			assigned, err := s.autoAssign(ctx, tx, fresh, r, nil, now)
			if err != nil {
				return nil, err
			}
			if assigned {
				how[i] = PlacedAutoAssigned
			}
		}
	}
	return how, nil
}

// takeSlots adds up to n records of kind to user id's counter, as many as
// limit leaves room for (nil: no limit), and returns how many it added.
// It locks the user's row (PostgreSQL; SQLite has one writer) so that the
// counter it reads is the one it raises.
func takeSlots(ctx context.Context, st *store.Store, tx *ent.Tx, id uuid.UUID, kind kinds.Kind, n int, limit *int) (int, error) {
	u, err := store.ForUpdate(st, tx.User.Query().Where(user.ID(id))).Only(ctx)
	if err != nil {
		return 0, fmt.Errorf("take slots: %w", err)
	}
	k := n
	if limit != nil {
		k = max(0, min(n, *limit-kind.Desc().Owned(u)))
	}
	if err := adjust(ctx, tx, id, kind, k); err != nil {
		return 0, err
	}
	return k, nil
}

// logAll writes the history rows and the domain events of changes[i] to
// recs[i], with a multi-row insert per chunk, in the order given.
func (s *Service) logAll(ctx context.Context, tx *ent.Tx, recs []*Record, changes []Change, now time.Time) error {
	hs := make([]*ent.OwnershipChangeCreate, len(recs))
	es := make([]events.Event, len(recs))
	for i, r := range recs {
		c := changes[i]
		actorType := "system"
		var actorID *uuid.UUID
		if c.Actor != nil {
			actorType = string(c.Actor.Type)
			id := c.Actor.ID
			actorID = &id
		}
		hs[i] = tx.OwnershipChange.Create().
			SetRecordKind(ownershipchange.RecordKind(r.Kind)).
			SetRecordID(r.ID).
			SetOperation(ownershipchange.Operation(c.Op)).
			SetNillableFromOwnerID(c.From).
			SetNillableToOwnerID(c.To).
			SetReason(c.Reason).
			SetPoolID(r.PoolID).
			SetRuleVersion(c.RuleVersion).
			SetAt(now).
			SetActorType(ownershipchange.ActorType(actorType)).SetNillableActorID(actorID)
		typ, err := events.OwnershipType(string(r.Kind), c.Op)
		if err != nil {
			return err
		}
		es[i] = events.Event{Type: typ, SubjectKind: string(r.Kind), SubjectID: r.ID,
			Actor: c.Actor.EventActor(), OccurredAt: now, Data: c.ownership(r.PoolID)}
	}
	for from := 0; from < len(hs); from += historyChunk {
		to := min(len(hs), from+historyChunk)
		if err := tx.OwnershipChange.CreateBulk(hs[from:to]...).Exec(ctx); err != nil {
			return fmt.Errorf("write history: %w", err)
		}
		if err := events.EmitAll(ctx, tx, es[from:to]); err != nil {
			return err
		}
	}
	return nil
}
