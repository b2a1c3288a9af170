// Package personaldata answers a person's requests about the personal
// data Shoal holds on him (个人信息保护法): an export of every record and
// field about him, and an erasure that anonymises his leads and contacts
// (and a customer that is a person) while the business facts stay.
//
// A person is named by one phone, email or name, matched as duplicate
// checks match them (internal/dedupe). Every use case is one transaction;
// an erasure's dry run is the same transaction rolled back, so it reports
// exactly what a real run would change.
package personaldata

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/claimrequest"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/search"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service holds the personal-data use cases.
type Service struct {
	store *store.Store
	clock clock.Clock
}

// NewService returns the service over st, reading time from clk.
func NewService(st *store.Store, clk clock.Clock) *Service {
	return &Service{store: st, clock: clk}
}

// errForbidden refuses callers the policy would have refused already: the
// use cases check the role themselves too, since they return every field
// unmasked.
var errForbidden = apperr.New(apperr.Forbidden, "forbidden", "only an admin (or, for an export, an auditor) may handle personal-data requests")

func mayExport(p *auth.Principal) bool {
	return p != nil && p.Type == auth.ActorUser && (p.Role == auth.RoleAdmin || p.Role == auth.RoleAuditor)
}

func mayErase(p *auth.Principal) bool {
	return p != nil && p.Type == auth.ActorUser && p.Role == auth.RoleAdmin
}

// errNothing is the 404 for a value no record holds and no text mentions.
func errNothing() error { return apperr.NotFoundf("personal data") }

// Record is one record with what hangs off it: its follow-ups, ownership
// history and claim requests, oldest first.
type Record[R any] struct {
	Row           R
	OwnerName     *string
	FollowUps     []*ent.FollowUp
	History       []*ent.OwnershipChange
	ClaimRequests []*ent.ClaimRequest
}

// Export is everything about one person.
type Export struct {
	GeneratedAt time.Time
	MatchedOn   string
	Leads       []Record[*ent.Lead]
	Customers   []Record[*ent.Customer]
	Contacts    []*ent.Contact
	// Mentions are follow-ups of other records whose content holds the
	// value.
	Mentions []*ent.FollowUp
}

// matched is what a key matches: leads and contacts holding the value,
// and (by name only) customers named so, that is people who are
// customers themselves.
type matched struct {
	leads     []*ent.Lead
	contacts  []*ent.Contact
	customers []*ent.Customer
}

func (m matched) empty() bool { return len(m.leads)+len(m.contacts)+len(m.customers) == 0 }

// match finds the records of k, in id order; lock locks them (an erasure).
func (s *Service) match(ctx context.Context, c *ent.Client, k Key, lock bool) (matched, error) {
	var m matched
	lq, cq := c.Lead.Query(), c.Contact.Query()
	switch k.Type {
	case ByPhone:
		lq.Where(lead.PhoneNorm(k.Norm))
		cq.Where(contact.PhoneNorm(k.Norm))
	case ByEmail:
		lq.Where(lead.EmailNorm(k.Norm))
		cq.Where(contact.EmailNorm(k.Norm))
	case ByName:
		lq.Where(lead.NameNorm(k.Norm))
		cq.Where(contact.NameNorm(k.Norm))
	}
	var err error
	if lock {
		lq, cq = store.ForUpdate(s.store, lq), store.ForUpdate(s.store, cq)
	}
	if m.leads, err = lq.Order(ent.Asc(lead.FieldID)).All(ctx); err != nil {
		return m, fmt.Errorf("match leads: %w", err)
	}
	if k.Type == ByName {
		q := c.Customer.Query().Where(customer.NameNorm(k.Norm)).Order(ent.Asc(customer.FieldID))
		if lock {
			q = store.ForUpdate(s.store, q)
		}
		if m.customers, err = q.All(ctx); err != nil {
			return m, fmt.Errorf("match customers: %w", err)
		}
	}
	if m.contacts, err = cq.Order(ent.Asc(contact.FieldID)).All(ctx); err != nil {
		return m, fmt.Errorf("match contacts: %w", err)
	}
	return m, nil
}

