// Package kinds is the registry of the record kinds the pool engine owns
// and pools hold: leads and customers. What differs between them (tables,
// the owner's counter and cap, duplicate keys, maskable fields, the default
// pool) is declared here once, so that pool, records and the handlers ask
// the registry instead of branching on a string.
package kinds

import (
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/dedupe"
)

// Kind is a record kind; its value is the name the API, the database
// enums (pool kind, record kind of history and duplicate keys) and the
// domain events use.
type Kind string

// The record kinds.
const (
	Lead     Kind = "lead"
	Customer Kind = "customer"
)

// All lists the kinds in a stable order (leads first), for whatever runs
// over every kind (the sweep, default pools).
var All = []Kind{Lead, Customer}

// Desc describes one kind.
type Desc struct {
	Kind Kind
	// Table is the kind's table; every kind's table has the ownership
	// columns of PoolableMixin (owner_id, pool_id, …).
	Table string
	// Path is the collection segment of the kind's URLs ("leads").
	Path string
	// OwnedCounter is the users column counting the records of this kind
	// a user owns; Owned reads it from a loaded user, OwnedRef points at
	// it (to adjust a user read back from an update).
	OwnedCounter string
	Owned        func(*ent.User) int
	OwnedRef     func(*ent.User) *int
	// UserCap and TeamCap read the cap override of this kind.
	UserCap func(*ent.User) *int
	TeamCap func(*ent.Team) *int
	// TeamDefaultPool reads the team's default pool of this kind (nil:
	// not set on this team).
	TeamDefaultPool func(*ent.Team) *uuid.UUID
	// Dealable: records of this kind can be dealt (成交), and a dealt
	// record counts against the cap only under capCountsDealt.
	Dealable bool
	// DedupeFields are the duplicate keys a record of this kind holds
	// itself (dedupe.MatchedName, …); a lead's name key is its company.
	DedupeFields []string
	// Masked are the string fields masked on pooled records (besides
	// tags), in the order a view masks them.
	Masked []string
	// DefaultPoolName is the name of the kind's default pool.
	DefaultPoolName string
}

var registry = map[Kind]*Desc{
	Lead: {
		Kind: Lead, Table: lead.Table, Path: "leads",
		OwnedCounter:    user.FieldOwnedLeads,
		Owned:           func(u *ent.User) int { return u.OwnedLeads },
		OwnedRef:        func(u *ent.User) *int { return &u.OwnedLeads },
		UserCap:         func(u *ent.User) *int { return u.MaxOwnedLeads },
		TeamCap:         func(t *ent.Team) *int { return t.MaxOwnedLeads },
		TeamDefaultPool: func(t *ent.Team) *uuid.UUID { return t.DefaultLeadPoolID },
		DedupeFields:    []string{dedupe.MatchedName, dedupe.MatchedPhone, dedupe.MatchedEmail},
		Masked:          []string{"name", "company", "phone", "email", "notes", "region", "industry", "source"},
		DefaultPoolName: "默认线索池 Default lead pool",
	},
	Customer: {
		Kind: Customer, Table: customer.Table, Path: "customers",
		OwnedCounter:    user.FieldOwnedCustomers,
		Owned:           func(u *ent.User) int { return u.OwnedCustomers },
		OwnedRef:        func(u *ent.User) *int { return &u.OwnedCustomers },
		UserCap:         func(u *ent.User) *int { return u.MaxOwnedCustomers },
		TeamCap:         func(t *ent.Team) *int { return t.MaxOwnedCustomers },
		TeamDefaultPool: func(t *ent.Team) *uuid.UUID { return t.DefaultCustomerPoolID },
		Dealable:        true,
		DedupeFields:    []string{dedupe.MatchedName},
		Masked:          []string{"name", "address", "website", "region", "industry", "source"},
		DefaultPoolName: "公海 Default customer pool",
	},
}

// ErrUnknown is returned by Parse for a name that is no record kind. The
// contract's enums reject such names before they reach a handler, so it
// is a plain error (a 500 if it ever escapes), never a client's mistake.
var ErrUnknown = errors.New("not a record kind")

// Parse returns the kind named s.
func Parse(s string) (Kind, error) {
	if _, ok := registry[Kind(s)]; ok {
		return Kind(s), nil
	}
	return "", fmt.Errorf("%w: %q", ErrUnknown, s)
}

// Desc returns the kind's description. A Kind is only ever a constant of
// this package or the result of Parse, so an unknown kind is a bug.
func (k Kind) Desc() *Desc {
	d, ok := registry[k]
	if !ok {
		panic(fmt.Sprintf("kinds: unknown record kind %q", string(k)))
	}
	return d
}

// String is the kind's name.
func (k Kind) String() string { return string(k) }

// Noun is the name problems and messages use for a record of this kind.
func (k Kind) Noun() string { return string(k) }

// NotFound is the problem for a record of this kind that does not exist
// or that the caller may not see.
func (k Kind) NotFound() error { return apperr.NotFoundf(k.Noun()) }
