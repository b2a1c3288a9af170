// Package feed reads the event feed (listEvents): the domain events every
// change writes in its transaction (internal/events), in an order in which
// reading after the last event seen never skips or repeats one (see
// store.ReadFeed), scoped like the records they are about.
package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

// Scoper gives a principal's scope over the records of a kind (the pool
// engine's Scope).
type Scoper interface {
	Scope(ctx context.Context, p *auth.Principal, kind string) (authz.Scope, error)
}

// Service reads the feed.
type Service struct {
	store  *store.Store
	scopes Scoper
}

// NewService returns the feed over st, scoped by scopes.
func NewService(st *store.Store, scopes Scoper) *Service {
	return &Service{store: st, scopes: scopes}
}

// Pos is a position in the feed; its String is an event's id.
type Pos = store.FeedPos

// ParseID reads an event id as a position; false when it is not one.
func ParseID(id string) (Pos, bool) { return store.ParseFeedPos(id) }

// Query is one read of the feed.
type Query struct {
	// After is the position to read after (the zero Pos: the start).
	After Pos
	// Types keeps only events of these types (none: all).
	Types []string
	Limit int
}

// Event is one event as the feed shows it.
type Event struct {
	ID          string
	Type        string
	OccurredAt  time.Time
	SubjectKind string
	SubjectID   uuid.UUID
	Actor       events.Actor
	// Data is the type's payload (see docs/events.md): ids, names of
	// changed fields, never field values.
	Data json.RawMessage
}

// MarshalJSON writes the event as listEvents shows it (the spec's Event),
// which is also the body of a webhook delivery.
func (e Event) MarshalJSON() ([]byte, error) {
	type subject struct {
		Kind string    `json:"kind"`
		ID   uuid.UUID `json:"id"`
	}
	return json.Marshal(struct {
		ID         string          `json:"id"`
		Type       string          `json:"type"`
		OccurredAt time.Time       `json:"occurredAt"`
		Subject    subject         `json:"subject"`
		Actor      events.Actor    `json:"actor"`
		Data       json.RawMessage `json:"data"`
	}{e.ID, e.Type, e.OccurredAt.UTC(), subject{e.SubjectKind, e.SubjectID}, e.Actor, e.Data})
}

// Of reads a feed row as an event.
func Of(r store.FeedRow) (Event, error) { return eventOf(r) }

// Page is what one read gives: the events, and the position to read after
// next time. Next is past every event the read looked at, also those the
// caller may not see, so a caller who sees few events does not look at
// the same others again; it is the position given when there was nothing
// new.
type Page struct {
	Items []Event
	Next  Pos
}

// scanMax bounds how many events one read looks at for a caller who sees
// only some: a page may then hold fewer than limit events (even none)
// while Next moves on.
const scanMax = 1000

// CheckTypes refuses an event type the catalogue does not have.
func CheckTypes(types []string) error {
	for _, t := range types {
		if _, ok := events.Lookup(events.Type(t)); !ok {
			return apperr.Invalidf("query.type", "unknown_event_type",
				fmt.Sprintf("%q is not an event type (docs/events.md lists them)", t))
		}
	}
	return nil
}

// List reads the events after q.After that p may see: everything for
// admins and auditors; for other users and API keys, the events of the
// leads and customers they see now (those of contacts, follow-ups and
// claim requests through their record), and none of the organisation's
// own objects (pools, users, teams, settings, API keys, tags, handovers).
func (s *Service) List(ctx context.Context, p *auth.Principal, q Query) (*Page, error) {
	if err := CheckTypes(q.Types); err != nil {
		return nil, err
	}
	types := slices.Clone(q.Types)
	slices.Sort(types)
	types = slices.Compact(types)
	all := p != nil && p.Type == auth.ActorUser && authz.RecordReach(p).All
	pg := &Page{Next: q.After}
	if all {
		rows, err := s.store.ReadFeed(ctx, q.After, types, q.Limit)
		if err != nil {
			return nil, err
		}
		for _, r := range rows {
			e, err := eventOf(r)
			if err != nil {
				return nil, err
			}
			pg.Items = append(pg.Items, e)
			pg.Next = r.Pos
		}
		return pg, nil
	}
	v := &visibility{s: s, p: p, scopes: map[kinds.Kind]func(*sql.Selector){}}
	batch := min(max(q.Limit*2, 100), scanMax)
	for scanned := 0; scanned < scanMax && len(pg.Items) < q.Limit; {
		rows, err := s.store.ReadFeed(ctx, pg.Next, types, batch)
		if err != nil {
			return nil, err
		}
		scanned += len(rows)
		seen, err := v.of(ctx, rows)
		if err != nil {
			return nil, err
		}
		for i, r := range rows {
			if len(pg.Items) == q.Limit {
				break
			}
			pg.Next = r.Pos
			if !seen[i] {
				continue
			}
			e, err := eventOf(r)
			if err != nil {
				return nil, err
			}
			pg.Items = append(pg.Items, e)
		}
		if len(rows) < batch {
			break
		}
	}
	return pg, nil
}

