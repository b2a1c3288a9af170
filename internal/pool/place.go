package pool

import (
	"context"
	"fmt"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/cooldown"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// Placements of a new record.
const (
	PlacedOwned        = "owned"
	PlacedPooled       = "pooled"
	PlacedAutoAssigned = "autoAssigned"
)

var errPoolNotAllowed = apperr.New(apperr.Forbidden, "pool_not_allowed", "you may not create records in this pool")

// Placement is where a new record goes: its home pool and, unless pooled,
// its owner.
type Placement struct {
	Pool    *ent.Pool
	OwnerID *uuid.UUID
	How     string
	Now     time.Time
	// pending is set when OwnerID is the creator, decided from his
	// counter as last committed, and the record is not yet added to it:
	// Created takes the slot (takeSlot) as late as it can, and pools the
	// record when the cap filled meanwhile. ownerCap is the cap to take
	// it under (nil: none).
	pending  bool
	ownerCap *int
}

// Place decides where a record of kind created by p lands (domain.md,
// Caps): a person's record is his, in his landing pool (his team's default
// pool, else the global default), unless he is at his cap, when it is
// pooled there; records created into a named pool (its members and
// managers, admins, pool-bound API keys) are pooled. It runs inside the
// creating transaction. Call Created after inserting.
//
// Place does not lock the creator's row: it reads his counter as last
// committed and decides tentatively; Created then takes the slot with one
// conditional increment near the end of the transaction. Locking the row
// here, as Place once did, held it through the duplicate checks, the
// inserts and the history, so on PostgreSQL every create by one user (an
// import, a form's batch) waited for the previous one to commit.
func (s *Service) Place(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, requested *uuid.UUID) (*Placement, error) {
	now := s.clock.Now()
	target := requested
	if p.Type == auth.ActorAPIKey && p.PoolID != nil {
		if requested != nil && *requested != *p.PoolID {
			return nil, errPoolNotAllowed
		}
		target = p.PoolID
	}
	var pl *ent.Pool
	var err error
	if target != nil {
		pl, err = tx.Pool.Get(ctx, *target)
		if ent.IsNotFound(err) {
			return nil, apperr.Invalidf("body/poolId", "unknown_pool", "no such pool")
		}
	} else {
		teamPath := ""
		if p.Type == auth.ActorUser {
			teamPath = p.TeamPath
		}
		pl, err = s.landing(ctx, tx, teamPath, kind)
	}
	if err != nil {
		return nil, fmt.Errorf("load pool: %w", err)
	}
	if kinds.Kind(pl.Kind) != kind {
		return nil, apperr.Invalidf("body/poolId", "wrong_pool_kind", "the pool holds records of another kind")
	}
	// A user may create into a pool he could claim from (a member, say a
	// rep putting a lead in his team's pool) or manages; pools are no
	// secret, so the answer for another pool is 403, not 404.
	if requested != nil && p.Type == auth.ActorUser && !scopeOf(p, pl).MayClaim(pl.ID) {
		return nil, errPoolNotAllowed
	}
	place := &Placement{Pool: pl, How: PlacedPooled, Now: now}
	if target == nil && p.Type == auth.ActorUser {
		st, err := loadSettings(ctx, s.side(tx).Setting)
		if err != nil {
			return nil, err
		}
		u, err := tx.User.Get(ctx, p.ID)
		if ent.IsNotFound(err) {
			return nil, apperr.Invalidf("body/ownerId", "unknown_user", "no such user")
		}
		if err != nil {
			return nil, fmt.Errorf("load creator: %w", err)
		}
		caps, err := s.resolveCaps(ctx, tx, u, st)
		if err != nil {
			return nil, err
		}
		h := &holder{user: u, caps: caps}
		if h.underCap(kind) {
			id := p.ID
			place.OwnerID, place.How = &id, PlacedOwned
			place.pending, place.ownerCap = true, caps.For(kind)
		}
	}
	return place, nil
}

// takeSlot adds one record of kind to user id's counter unless that would
// pass limit (nil: no limit), in one statement, and reports whether it
// did. On PostgreSQL the statement locks the user's row until commit; a
// concurrent transaction holding it makes it wait and then re-evaluate
// the condition on the committed counter (READ COMMITTED), so the cap is
// exact. On SQLite the single writer makes it so.
func takeSlot(ctx context.Context, tx *ent.Tx, id uuid.UUID, kind kinds.Kind, limit *int) (bool, error) {
	counter := kind.Desc().OwnedCounter
	upd := tx.User.Update().Where(user.ID(id))
	if limit != nil {
		upd = upd.Where(predicate.User(sql.FieldLT(counter, *limit)))
	}
	if err := upd.Mutation().AddField(counter, 1); err != nil {
		return false, fmt.Errorf("take slot: %w", err)
	}
	n, err := upd.Save(ctx)
	if err != nil {
		return false, fmt.Errorf("take slot: %w", err)
	}
	return n == 1, nil
}

// landing is the pool where records of kind land for a user on teamPath
// when no pool is named (his creates, owned or over cap) and where his
// records of the global default pool go when returned: the default pool of
// that kind of his team or of the nearest ancestor that sets one, as caps
// resolve, else the kind's global default pool.
func (s *Service) landing(ctx context.Context, tx *ent.Tx, teamPath string, kind kinds.Kind) (*ent.Pool, error) {
	chain, err := s.teamChain(ctx, tx, teamPath)
	if err != nil {
		return nil, err
	}
	for _, t := range chain {
		if id := kind.Desc().TeamDefaultPool(t); id != nil {
			pl, _, err := s.rules(ctx, tx, *id)
			return pl, err
		}
	}
	return tx.Pool.Query().Where(entpool.KindEQ(entpool.Kind(kind)), entpool.IsDefault(true)).First(ctx)
}

// PlaceNew places a new record of kind created by p in tx: Place decides
// where it lands, insert writes the row there (its pool, its owner or nil,
// the time), and Created finishes. It returns how the record was placed
// (PlacedOwned, PlacedPooled, PlacedAutoAssigned, …). records creates its
// rows through it without knowing the engine's types.
func (s *Service) PlaceNew(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, id uuid.UUID, requested *uuid.UUID,
	insert func(poolID uuid.UUID, owner *uuid.UUID, now time.Time) error) (string, error) {
	pl, err := s.Place(ctx, tx, p, kind, requested)
	if err != nil {
		return "", err
	}
	if err := insert(pl.Pool.ID, pl.OwnerID, pl.Now); err != nil {
		return "", err
	}
	if err := s.Created(ctx, tx, p, kind, id, pl); err != nil {
		return "", err
	}
	return pl.How, nil
}

// Created finishes placing a newly inserted record: it writes the create
// history row and event and, for a pooled record in a pool with
// autoAssign, hands it to a member at once.
func (s *Service) Created(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, id uuid.UUID, place *Placement) error {
	r, err := s.load(ctx, tx, kind, id)
	if err != nil {
		return err
	}
	if place.pending {
		place.pending = false
		took, err := takeSlot(ctx, tx, *place.OwnerID, kind, place.ownerCap)
		if err != nil {
			return err
		}
		if !took {
			// His other creates filled the cap since Place read it:
			// the record is pooled, as if he had been at his cap.
			r.OwnerID, r.OwnedAt = nil, nil
			place.OwnerID, place.How = nil, PlacedPooled
			if err := s.save(ctx, tx, r, place.Pool, place.Now); err != nil {
				return err
			}
		}
	}
	if err := s.log(ctx, tx, r, Change{Op: "create", To: place.OwnerID, Actor: p, RuleVersion: place.Pool.RuleVersion}, place.Now); err != nil {
		return err
	}
	if place.OwnerID != nil {
		return s.save(ctx, tx, r, place.Pool, place.Now)
	}
	assigned, err := s.autoAssign(ctx, tx, place.Pool, r, nil, place.Now)
	if err != nil {
		return err
	}
	if assigned {
		place.How, place.OwnerID = PlacedAutoAssigned, r.OwnerID
	}
	return nil
}

// autoAssign gives a pooled record to an eligible member of a pool with
// autoAssign on (skipping inactive, at-cap and cooling-down members, and
// the excluded previous owner), in the caller's transaction. It reports
// whether it assigned.
func (s *Service) autoAssign(ctx context.Context, tx *ent.Tx, pl *ent.Pool, r *Record, exclude *uuid.UUID, now time.Time) (bool, error) {
	if pl.AutoAssign == entpool.AutoAssignOff || r.OwnerID != nil || r.Status != "active" {
		return false, nil
	}
	q := tx.User.Query().Where(user.Active(true), user.RoleEQ(user.RoleRep)).Order(ent.Asc(user.FieldID))
	q = q.Where(predicate.User(authz.Members(ScopePool(pl))))
	members, err := q.All(ctx)
	if err != nil {
		return false, fmt.Errorf("load pool members: %w", err)
	}
	if len(members) == 0 {
		return false, nil
	}
	st, err := loadSettings(ctx, tx.Setting)
	if err != nil {
		return false, err
	}
	cooling := map[uuid.UUID]bool{}
	if days := pl.ClaimCooldownDays; days != nil {
		cds, err := tx.Cooldown.Query().Where(cooldown.RecordID(r.ID), cooldown.LostAtGT(now.Add(-time.Duration(*days)*24*time.Hour))).All(ctx)
		if err != nil {
			return false, fmt.Errorf("load cooldowns: %w", err)
		}
		for _, c := range cds {
			cooling[c.UserID] = true
		}
	}
	cands := make([]poolrules.Candidate, 0, len(members))
	byID := map[string]*ent.User{}
	for _, m := range members {
		caps, err := s.resolveCaps(ctx, tx, m, st)
		if err != nil {
			return false, err
		}
		owned := r.Kind.Desc().Owned(m)
		inCooldown := cooling[m.ID] || (exclude != nil && *exclude == m.ID)
		cands = append(cands, poolrules.Candidate{UserID: m.ID.String(), Active: m.Active, Owned: owned, Cap: caps.For(r.Kind), InCooldown: inCooldown})
		byID[m.ID.String()] = m
	}
	// Lock the pick and re-check under the lock; if another transaction
	// filled him up meanwhile, drop him and pick again.
	for range len(cands) {
		var pick string
		if pl.AutoAssign == entpool.AutoAssignRoundRobin {
			last := ""
			if pl.LastAssignedID != nil {
				last = pl.LastAssignedID.String()
			}
			pick = poolrules.PickRoundRobin(cands, last)
		} else {
			pick = poolrules.PickLeastLoaded(cands)
		}
		if pick == "" {
			return false, nil
		}
		h, err := s.lockHolder(ctx, tx, byID[pick].ID, st)
		if err != nil {
			return false, err
		}
		if h.user.Active && h.underCap(r.Kind) {
			return true, s.assignTo(ctx, tx, pl, r, h, st, now)
		}
		for i := range cands {
			if cands[i].UserID == pick {
				cands[i].Active = false
			}
		}
	}
	return false, nil
}

// assignTo hands a pooled record to h as an automatic assignment.
func (s *Service) assignTo(ctx context.Context, tx *ent.Tx, pl *ent.Pool, r *Record, h *holder, st Settings, now time.Time) error {
	id := h.user.ID
	r.OwnerID, r.OwnedAt, r.FrozenUntil = &id, &now, nil
	if r.Counts(st) {
		if err := adjust(ctx, tx, id, r.Kind, 1); err != nil {
			return err
		}
	}
	if err := tx.Pool.UpdateOne(pl).SetLastAssignedID(id).Exec(ctx); err != nil {
		return fmt.Errorf("remember round robin: %w", err)
	}
	if err := s.save(ctx, tx, r, pl, now); err != nil {
		return err
	}
	return s.log(ctx, tx, r, Change{Op: "autoAssign", To: &id, RuleVersion: pl.RuleVersion}, now)
}
