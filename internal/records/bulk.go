package records

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/search"
	"github.com/shoalcrm/shoal/internal/store"
)

// Bulk creation (internal/imports): the same rule set as CreateLead and
// CreateCustomer (validation, placement and caps, auto-assignment,
// duplicate keys, history, events, search index), run in the caller's
// transaction so that an import writes a batch of rows in one. The caller
// runs each row in a savepoint of its own and rolls it back when it fails,
// so a failed row leaves nothing behind.

// CreateLeadIn creates a lead in tx and returns its id and placement. A
// duplicate is Conflict duplicate (see DuplicateOn).
func (s *Service) CreateLeadIn(ctx context.Context, tx *ent.Tx, p *auth.Principal, in LeadInput) (uuid.UUID, string, error) {
	id := uuid.Must(uuid.NewV7())
	how, err := leads.createIn(ctx, s, tx, p, id, in, in.PoolID)
	return id, how, err
}

// CreateCustomerIn creates a customer in tx and, when first is given, its
// first contact (primary), and returns the customer's id and placement.
func (s *Service) CreateCustomerIn(ctx context.Context, tx *ent.Tx, p *auth.Principal, in CustomerInput, first *ContactInput) (uuid.UUID, string, error) {
	if err := in.validate(); err != nil {
		return uuid.Nil, "", err
	}
	id := uuid.Must(uuid.NewV7())
	how, err := customers.createIn(ctx, s, tx, p, id, in, in.PoolID)
	if err != nil || first == nil {
		return id, how, err
	}
	primary := true
	c := *first
	c.IsPrimary = &primary
	_, err = s.insertContact(ctx, tx, p, id, c)
	return id, how, err
}

// DuplicateOn reports whether err refuses a record as a duplicate, and on
// which keys (name, phone, email; a contact's phone and email are
// "contact" matches of the same keys). A key claimed by a concurrent
// transaction counts as a duplicate of that key.
func DuplicateOn(err error) ([]Match, bool) {
	var raced errRaced
	if errors.As(err, &raced) {
		out := make([]Match, len(raced.keys))
		for i, k := range raced.keys {
			out[i] = Match{MatchedOn: k.Type}
		}
		return out, true
	}
	e, ok := apperr.As(err)
	if !ok || e.Code != "duplicate" {
		return nil, false
	}
	m, _ := e.Extra["matches"].([]Match)
	return m, true
}

// Chunks of a multi-row insert or look-up: under SQLite's 32766 variables
// and PostgreSQL's 65535 parameters whatever the table's width.
const (
	leadChunk = 250
	keyChunk  = 1000
)

// LeadDuplicates looks the duplicate keys of a batch of new leads up at
// once, in tx (one query per key type and chunk), and reports which of
// them CreateLeadIn would refuse or should be left to it: a lead one of
// whose keys a record holds, or whose key an earlier lead of the batch
// has. The others can go to CreateLeadsIn together.
func (s *Service) LeadDuplicates(ctx context.Context, tx *ent.Tx, ins []LeadInput) ([]bool, error) {
	out := make([]bool, len(ins))
	keys := make([][]dupKey, len(ins))
	byType := map[string][]string{}
	first := map[dupKey]int{}
	for i, in := range ins {
		keys[i] = leads.keyedIn(in).keys()
		for _, k := range keys[i] {
			if _, ok := first[k]; ok {
				out[i] = true
				continue
			}
			first[k] = i
			byType[k.Type] = append(byType[k.Type], k.Value)
		}
	}
	held := map[dupKey]bool{}
	for typ, vals := range byType {
		for from := 0; from < len(vals); from += keyChunk {
			to := min(len(vals), from+keyChunk)
			got, err := tx.DedupeKey.Query().Where(dedupekey.KeyTypeEQ(dedupekey.KeyType(typ)), dedupekey.ValueIn(vals[from:to]...)).
				Select(dedupekey.FieldValue).Strings(ctx)
			if err != nil {
				return nil, fmt.Errorf("duplicate look-up: %w", err)
			}
			for _, v := range got {
				held[dupKey{typ, v}] = true
			}
		}
	}
	for i := range ins {
		for _, k := range keys[i] {
			if held[k] {
				out[i] = true
			}
		}
	}
	return out, nil
}

// CreateLeadsIn creates a batch of leads in tx with CreateLeadIn's rule
// set, as CreateLeadIn would one after the other in their order, with a
// multi-row insert per table: placement and caps through the pool engine
// (PlaceNewBatch), duplicate keys, the rows, history and events, the
// search index. The leads should have passed LeadDuplicates: a key a
// record holds meanwhile (a concurrent writer) fails the whole batch
// with a duplicate (DuplicateOn), and the caller redoes its leads one by
// one. It returns the leads' ids and placements; on an error it may have
// written part of the batch, which the caller rolls back.
func (s *Service) CreateLeadsIn(ctx context.Context, tx *ent.Tx, p *auth.Principal, ins []LeadInput, poolID *uuid.UUID) ([]uuid.UUID, []string, error) {
	ids := make([]uuid.UUID, len(ins))
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
	}
	how, err := s.pools.PlaceNewBatch(ctx, tx, p, kinds.Lead, ids, poolID, func(pool uuid.UUID, owners []*uuid.UUID, now time.Time) error {
		var all []dupKey
		var kb []*ent.DedupeKeyCreate
		for i, in := range ins {
			for _, k := range leads.keyedIn(in).keys() {
				all = append(all, k)
				kb = append(kb, tx.DedupeKey.Create().SetKeyType(dedupekey.KeyType(k.Type)).SetValue(k.Value).
					SetRecordKind(dedupekey.RecordKind(kinds.Lead)).SetRecordID(ids[i]))
			}
		}
		for from := 0; from < len(kb); from += keyChunk {
			to := min(len(kb), from+keyChunk)
			if err := tx.DedupeKey.CreateBulk(kb[from:to]...).Exec(ctx); err != nil {
				if store.IsUniqueViolation(err) {
					return errRaced{keys: all}
				}
				return fmt.Errorf("claim duplicate keys: %w", err)
			}
		}
		lb := make([]*ent.LeadCreate, len(ins))
		for i, in := range ins {
			lb[i] = newLead(tx, in, func(m placedMutation) { placeRow(m, ids[i], pool, owners[i], now) })
		}
		for from := 0; from < len(lb); from += leadChunk {
			to := min(len(lb), from+leadChunk)
			if err := tx.Lead.CreateBulk(lb[from:to]...).Exec(ctx); err != nil {
				return fmt.Errorf("create leads: %w", err)
			}
		}
		return search.IndexNew(ctx, tx, s.store.Dialect, kinds.Lead, ids)
	})
	if err != nil {
		return nil, nil, err
	}
	return ids, how, nil
}