// keyValues are the values of the request alone.
func keyValues(k Key) Values {
	var v Values
	switch k.Type {
	case ByPhone:
		v.AddPhone(k.Raw)
	case ByEmail:
		v.AddEmail(k.Raw)
	default:
		v.Add(k.Raw)
	}
	return v
}

// personValues are the request's values and every personal value the
// matched records hold: erasing by phone also redacts the person's name
// and email wherever free text holds them.
func personValues(k Key, m matched) Values {
	v := keyValues(k)
	for _, l := range m.leads {
		v.Add(l.Name)
		v.AddPhone(l.Phone)
		v.AddEmail(l.Email)
	}
	for _, ct := range m.contacts {
		v.Add(ct.Name)
		v.AddPhone(ct.Phone)
		v.AddEmail(ct.Email)
		v.addText(ct.Wechat)
	}
	for _, cu := range m.customers {
		v.Add(cu.Name)
	}
	// The anonymous name itself is never a person's value.
	v.Texts = slices.DeleteFunc(v.Texts, func(t string) bool { return t == fold(Anonymous) })
	return v
}

// Export returns every record and field about the person q names, for an
// admin or auditor, unmasked. A value nothing holds or mentions is
// NotFound.
func (s *Service) Export(ctx context.Context, p *auth.Principal, q Query) (*Export, error) {
	if !mayExport(p) {
		return nil, errForbidden
	}
	k, err := KeyOf(q)
	if err != nil {
		return nil, err
	}
	out := &Export{GeneratedAt: s.clock.Now().UTC(), MatchedOn: k.Type}
	err = s.read(ctx, func(c *ent.Client) error {
		m, err := s.match(ctx, c, k, false)
		if err != nil {
			return err
		}
		owners := map[uuid.UUID]bool{}
		seen := map[uuid.UUID]bool{}
		for _, l := range m.leads {
			r := Record[*ent.Lead]{Row: l}
			if err := attach(ctx, c, followup.SubjectTypeLead, l.ID, &r.FollowUps, &r.History, &r.ClaimRequests); err != nil {
				return err
			}
			if l.OwnerID != nil {
				owners[*l.OwnerID] = true
			}
			for _, f := range r.FollowUps {
				seen[f.ID] = true
			}
			out.Leads = append(out.Leads, r)
		}
		for _, cu := range m.customers {
			r := Record[*ent.Customer]{Row: cu}
			if err := attach(ctx, c, followup.SubjectTypeCustomer, cu.ID, &r.FollowUps, &r.History, &r.ClaimRequests); err != nil {
				return err
			}
			if cu.OwnerID != nil {
				owners[*cu.OwnerID] = true
			}
			for _, f := range r.FollowUps {
				seen[f.ID] = true
			}
			out.Customers = append(out.Customers, r)
		}
		out.Contacts = m.contacts
		mentions, err := s.mentions(ctx, c, keyValues(k))
		if err != nil {
			return err
		}
		for _, f := range mentions {
			if !seen[f.ID] {
				out.Mentions = append(out.Mentions, f)
			}
		}
		names, err := ownerNames(ctx, c, owners)
		if err != nil {
			return err
		}
		for i, r := range out.Leads {
			if r.Row.OwnerID != nil {
				n := names[*r.Row.OwnerID]
				out.Leads[i].OwnerName = &n
			}
		}
		for i, r := range out.Customers {
			if r.Row.OwnerID != nil {
				n := names[*r.Row.OwnerID]
				out.Customers[i].OwnerName = &n
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out.Leads)+len(out.Customers)+len(out.Contacts)+len(out.Mentions) == 0 {
		return nil, errNothing()
	}
	return out, nil
}

// read runs fn in a read transaction on the store's readers: one
// snapshot on SQLite (WAL) without taking the one writer, as an export
// writes nothing.
func (s *Service) read(ctx context.Context, fn func(c *ent.Client) error) error {
	tx, err := s.store.Reader.Tx(ctx)
	if err != nil {
		return fmt.Errorf("begin read: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx.Client())
}

// attach loads a lead's or customer's follow-ups, history and claim
// requests.
func attach(ctx context.Context, c *ent.Client, kind followup.SubjectType, id uuid.UUID,
	fus *[]*ent.FollowUp, hist *[]*ent.OwnershipChange, crs *[]*ent.ClaimRequest) error {
	var err error
	*fus, err = c.FollowUp.Query().Where(followup.SubjectTypeEQ(kind), followup.SubjectID(id)).
		Order(ent.Asc(followup.FieldOccurredAt), ent.Asc(followup.FieldID)).All(ctx)
	if err != nil {
		return fmt.Errorf("load follow-ups: %w", err)
	}
	*hist, err = c.OwnershipChange.Query().Where(ownershipchange.RecordKindEQ(ownershipchange.RecordKind(kind)),
		ownershipchange.RecordID(id)).Order(ent.Asc(ownershipchange.FieldID)).All(ctx)
	if err != nil {
		return fmt.Errorf("load history: %w", err)
	}
	*crs, err = c.ClaimRequest.Query().Where(claimrequest.KindEQ(claimrequest.Kind(kind)), claimrequest.RecordID(id)).
		Order(ent.Asc(claimrequest.FieldID)).All(ctx)
	if err != nil {
		return fmt.Errorf("load claim requests: %w", err)
	}
	return nil
}

func ownerNames(ctx context.Context, c *ent.Client, ids map[uuid.UUID]bool) (map[uuid.UUID]string, error) {
	out := map[uuid.UUID]string{}
	if len(ids) == 0 {
		return out, nil
	}
	list := make([]uuid.UUID, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	users, err := c.User.Query().Where(user.IDIn(list...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load owners: %w", err)
	}
	for _, u := range users {
		out[u.ID] = u.Name
	}
	return out, nil
}

// mentions are the follow-ups whose content holds one of v, in id order.
func (s *Service) mentions(ctx context.Context, c *ent.Client, v Values) ([]*ent.FollowUp, error) {
	list, err := c.FollowUp.Query().Where(predicate.FollowUp(func(sel *sql.Selector) {
		sel.Where(likeAny(sel.C(followup.FieldContent), v.Patterns()))
	})).
		Order(ent.Asc(followup.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("find mentions: %w", err)
	}
	return slices.DeleteFunc(list, func(f *ent.FollowUp) bool { _, hit := v.Redact(f.Content); return !hit }), nil
}

// Changed is one lead, customer or contact the erasure changed, and the
// names of the fields it changed.
type Changed struct {
	Kind   string
	ID     uuid.UUID
	Erased bool // the person's own record (anonymised), not one whose text mentioned him
	Fields []string
}

// Counts are the rows of other tables whose free text the erasure
// redacted, and the duplicate keys it released.
type Counts struct {
	FollowUps, History, ClaimRequests, ReclaimWarnings, Events, DedupeKeys int
}

// Erasure is what an erasure changed (or, in a dry run, would change).
type Erasure struct {
	DryRun    bool
	MatchedOn string
	Records   []Changed
	Redacted  Counts
}

// errDryRun rolls a dry run's transaction back.
var errDryRun = errors.New("dry run")

// Erase anonymises, in one transaction, every lead and contact holding
// the value q names (and a customer so named), redacts the person's
// values in free text everywhere, and removes the derived copies
// (duplicate keys, search grams). Amounts, dates, owners, pools, statuses
// and history rows stay. Admins only. dryRun reports the same and changes
// nothing. A value nothing holds or mentions is NotFound.
func (s *Service) Erase(ctx context.Context, p *auth.Principal, q Query, dryRun bool) (*Erasure, error) {
	if !mayErase(p) {
		return nil, errForbidden
	}
	k, err := KeyOf(q)
	if err != nil {
		return nil, err
	}
	pre, err := s.prescan(ctx, k)
	if err != nil {
		return nil, err
	}
	var out *Erasure
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		e := &eraser{s: s, tx: tx, p: p, now: s.clock.Now(), out: &Erasure{DryRun: dryRun, MatchedOn: k.Type}}
		if err := e.run(ctx, k, pre); err != nil {
			return err
		}
		out = e.out
		if dryRun {
			return errDryRun
		}
		return nil
	})
	if err != nil && !errors.Is(err, errDryRun) {
		return nil, err
	}
	if len(out.Records) == 0 && out.Redacted == (Counts{}) {
		return nil, errNothing()
	}
	return out, nil
}

// eraser is one erasure's transaction.
type eraser struct {
	s   *Service
	tx  *ent.Tx
	p   *auth.Principal
	now time.Time
	out *Erasure
	// reindex are the leads and customers whose search grams change.
	reindex map[kinds.Kind]map[uuid.UUID]bool
}

func (e *eraser) changed(kind string, id uuid.UUID, erased bool, fields []string) {
	e.out.Records = append(e.out.Records, Changed{Kind: kind, ID: id, Erased: erased, Fields: fields})
}

func (e *eraser) index(kind kinds.Kind, id uuid.UUID) {
	if e.reindex == nil {
		e.reindex = map[kinds.Kind]map[uuid.UUID]bool{}
	}
	if e.reindex[kind] == nil {
		e.reindex[kind] = map[uuid.UUID]bool{}
	}
	e.reindex[kind][id] = true
}

func (e *eraser) emit(ctx context.Context, typ events.Type, kind string, id uuid.UUID, data any) error {
	return events.Emit(ctx, e.tx, events.Event{Type: typ, SubjectKind: kind, SubjectID: id,
		Actor: e.p.EventActor(), OccurredAt: e.now, Data: data})
}

func (e *eraser) run(ctx context.Context, k Key, pre *prescan) error {
	m, err := e.s.match(ctx, e.tx.Client(), k, true)
	if err != nil {
		return err
	}
	v := personValues(k, m)
	// Free text first: the events this erasure writes name fields only,
	// and a history row, event or follow-up is redacted whoever it is of.
	if err := e.redactTables(ctx, v, pre); err != nil {
		return err
	}
	mine := map[uuid.UUID]bool{}
	for _, l := range m.leads {
		mine[l.ID] = true
		if err := e.eraseLead(ctx, l, v); err != nil {
			return err
		}
	}
	for _, cu := range m.customers {
		mine[cu.ID] = true
		if err := e.eraseCustomer(ctx, cu); err != nil {
			return err
		}
	}
	for _, ct := range m.contacts {
		mine[ct.ID] = true
		if err := e.eraseContact(ctx, ct, v); err != nil {
			return err
		}
	}
	if err := e.redactOthers(ctx, v, mine); err != nil {
		return err
	}
	for _, kind := range []kinds.Kind{kinds.Lead, kinds.Customer} {
		ids := make([]uuid.UUID, 0, len(e.reindex[kind]))
		for id := range e.reindex[kind] {
			ids = append(ids, id)
		}
		slices.SortFunc(ids, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
		for _, id := range ids {
			if err := search.Reindex(ctx, e.tx, kind, id); err != nil {
				return err
			}
		}
	}
	return nil
}

// release drops the duplicate keys of a record of the given types.
func (e *eraser) release(ctx context.Context, id uuid.UUID, types ...dedupekey.KeyType) error {
	n, err := e.tx.DedupeKey.Delete().Where(dedupekey.RecordID(id), dedupekey.KeyTypeIn(types...)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("release duplicate keys: %w", err)
	}
	e.out.Redacted.DedupeKeys += n
	return nil
}

func (e *eraser) eraseLead(ctx context.Context, l *ent.Lead, v Values) error {
	upd := e.tx.Lead.UpdateOneID(l.ID).
		SetName(Anonymous).SetNameNorm(dedupe.Name(Anonymous)).
		SetPhone("").SetPhoneNorm("").SetEmail("").SetEmailNorm("")
	if s, hit := v.Redact(l.Notes); hit {
		upd.SetNotes(s)
	}
	for _, f := range []struct {
		v   string
		set func(string) *ent.LeadUpdateOne
	}{{l.Source, upd.SetSource}, {l.Region, upd.SetRegion}, {l.Industry, upd.SetIndustry}} {
		if s, hit := v.RedactWithin(f.v, maxShort); hit {
			f.set(s)
		}
	}
	companyChanged := false
	if s, hit := v.RedactWithin(l.Company, maxShort); hit {
		upd.SetCompany(s).SetCompanyNorm(dedupe.Name(s))
		companyChanged = true
	}
	fields, err := events.ChangedFields(ctx, upd.Mutation())
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return nil // erased before
	}
	types := []dedupekey.KeyType{dedupekey.KeyTypePhone, dedupekey.KeyTypeEmail}
	if companyChanged {
		// The company's key is the old spelling; the redacted one claims
		// none, since several erased companies may read alike.
		types = append(types, dedupekey.KeyTypeName)
	}
	if err := e.release(ctx, l.ID, types...); err != nil {
		return err
	}
	if err := upd.AddVersion(1).SetUpdatedAt(e.now).Exec(ctx); err != nil {
		return fmt.Errorf("erase lead: %w", err)
	}
	e.changed(events.KindLead, l.ID, true, fields)
	e.index(kinds.Lead, l.ID)
	return e.emit(ctx, events.LeadErased, events.KindLead, l.ID, events.Erased{Fields: fields})
}

func (e *eraser) eraseCustomer(ctx context.Context, cu *ent.Customer) error {
	upd := e.tx.Customer.UpdateOneID(cu.ID).SetName(Anonymous).SetNameNorm(dedupe.Name(Anonymous)).SetAddress("")
	fields, err := events.ChangedFields(ctx, upd.Mutation())
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return nil
	}
	// The anonymous name claims no key: every erased customer bears it.
	if err := e.release(ctx, cu.ID, dedupekey.KeyTypeName); err != nil {
		return err
	}
	if err := upd.AddVersion(1).SetUpdatedAt(e.now).Exec(ctx); err != nil {
		return fmt.Errorf("erase customer: %w", err)
	}
	e.changed(events.KindCustomer, cu.ID, true, fields)
	e.index(kinds.Customer, cu.ID)
	return e.emit(ctx, events.CustomerErased, events.KindCustomer, cu.ID, events.Erased{Fields: fields})
}

func (e *eraser) eraseContact(ctx context.Context, ct *ent.Contact, v Values) error {
	upd := e.tx.Contact.UpdateOneID(ct.ID).SetName(Anonymous).SetNameNorm(dedupe.Name(Anonymous)).
		SetPhone("").SetPhoneNorm("").SetEmail("").SetEmailNorm("").SetWechat("")
	if s, hit := v.Redact(ct.Notes); hit {
		upd.SetNotes(s)
	}
	if s, hit := v.RedactWithin(ct.Title, maxShort); hit {
		upd.SetTitle(s)
	}
	fields, err := events.ChangedFields(ctx, upd.Mutation())
	if err != nil {
		return err
	}
	if len(fields) == 0 {
		return nil
	}
	if err := e.release(ctx, ct.ID, dedupekey.KeyTypeName, dedupekey.KeyTypePhone, dedupekey.KeyTypeEmail); err != nil {
		return err
	}
	if err := upd.AddVersion(1).SetUpdatedAt(e.now).Exec(ctx); err != nil {
		return fmt.Errorf("erase contact: %w", err)
	}
	e.changed(events.KindContact, ct.ID, true, fields)
	e.index(kinds.Customer, ct.CustomerID)
	cid := ct.CustomerID
	return e.emit(ctx, events.ContactErased, events.KindContact, ct.ID, events.Erased{Fields: fields, CustomerID: &cid})
}
