package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// Record is the ownership state of a lead or customer, whichever it is, as
// the engine reads and writes it.
type Record struct {
	Kind           kinds.Kind
	ID             uuid.UUID
	OwnerID        *uuid.UUID
	PoolID         uuid.UUID
	OwnedAt        *time.Time
	LastFollowUpAt *time.Time
	FrozenUntil    *time.Time
	ReleasedAt     *time.Time
	Status         string
	Dealt          bool
	Grade          string

	// stored is the state as loaded, with the stored reclaim clock, so
	// that save writes only what changed (nil: unknown, write it all).
	stored *storedState
	// row is the whole row as loaded (*ent.Lead or *ent.Customer; nil
	// when only some columns were read); save keeps it in step with what
	// it writes, so an operation can answer without reading the row back.
	row any
}

// storedState is a record's ownership state and reclaim clock as stored.
type storedState struct {
	Record
	ReclaimAt     *time.Time
	ReclaimReason string
}

// Pure is the record as the pure rules see it.
func (r *Record) Pure() poolrules.Record {
	owner := ""
	if r.OwnerID != nil {
		owner = r.OwnerID.String()
	}
	return poolrules.Record{Kind: poolrules.Kind(r.Kind), OwnerID: owner, Status: poolrules.Status(r.Status),
		OwnedAt: r.OwnedAt, LastFollowUpAt: r.LastFollowUpAt, FrozenUntil: r.FrozenUntil, ReleasedAt: r.ReleasedAt,
		Dealt: r.Dealt, Grade: r.Grade}
}

// Counts reports whether the record counts against its owner's cap: active,
// and for customers not dealt unless capCountsDealt.
func (r *Record) Counts(st Settings) bool {
	if r.Status != "active" {
		return false
	}
	return !r.Kind.Desc().Dealable || !r.Dealt || st.CapCountsDealt
}

// load reads a record inside tx, locking it on PostgreSQL.
func (s *Service) load(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID) (*Record, error) {
	return s.one(ctx, inTx(tx), kind, selection{where: idIs(id), lock: lockRows})
}

// Load reads a record inside tx, locking it on PostgreSQL; for other
// packages (records, the sweep) that change records through the engine.
func (s *Service) Load(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID) (*Record, error) {
	return s.load(ctx, tx, kind, id)
}

// Holder reads, and on PostgreSQL locks, who holds a record in tx: its
// owner (nil when pooled) and its pool.
func (s *Service) Holder(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID) (*uuid.UUID, uuid.UUID, error) {
	r, err := s.load(ctx, tx, kind, id)
	if err != nil {
		return nil, uuid.Nil, err
	}
	return r.OwnerID, r.PoolID, nil
}

// ownershipMutation is what lead and customer mutations share: the
// ownership fields of PoolableMixin.
type ownershipMutation interface {
	SetPoolID(uuid.UUID)
	SetOwnerID(uuid.UUID)
	ClearOwnerID()
	SetOwnedAt(time.Time)
	ClearOwnedAt()
	SetLastFollowUpAt(time.Time)
	ClearLastFollowUpAt()
	SetFrozenUntil(time.Time)
	ClearFrozenUntil()
	SetReleasedAt(time.Time)
	ClearReleasedAt()
	SetReclaimAt(time.Time)
	ClearReclaimAt()
	SetReclaimReason(string)
	AddVersion(int)
	SetUpdatedAt(time.Time)
}

// setOrClear sets a nullable field to v, or clears it when v is nil.
func setOrClear[T any](v *T, set func(T), clear func()) {
	if v == nil {
		clear()
		return
	}
	set(*v)
}

// sameTime reports whether two nullable times are the same instant.
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func sameID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// applyOwnership writes into m the ownership state and reclaim clock of r
// that differ from what is stored. SQLite rewrites every index holding a
// column an UPDATE sets, changed or not, and the record's indexes are most
// of what a claim writes.
func applyOwnership(m ownershipMutation, r *Record, clk poolrules.Clock, now time.Time) {
	was := r.stored
	if was == nil {
		was = &storedState{}
	}
	all := r.stored == nil
	if all || was.PoolID != r.PoolID {
		m.SetPoolID(r.PoolID)
	}
	if all || !sameID(was.OwnerID, r.OwnerID) {
		setOrClear(r.OwnerID, m.SetOwnerID, m.ClearOwnerID)
	}
	for _, f := range []struct {
		was, is *time.Time
		set     func(time.Time)
		clear   func()
	}{
		{was.OwnedAt, r.OwnedAt, m.SetOwnedAt, m.ClearOwnedAt},
		{was.LastFollowUpAt, r.LastFollowUpAt, m.SetLastFollowUpAt, m.ClearLastFollowUpAt},
		{was.FrozenUntil, r.FrozenUntil, m.SetFrozenUntil, m.ClearFrozenUntil},
		{was.ReleasedAt, r.ReleasedAt, m.SetReleasedAt, m.ClearReleasedAt},
		{was.ReclaimAt, clk.ReclaimAt, m.SetReclaimAt, m.ClearReclaimAt},
	} {
		if all || !sameTime(f.was, f.is) {
			setOrClear(f.is, f.set, f.clear)
		}
	}
	if all || was.ReclaimReason != clk.Reason {
		m.SetReclaimReason(clk.Reason)
	}
	m.AddVersion(1)
	m.SetUpdatedAt(now)
}

