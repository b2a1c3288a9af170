package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// Conversion is a lead being converted into a customer, in one
// transaction that the conversion use case runs: ConvertLead checks the
// rules and locks, the caller writes the customer (records), Converted
// moves the ownership over. The engine only does the ownership part:
// caps, counters, statuses, history and events.
type Conversion struct {
	o *op
	// Lead is the lead as locked.
	Lead *ent.Lead
	// OwnerID owns the lead, and will own the customer.
	OwnerID uuid.UUID
	// CustomerPool is the default customer pool the customer lands in.
	CustomerPool *ent.Pool
	// Now is the time of the conversion.
	Now time.Time
}

// ConvertLead starts converting an owned, active lead in tx: by its owner
// (or his supervisor or an admin, on his behalf), whose customer cap must
// have room for one more. A lead p may not see is NotFound.
func (s *Service) ConvertLead(ctx context.Context, tx *ent.Tx, p *auth.Principal, leadID uuid.UUID) (*Conversion, error) {
	o, err := s.open(ctx, tx, kinds.Lead, leadID, func(o *op) bool { return o.sees(p) })
	if err != nil {
		return nil, err
	}
	if err := o.ownerOrManager(p); err != nil {
		return nil, err
	}
	if o.r.Status != "active" {
		return nil, ruleErr(poolrules.ErrRecordInvalid)
	}
	owner := *o.r.OwnerID
	h, err := s.lockHolder(ctx, tx, owner, o.st)
	if err != nil {
		return nil, err
	}
	if !h.underCap(kinds.Customer) {
		return nil, ruleErr(poolrules.ErrCapExceeded)
	}
	// The customer lands where the owner's new customers land: his team's
	// default customer pool, else the global one.
	cpl, err := s.landing(ctx, tx, o.ownerPath, kinds.Customer)
	if err != nil {
		return nil, fmt.Errorf("load default customer pool: %w", err)
	}
	return &Conversion{o: o, Lead: o.r.row.(*ent.Lead), OwnerID: owner, CustomerPool: cpl, Now: o.now}, nil
}

// Converted finishes a conversion once the customer customerID is written
// in the same transaction: the lead leaves its owner's lead cap and the
// customer joins his customer cap, the lead is marked converted, and both
// get their history row and event (the lead's convert, the customer's
// create).
func (s *Service) Converted(ctx context.Context, p *auth.Principal, c *Conversion, customerID uuid.UUID) error {
	o, owner := c.o, c.OwnerID
	if err := adjust(ctx, o.tx, owner, kinds.Lead, -1); err != nil {
		return err
	}
	if err := adjust(ctx, o.tx, owner, kinds.Customer, 1); err != nil {
		return err
	}
	if err := o.tx.Lead.UpdateOneID(o.r.ID).SetConvertedCustomerID(customerID).Exec(ctx); err != nil {
		return fmt.Errorf("mark converted: %w", err)
	}
	o.r.Status, o.r.FrozenUntil = "converted", nil
	if err := s.commit(ctx, o, Change{Op: "convert", From: &owner, To: &owner, Actor: p, RuleVersion: o.pl.RuleVersion}); err != nil {
		return err
	}
	cr, err := s.load(ctx, o.tx, kinds.Customer, customerID)
	if err != nil {
		return err
	}
	if err := s.save(ctx, o.tx, cr, c.CustomerPool, o.now); err != nil {
		return err
	}
	return s.log(ctx, o.tx, cr, Change{Op: "create", To: &owner, Actor: p, Reason: "converted from lead " + o.r.ID.String(), RuleVersion: c.CustomerPool.RuleVersion}, o.now)
}
