// Package records holds leads, customers, contacts and follow-ups: their
// fields, duplicate checks, scoped reads and lists. Ownership changes go
// through the pool engine; this package only places new records through it.
package records

import (
	"context"
	"fmt"
	"slices"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service manages records.
type Service struct {
	store *store.Store
	pools *pool.Service
	clock clock.Clock
}

// NewService returns the records service.
func NewService(st *store.Store, pools *pool.Service) *Service {
	return &Service{store: st, pools: pools, clock: pools.Clock()}
}

var (
	errNotEditable = apperr.New(apperr.Forbidden, "not_record_owner", "only the owner, his supervisor or an admin may change this record")
)

// scope is the predicate "records of this kind the principal may see",
// usable on the leads and customers tables alike (both have owner_id and
// pool_id).
func (s *Service) scope(ctx context.Context, p *auth.Principal, kind string) (func(*sql.Selector), error) {
	a, err := s.access(ctx, p, kind)
	if err != nil {
		return nil, err
	}
	return a.scope, nil
}

// access is what a principal may see of one kind of record: which rows
// (scope), and of those, the pooled rows whose fields he sees masked.
type access struct {
	scope func(*sql.Selector)
	// hidden maps a maskable field to the pools, among those he sees,
	// whose pooled records show him that field masked.
	hidden map[string][]uuid.UUID
}

// access computes the scope and the masked fields of p for kind with one
// read of the pools.
func (s *Service) access(ctx context.Context, p *auth.Principal, kind string) (access, error) {
	if p.Type == auth.ActorAPIKey {
		if p.PoolID != nil {
			id := *p.PoolID
			return access{scope: func(sel *sql.Selector) { sel.Where(sql.EQ(sel.C("pool_id"), id)) }}, nil
		}
		return access{scope: func(*sql.Selector) {}}, nil
	}
	sc := authz.RecordScope(p)
	if sc.All {
		// Admins and auditors: nothing is masked for them either.
		return access{scope: func(*sql.Selector) {}}, nil
	}
	visible, err := s.pools.VisiblePools(ctx, p, kind)
	if err != nil {
		return access{}, err
	}
	pools := make([]any, len(visible))
	hidden := map[string][]uuid.UUID{}
	for i, pl := range visible {
		pools[i] = pl.ID
		m := maskerFor(p, pl)
		if !m.on {
			continue
		}
		for _, f := range Maskable {
			if !slices.Contains(m.visible, f) {
				hidden[f] = append(hidden[f], pl.ID)
			}
		}
	}
	scope := func(sel *sql.Selector) {
		var or []*sql.Predicate
		if sc.OwnerID != nil {
			or = append(or, sql.EQ(sel.C("owner_id"), *sc.OwnerID))
		}
		if sc.TeamPathPrefix != "" {
			users := sql.Select(user.FieldID).From(sql.Table(user.Table)).
				Where(sql.HasPrefix(user.FieldTeamPath, sc.TeamPathPrefix))
			or = append(or, sql.In(sel.C("owner_id"), users))
		}
		if len(pools) > 0 {
			or = append(or, sql.And(sql.IsNull(sel.C("owner_id")), sql.In(sel.C("pool_id"), pools...)))
		}
		if len(or) == 0 {
			sel.Where(sql.False())
			return
		}
		sel.Where(sql.Or(or...))
	}
	return access{scope: scope, hidden: hidden}, nil
}

// masks reports whether the caller sees field masked on a record with
// this owner and pool.
func (a access) masks(field string, owner *uuid.UUID, poolID uuid.UUID) bool {
	return owner == nil && slices.Contains(a.hidden[field], poolID)
}

// unmasked ANDs pred with "the row does not show field masked": a filter
// or search on a field the caller sees masked must not match, or probing
// it would recover what the mask hides (one q per candidate phone).
func (a access) unmasked(sel *sql.Selector, field string, pred *sql.Predicate) *sql.Predicate {
	pools := a.hidden[field]
	if len(pools) == 0 {
		return pred
	}
	vals := make([]any, len(pools))
	for i, id := range pools {
		vals[i] = id
	}
	return sql.And(pred, sql.Not(sql.And(sql.IsNull(sel.C("owner_id")), sql.In(sel.C("pool_id"), vals...))))
}

// canEdit reports whether p may change a record's fields: its owner, a
// supervisor of its owner, an admin, or (for a pooled record) a manager of
// its pool.
func (s *Service) canEdit(ctx context.Context, tx *ent.Tx, p *auth.Principal, ownerID *uuid.UUID, poolID uuid.UUID) (bool, error) {
	if p.Type != auth.ActorUser || p.Role == auth.RoleAuditor {
		return false, nil
	}
	if p.Role == auth.RoleAdmin {
		return true, nil
	}
	if ownerID == nil {
		pl, err := tx.Pool.Get(ctx, poolID)
		if err != nil {
			return false, err
		}
		return pool.IsManager(p, pl), nil
	}
	if *ownerID == p.ID {
		return true, nil
	}
	if p.Role == auth.RoleSupervisor {
		owner, err := tx.User.Get(ctx, *ownerID)
		if err != nil {
			return false, err
		}
		return authz.Supervises(p, owner.TeamPath), nil
	}
	return false, nil
}

// Views after a write read through the reader pool: on SQLite (WAL) a read
// that starts after the commit sees it, and it keeps the single writer
// connection free for writes.

// system is the principal used to render a record to the caller who just
// changed it but can no longer see it (a rep returning a lead to a pool he
// is not a member of): he saw it a moment ago, so he may see the result.
var system = &auth.Principal{Type: auth.ActorUser, Role: auth.RoleAdmin}

// LeadAfter renders a lead after p changed it. An owned record is never
// masked, so its view is the same whoever asks and needs no scope check
// (the common case: after a claim, assign or transfer). after, when the
// operation handed back the record as its transaction left it, spares
// reading it again.
func (s *Service) LeadAfter(ctx context.Context, p *auth.Principal, id uuid.UUID, after *pool.After) (*LeadView, error) {
	if after != nil && after.Lead != nil && after.Lead.OwnerID != nil {
		return &LeadView{Lead: after.Lead, OwnerName: &after.OwnerName}, nil
	}
	l, err := s.store.Reader.Lead.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("lead")
	}
	if err != nil {
		return nil, fmt.Errorf("get lead: %w", err)
	}
	if l.OwnerID != nil {
		views, err := s.leadViews(ctx, s.store.Reader, p, []*ent.Lead{l})
		if err != nil {
			return nil, err
		}
		return views[0], nil
	}
	v, err := s.leadView(ctx, s.store.Reader, p, id)
	if apperr.HasCode(err, "not_found") {
		return s.leadView(ctx, s.store.Reader, system, id)
	}
	return v, err
}

// CustomerAfter renders a customer after p changed it, as LeadAfter.
func (s *Service) CustomerAfter(ctx context.Context, p *auth.Principal, id uuid.UUID, after *pool.After) (*CustomerView, error) {
	if after != nil && after.Customer != nil && after.Customer.OwnerID != nil {
		return &CustomerView{Customer: after.Customer, OwnerName: &after.OwnerName}, nil
	}
	cu, err := s.store.Reader.Customer.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("customer")
	}
	if err != nil {
		return nil, fmt.Errorf("get customer: %w", err)
	}
	if cu.OwnerID != nil {
		views, err := s.customerViews(ctx, s.store.Reader, p, []*ent.Customer{cu})
		if err != nil {
			return nil, err
		}
		return views[0], nil
	}
	v, err := s.customerView(ctx, s.store.Reader, p, id)
	if apperr.HasCode(err, "not_found") {
		return s.customerView(ctx, s.store.Reader, system, id)
	}
	return v, err
}