// save writes the ownership state of r, recomputing its stored reclaim
// deadline under the pool's rules, and bumps its version.
func (s *Service) save(ctx context.Context, tx *ent.Tx, r *Record, pl *ent.Pool, now time.Time) error {
	clk := poolrules.ReclaimClock(now, r.Pure(), Rules(pl))
	status := "" // unchanged: not written
	if r.stored == nil || r.stored.Status != r.Status {
		status = r.Status
	}
	if _, err := s.update(ctx, inTx(tx), r.Kind, idIs(r.ID), status, func(m ownershipMutation) {
		applyOwnership(m, r, clk, now)
	}); err != nil {
		return fmt.Errorf("save %s: %w", r.Kind, err)
	}
	// A later save in the same operation compares with what is now stored.
	saved := *r
	saved.stored, saved.row = nil, nil
	r.stored = &storedState{Record: saved, ReclaimAt: clk.ReclaimAt, ReclaimReason: clk.Reason}
	r.syncRow(clk, now)
	return nil
}

// syncRow writes into the loaded row what save just stored: the columns
// applyOwnership sets, the status and the version.
func (r *Record) syncRow(clk poolrules.Clock, now time.Time) {
	if r.row == nil {
		return
	}
	if t, err := tableOf(r.Kind); err == nil {
		t.sync(r.row, r, clk, now)
	}
}

// Change describes one ownership or state change for history and events.
type Change struct {
	Op          string
	From, To    *uuid.UUID
	Actor       *auth.Principal // nil: the system (sweep, auto-assignment)
	Reason      string
	RuleVersion int
}

// log writes the history row and the domain event of a change to r.
func (s *Service) log(ctx context.Context, tx *ent.Tx, r *Record, c Change, now time.Time) error {
	h := tx.OwnershipChange.Create().
		SetRecordKind(ownershipchange.RecordKind(r.Kind)).
		SetRecordID(r.ID).
		SetOperation(ownershipchange.Operation(c.Op)).
		SetNillableFromOwnerID(c.From).
		SetNillableToOwnerID(c.To).
		SetReason(c.Reason).
		SetPoolID(r.PoolID).
		SetRuleVersion(c.RuleVersion).
		SetAt(now)
	actorType := "system"
	var actorID *uuid.UUID
	if c.Actor != nil {
		actorType = string(c.Actor.Type)
		id := c.Actor.ID
		actorID = &id
	}
	h.SetActorType(ownershipchange.ActorType(actorType)).SetNillableActorID(actorID)
	if err := h.Exec(ctx); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	typ, err := events.OwnershipType(string(r.Kind), c.Op)
	if err != nil {
		return err
	}
	return events.Emit(ctx, tx, events.Event{Type: typ, SubjectKind: string(r.Kind), SubjectID: r.ID,
		Actor: c.Actor.EventActor(), OccurredAt: now, Data: c.ownership(r.PoolID)})
}

// ownership is the event payload of the change.
func (c Change) ownership(poolID uuid.UUID) events.Ownership {
	return events.Ownership{Operation: c.Op, PoolID: poolID, FromOwnerID: c.From, ToOwnerID: c.To,
		Reason: c.Reason, RuleVersion: c.RuleVersion}
}

// SetDealt records a customer's deal status in tx, keeping the owner's
// counter and the stored reclaim deadline in step.
func (s *Service) SetDealt(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID, dealt bool) error {
	r, err := s.load(ctx, tx, kinds.Customer, id)
	if err != nil {
		return err
	}
	if r.Dealt == dealt {
		return nil
	}
	st, err := loadSettings(ctx, tx.Setting)
	if err != nil {
		return err
	}
	before := r.Counts(st)
	r.Dealt = dealt
	after := r.Counts(st)
	if r.OwnerID != nil && before != after {
		delta := -1
		if after {
			// The customer counts again: its owner must have room for it.
			h, err := s.lockHolder(ctx, tx, *r.OwnerID, st)
			if err != nil {
				return err
			}
			if !h.underCap(kinds.Customer) {
				return ruleErr(poolrules.ErrCapExceeded)
			}
			delta = 1
		}
		if err := adjust(ctx, tx, *r.OwnerID, kinds.Customer, delta); err != nil {
			return err
		}
	}
	now := s.clock.Now()
	upd := tx.Customer.UpdateOneID(id).SetDealStatus(dealt)
	if dealt {
		upd.SetDealAt(now)
	} else {
		upd.ClearDealAt()
	}
	if err := upd.Exec(ctx); err != nil {
		return fmt.Errorf("set deal status: %w", err)
	}
	pl, err := tx.Pool.Get(ctx, r.PoolID)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	if err := s.save(ctx, tx, r, pl, now); err != nil {
		return err
	}
	typ := events.CustomerUndealt
	if dealt {
		typ = events.CustomerDealt
	}
	return events.Emit(ctx, tx, events.Event{Type: typ, SubjectKind: events.KindCustomer, SubjectID: id,
		Actor: p.EventActor(), OccurredAt: now, Data: events.Deal{OwnerID: r.OwnerID}})
}

// FollowedUp moves a record's lastFollowUpAt to max(lastFollowUpAt, at)
// after its owner logged a follow-up, in the caller's transaction, and
// recomputes its reclaim deadline. The caller has checked that the author
// is the current owner.
func (s *Service) FollowedUp(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID, at time.Time) error {
	r, err := s.load(ctx, tx, kind, id)
	if err != nil {
		return err
	}
	at = at.UTC()
	if r.LastFollowUpAt != nil && !at.After(*r.LastFollowUpAt) {
		return nil
	}
	r.LastFollowUpAt = &at
	pl, err := tx.Pool.Get(ctx, r.PoolID)
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	return s.save(ctx, tx, r, pl, s.clock.Now())
}