// stored is the JSON of domain_events.data.
type stored struct {
	Actor events.Actor    `json:"actor"`
	Data  json.RawMessage `json:"data"`
}

func eventOf(r store.FeedRow) (Event, error) {
	var d stored
	if err := json.Unmarshal(r.Data, &d); err != nil {
		return Event{}, fmt.Errorf("event %s: %w", r.ID, err)
	}
	if len(d.Data) == 0 || string(d.Data) == "null" {
		d.Data = json.RawMessage("{}")
	}
	return Event{ID: r.Pos.String(), Type: r.Type, OccurredAt: r.At, SubjectKind: r.SubjectKind,
		SubjectID: r.SubjectID, Actor: d.Actor, Data: d.Data}, nil
}

// record is the lead or customer whose scope decides who sees an event.
type record struct {
	kind kinds.Kind
	id   uuid.UUID
}

// parent names an event's record: its subject for lead and customer
// events; for contacts and opportunities the customer, for follow-ups and claim requests
// the record, as their payload names them (a deleted contact's row is
// gone). ok is false for the organisation's own objects.
func parent(r store.FeedRow) (record, bool) {
	switch r.SubjectKind {
	case events.KindLead, events.KindCustomer:
		return record{kinds.Kind(r.SubjectKind), r.SubjectID}, true
	}
	var d struct {
		Data struct {
			CustomerID *uuid.UUID `json:"customerId"`
			RecordKind string     `json:"recordKind"`
			RecordID   *uuid.UUID `json:"recordId"`
		} `json:"data"`
	}
	if json.Unmarshal(r.Data, &d) != nil {
		return record{}, false
	}
	switch r.SubjectKind {
	case events.KindContact, events.KindOpportunity, events.KindQuote:
		if d.Data.CustomerID != nil {
			return record{kinds.Customer, *d.Data.CustomerID}, true
		}
	case events.KindApproval:
		// A quote's approval names its customer, a claim request's its
		// record.
		if d.Data.CustomerID != nil {
			return record{kinds.Customer, *d.Data.CustomerID}, true
		}
		k := kinds.Kind(d.Data.RecordKind)
		if d.Data.RecordID != nil && (k == kinds.Lead || k == kinds.Customer) {
			return record{k, *d.Data.RecordID}, true
		}
	case events.KindFollowUp, events.KindClaimRequest:
		k := kinds.Kind(d.Data.RecordKind)
		if d.Data.RecordID != nil && (k == kinds.Lead || k == kinds.Customer) {
			return record{k, *d.Data.RecordID}, true
		}
	}
	return record{}, false
}

// visibility decides which events a scoped caller sees, one read of the
// records per kind per batch of events.
type visibility struct {
	s      *Service
	p      *auth.Principal
	scopes map[kinds.Kind]func(*sql.Selector)
}

func (v *visibility) scope(ctx context.Context, k kinds.Kind) (func(*sql.Selector), error) {
	if f, ok := v.scopes[k]; ok {
		return f, nil
	}
	sc, err := v.s.scopes.Scope(ctx, v.p, string(k))
	if err != nil {
		return nil, err
	}
	cols := records.LeadColumns
	if k == kinds.Customer {
		cols = records.CustomerColumns
	}
	f := sc.Predicate(cols)
	v.scopes[k] = f
	return f, nil
}

// of reports, for each row, whether the caller sees its record now.
func (v *visibility) of(ctx context.Context, rows []store.FeedRow) ([]bool, error) {
	parents := make([]record, len(rows))
	has := make([]bool, len(rows))
	ids := map[kinds.Kind][]uuid.UUID{}
	for i, r := range rows {
		if parents[i], has[i] = parent(r); has[i] {
			ids[parents[i].kind] = append(ids[parents[i].kind], parents[i].id)
		}
	}
	visible := map[record]bool{}
	for k, list := range ids {
		slices.SortFunc(list, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		list = slices.Compact(list)
		scope, err := v.scope(ctx, k)
		if err != nil {
			return nil, err
		}
		var seen []uuid.UUID
		switch k {
		case kinds.Lead:
			seen, err = v.s.store.Reader.Lead.Query().Where(predicate.Lead(func(sel *sql.Selector) {
				sel.Where(v.s.store.IDIn(sel.C(lead.FieldID), list))
			}), predicate.Lead(scope)).IDs(ctx)
		case kinds.Customer:
			seen, err = v.s.store.Reader.Customer.Query().Where(predicate.Customer(func(sel *sql.Selector) {
				sel.Where(v.s.store.IDIn(sel.C(customer.FieldID), list))
			}), predicate.Customer(scope)).IDs(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("event records: %w", err)
		}
		for _, id := range seen {
			visible[record{k, id}] = true
		}
	}
	out := make([]bool, len(rows))
	for i := range rows {
		out[i] = has[i] && visible[parents[i]]
	}
	return out, nil
}
