// Package records holds leads, customers, contacts and follow-ups: their
// fields, duplicate checks, scoped reads and lists. Ownership changes go
// through the pool engine; this package only places new records through it.
package records

import (
	"context"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service manages records.
type Service struct {
	store *store.Store
	pools Engine
	clock clock.Clock
}

// NewService returns the records service.
func NewService(st *store.Store, pools Engine) *Service {
	return &Service{store: st, pools: pools, clock: pools.Clock()}
}

var (
	errNotEditable = apperr.New(apperr.Forbidden, "not_record_owner", "only the owner, his supervisor or an admin may change this record")
)

// The scope columns of the records this package keeps: leads and
// customers are owned or pooled; a contact takes its customer's scope.
var (
	LeadColumns     = authz.Columns{Owner: lead.FieldOwnerID, Pool: lead.FieldPoolID}
	CustomerColumns = authz.Columns{Owner: customer.FieldOwnerID, Pool: customer.FieldPoolID}
	ContactColumns  = authz.Columns{Parent: &authz.Parent{Key: contact.FieldCustomerID,
		Table: customer.Table, ID: customer.FieldID, Columns: CustomerColumns}}
	// recordColumns are the scope columns of each record kind.
	recordColumns = map[kinds.Kind]authz.Columns{kinds.Lead: LeadColumns, kinds.Customer: CustomerColumns}
)

// scope is the predicate "records of this kind the principal may see",
// usable on the leads and customers tables alike.
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
	sc    authz.Scope
	cols  authz.Columns
	scope func(*sql.Selector)
}

// access builds p's scope for kind with at most one read of the pools.
func (s *Service) access(ctx context.Context, p *auth.Principal, kind string) (access, error) {
	sc, err := s.pools.Scope(ctx, p, kind)
	if err != nil {
		return access{}, err
	}
	cols := recordColumns[kinds.Kind(kind)]
	return access{sc: sc, cols: cols, scope: sc.Predicate(cols)}, nil
}

// masks reports whether the caller sees field masked on a record with
// this owner and pool (one he sees).
func (a access) masks(field string, owner *uuid.UUID, poolID uuid.UUID) bool {
	return a.sc.Masks(field, authz.Row{OwnerID: owner, PoolID: poolID})
}

// unmasked ANDs pred with "the row does not show field masked": a filter
// or search on a field the caller sees masked must not match, or probing
// it would recover what the mask hides (one q per candidate phone).
func (a access) unmasked(sel *sql.Selector, field string, pred *sql.Predicate) *sql.Predicate {
	if u := a.sc.Unmasked(sel, a.cols, field); u != nil {
		return sql.And(pred, u)
	}
	return pred
}

// canEdit reports whether p may change a record's fields (authz
// Scope.CanEdit), reading in tx the pool and owner it depends on.
func (s *Service) canEdit(ctx context.Context, tx *ent.Tx, p *auth.Principal, ownerID *uuid.UUID, poolID uuid.UUID) (bool, error) {
	row := authz.Row{OwnerID: ownerID, PoolID: poolID}
	var pools []authz.Pool
	if ownerID == nil {
		pl, err := tx.Pool.Get(ctx, poolID)
		if err != nil {
			return false, err
		}
		pools = append(pools, authz.PoolOf(pl))
	} else if *ownerID != p.ID && p.Type == auth.ActorUser {
		owner, err := tx.User.Get(ctx, *ownerID)
		if err != nil {
			return false, err
		}
		row.OwnerTeamPath = owner.TeamPath
	}
	return authz.NewScope(p, pools).CanEdit(row), nil
}

// Views after a write read through the reader pool: on SQLite (WAL) a read
// that starts after the commit sees it, and it keeps the single writer
// connection free for writes.

// system is the principal used to render a record to the caller who just
// changed it but can no longer see it (a rep returning a lead to a pool he
// is not a member of): he saw it a moment ago, so he may see the result.
var system = &auth.Principal{Type: auth.ActorUser, Role: auth.RoleAdmin}

// LeadAfter renders a lead after p changed it (see ownedKind.after).
func (s *Service) LeadAfter(ctx context.Context, p *auth.Principal, id uuid.UUID, after *After) (*LeadView, error) {
	var done *ent.Lead
	name := ""
	if after != nil {
		done, name = after.Lead, after.OwnerName
	}
	v, err := leads.after(ctx, s, p, id, done, done != nil, name)
	if err != nil {
		return nil, err
	}
	return leadView(v), nil
}

// CustomerAfter renders a customer after p changed it, as LeadAfter.
func (s *Service) CustomerAfter(ctx context.Context, p *auth.Principal, id uuid.UUID, after *After) (*CustomerView, error) {
	var done *ent.Customer
	name := ""
	if after != nil {
		done, name = after.Customer, after.OwnerName
	}
	v, err := customers.after(ctx, s, p, id, done, done != nil, name)
	if err != nil {
		return nil, err
	}
	return customerView(v), nil
}
