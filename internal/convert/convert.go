// Package convert is the conversion of a lead into a customer (转化), a
// use case over two capabilities: the pool engine checks the rules and
// moves the ownership (caps, counters, statuses, history, events), records
// writes the customer, its contact and the duplicate keys with its own
// code. Both run in one transaction that this package opens, so neither
// of them duplicates the other and neither imports the other.
package convert

import (
	"context"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service converts leads.
type Service struct {
	store   *store.Store
	pools   *pool.Service
	records *records.Service
}

// New returns the conversion use case.
func New(st *store.Store, pools *pool.Service, recs *records.Service) *Service {
	return &Service{store: st, pools: pools, records: recs}
}

// Convert turns an owned, active lead into a customer owned by the same
// rep (in the default customer pool), with a contact made from the lead's
// person, phone and email; customerName, when not blank, names it. By the
// owner (or his supervisor or an admin, on his behalf). It returns the
// customer's id.
func (s *Service) Convert(ctx context.Context, p *auth.Principal, leadID uuid.UUID, customerName string) (uuid.UUID, error) {
	customerID := uuid.Must(uuid.NewV7())
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		c, err := s.pools.ConvertLead(ctx, tx, p, leadID)
		if err != nil {
			return err
		}
		if err := s.records.CustomerFromLead(ctx, tx, c.Lead, customerID, customerName, c.OwnerID, c.CustomerPool.ID, c.Now); err != nil {
			return err
		}
		return s.pools.Converted(ctx, p, c, customerID)
	})
	return customerID, err
}
