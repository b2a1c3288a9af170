package merge

import (
	"context"
	"fmt"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service merges records.
type Service struct {
	store   *store.Store
	pools   *pool.Service
	records *records.Service
	clock   clock.Clock
}

// NewService returns the merge service over the pool engine (ownership,
// caps, status) and records (fields, duplicate keys, reads).
func NewService(st *store.Store, pools *pool.Service, recs *records.Service, clk clock.Clock) *Service {
	return &Service{store: st, pools: pools, records: recs, clock: clk}
}

// MergeLeads merges in.Merged into the lead in.Survivor and returns the
// survivor as p sees it.
func (s *Service) MergeLeads(ctx context.Context, p *auth.Principal, in Input) (*records.LeadView, error) {
	err := s.merge(ctx, p, kinds.Lead, in, func(ctx context.Context, tx *ent.Tx, rows map[uuid.UUID]*pool.Merging) error {
		return s.records.MergeLeadInto(ctx, tx, p, in.Survivor, in.Merged, leadInput(in.Fields, rows))
	})
	if err != nil {
		return nil, err
	}
	return s.records.GetLead(ctx, p, in.Survivor)
}

// MergeCustomers merges in.Merged into the customer in.Survivor and
// returns the survivor as p sees it.
func (s *Service) MergeCustomers(ctx context.Context, p *auth.Principal, in Input) (*records.CustomerView, error) {
	err := s.merge(ctx, p, kinds.Customer, in, func(ctx context.Context, tx *ent.Tx, rows map[uuid.UUID]*pool.Merging) error {
		if err := s.moveContacts(ctx, tx, p, in.Survivor, in.Merged); err != nil {
			return err
		}
		return s.records.MergeCustomerInto(ctx, tx, p, in.Survivor, in.Merged, customerInput(in.Fields, rows))
	})
	if err != nil {
		return nil, err
	}
	return s.records.GetCustomer(ctx, p, in.Survivor)
}

// merge is the rule set both kinds share, in one transaction: lock every
// record in id order and check that p may merge it; check the statuses
// and If-Match; take the merged records out of circulation; move their
// follow-ups and history; then fields writes the survivor's chosen values
// and recomputes the duplicate keys.
func (s *Service) merge(ctx context.Context, p *auth.Principal, kind kinds.Kind, in Input,
	fields func(ctx context.Context, tx *ent.Tx, rows map[uuid.UUID]*pool.Merging) error) error {
	order, err := in.check(kind)
	if err != nil {
		return err
	}
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		rows := make(map[uuid.UUID]*pool.Merging, len(order))
		for _, id := range order {
			m, err := s.pools.OpenMerge(ctx, tx, p, kind, id)
			if err != nil {
				return err
			}
			rows[id] = m
		}
		surv := rows[in.Survivor]
		if err := checkStatus(surv.Status(), true); err != nil {
			return err
		}
		for _, id := range in.Merged {
			if err := checkStatus(rows[id].Status(), false); err != nil {
				return err
			}
		}
		if err := etag.CheckIfGiven(in.IfMatch, version(surv)); err != nil {
			return err
		}
		for _, id := range in.Merged {
			if err := s.pools.MergeAway(ctx, p, rows[id], in.Survivor); err != nil {
				return err
			}
		}
		if err := s.moveChildren(ctx, tx, kind, in.Survivor, in.Merged); err != nil {
			return err
		}
		return fields(ctx, tx, rows)
	})
	return s.records.ReportRace(ctx, p, err)
}

// checkStatus: the survivor must be active; a merged record may be active
// or invalid (merging an invalid duplicate away is the common clean-up);
// a converted lead is neither.
func checkStatus(status string, survivor bool) error {
	switch {
	case status == "converted":
		return errConverted
	case survivor && status != "active":
		return apperr.New(apperr.Conflict, "record_invalid", "the survivor of a merge must be active")
	}
	return nil
}

func version(m *pool.Merging) int {
	if l := m.Lead(); l != nil {
		return l.Version
	}
	return m.Customer().Version
}

// moveChildren moves the merged records' follow-ups and ownership history
// to the survivor. Both tables hold their subject as an immutable column
// (nothing else ever re-parents a row), so the move is one UPDATE each,
// written here rather than through ent's builders.
func (s *Service) moveChildren(ctx context.Context, tx *ent.Tx, kind kinds.Kind, survivor uuid.UUID, merged []uuid.UUID) error {
	for _, mv := range []struct {
		table, kindCol, idCol string
	}{
		{followup.Table, followup.FieldSubjectType, followup.FieldSubjectID},
		{ownershipchange.Table, ownershipchange.FieldRecordKind, ownershipchange.FieldRecordID},
	} {
		q, args := entsql.Dialect(s.store.Dialect).Update(mv.table).Set(mv.idCol, survivor).
			Where(entsql.And(entsql.EQ(mv.kindCol, string(kind)), entsql.In(mv.idCol, anys(merged)...))).Query()
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("move %s: %w", mv.table, err)
		}
	}
	return nil
}

