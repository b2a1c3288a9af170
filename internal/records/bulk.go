package records

import (
	"context"
	"errors"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
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
