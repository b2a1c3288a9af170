package records

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/search"
)

// CustomerFromLead writes in tx the customer a lead converts into, with
// the customer's own code (fields, normalised name, placement columns):
// owned by owner in pool poolID since now, named name (else the lead's
// company, else its person), with the lead's industry, region, source and
// tags, and a primary contact made of the lead's person, phone and email.
// The lead's duplicate keys move with it, so the company stays one
// company. The caller (the conversion use case) has checked the rules
// and moves the ownership with the pool engine in the same transaction.
func (s *Service) CustomerFromLead(ctx context.Context, tx *ent.Tx, l *ent.Lead, id uuid.UUID, name string, owner, poolID uuid.UUID, now time.Time) error {
	name = strings.TrimSpace(name)
	if name == "" {
		name = l.Company
	}
	if name == "" {
		name = l.Name
	}
	in := CustomerInput{Name: &name, Industry: &l.Industry, Region: &l.Region, Source: &l.Source, Tags: &l.Tags}
	if err := customers.insert(ctx, tx, id, in, func(m placedMutation) { placeRow(m, id, poolID, &owner, now) }); err != nil {
		return fmt.Errorf("create customer: %w", err)
	}
	contactID := uuid.Must(uuid.NewV7())
	primary := true
	c := tx.Contact.Create().SetID(contactID).SetCustomerID(id)
	setContactFields(c.Mutation(), ContactInput{Name: &l.Name, Phone: &l.Phone, Email: &l.Email, IsPrimary: &primary})
	if err := c.Exec(ctx); err != nil {
		return fmt.Errorf("create contact: %w", err)
	}
	// The customer and its contact are searchable from the start.
	if err := search.Reindex(ctx, tx, kinds.Customer, id); err != nil {
		return err
	}
	return moveLeadKeys(ctx, tx, l.ID, id, contactID, name)
}