// moveContacts moves the merged customers' contacts, and their duplicate
// keys, to the survivor; each moved contact's version moves and it gets
// contact.updated with customerId. A moved contact stops being primary
// when the survivor already has one (one primary per customer).
func (s *Service) moveContacts(ctx context.Context, tx *ent.Tx, p *auth.Principal, survivor uuid.UUID, merged []uuid.UUID) error {
	moved, err := store.ForUpdate(s.store, tx.Contact.Query().Where(contact.CustomerIDIn(merged...)).
		Order(ent.Asc(contact.FieldID))).All(ctx)
	if err != nil {
		return fmt.Errorf("load contacts: %w", err)
	}
	if len(moved) == 0 {
		return nil
	}
	hasPrimary, err := tx.Contact.Query().Where(contact.CustomerID(survivor), contact.IsPrimary(true)).Exist(ctx)
	if err != nil {
		return fmt.Errorf("load contacts: %w", err)
	}
	now := s.clock.Now()
	ids := make([]uuid.UUID, len(moved))
	for i, c := range moved {
		ids[i] = c.ID
	}
	upd := entsql.Dialect(s.store.Dialect).Update(contact.Table).Set(contact.FieldCustomerID, survivor).
		Add(contact.FieldVersion, 1).Set(contact.FieldUpdatedAt, now)
	if hasPrimary {
		upd.Set(contact.FieldIsPrimary, false)
	}
	q, args := upd.Where(entsql.In(contact.FieldID, anys(ids)...)).Query()
	if _, err := tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("move contacts: %w", err)
	}
	if _, err := tx.DedupeKey.Update().Where(dedupekey.RecordKindEQ(dedupekey.RecordKindContact), dedupekey.RecordIDIn(ids...)).
		SetCustomerID(survivor).Save(ctx); err != nil {
		return fmt.Errorf("move contact keys: %w", err)
	}
	for _, c := range moved {
		fields := []string{"customerId"}
		if hasPrimary && c.IsPrimary {
			fields = append(fields, "isPrimary")
		}
		if err := events.Emit(ctx, tx, events.Event{Type: events.ContactUpdated, SubjectKind: events.KindContact, SubjectID: c.ID,
			Actor: p.EventActor(), OccurredAt: now, Data: events.Contact{CustomerID: survivor, Fields: fields}}); err != nil {
			return err
		}
	}
	return nil
}

func anys(ids []uuid.UUID) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// leadInput is the survivor's change: each chosen field's value, taken
// from the record named for it. A field not chosen is left as it is.
func leadInput(fields map[string]uuid.UUID, rows map[uuid.UUID]*pool.Merging) records.LeadInput {
	var in records.LeadInput
	for name, from := range fields {
		l := rows[from].Lead()
		switch name {
		case "name":
			in.Name = ptr(l.Name)
		case "company":
			in.Company = ptr(l.Company)
		case "phone":
			in.Phone = ptr(l.Phone)
		case "email":
			in.Email = ptr(l.Email)
		case "source":
			in.Source = ptr(l.Source)
		case "region":
			in.Region = ptr(l.Region)
		case "industry":
			in.Industry = ptr(l.Industry)
		case "notes":
			in.Notes = ptr(l.Notes)
		case "tags":
			in.Tags = ptr(append([]string{}, l.Tags...))
		}
	}
	return in
}

// customerInput is leadInput for customers.
func customerInput(fields map[string]uuid.UUID, rows map[uuid.UUID]*pool.Merging) records.CustomerInput {
	var in records.CustomerInput
	for name, from := range fields {
		c := rows[from].Customer()
		switch name {
		case "name":
			in.Name = ptr(c.Name)
		case "industry":
			in.Industry = ptr(c.Industry)
		case "region":
			in.Region = ptr(c.Region)
		case "address":
			in.Address = ptr(c.Address)
		case "website":
			in.Website = ptr(c.Website)
		case "grade":
			in.Grade = patch.Value(c.Grade)
		case "creditLevel":
			in.CreditLevel = ptr(c.CreditLevel)
		case "creditLimit":
			if c.CreditLimit == nil {
				in.CreditLimit.Set = true
			} else {
				in.CreditLimit = patch.Value(*c.CreditLimit)
			}
		case "source":
			in.Source = ptr(c.Source)
		case "tags":
			in.Tags = ptr(append([]string{}, c.Tags...))
		}
	}
	return in
}

func ptr[T any](v T) *T { return &v }
