package pool

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/dedupekey"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

// Convert turns an owned, active lead into a customer owned by the same
// rep (in the default customer pool), with a contact made from the lead's
// person, phone and email. The lead's duplicate keys move with it, so the
// company stays one company. By the owner (or his supervisor or an admin,
// on his behalf). It returns the customer's id.
func (s *Service) Convert(ctx context.Context, p *auth.Principal, leadID uuid.UUID, customerName string) (uuid.UUID, error) {
	customerID := uuid.Must(uuid.NewV7())
	_, err := s.run(ctx, p, kinds.Lead, leadID, func(o *op) error {
		if err := o.ownerOrManager(p); err != nil {
			return err
		}
		if o.r.Status != "active" {
			return ruleErr(poolrules.ErrRecordInvalid)
		}
		owner := *o.r.OwnerID
		h, err := s.lockHolder(ctx, o.tx, owner, o.st)
		if err != nil {
			return err
		}
		if !h.underCap(kinds.Customer) {
			return ruleErr(poolrules.ErrCapExceeded)
		}
		l, err := o.tx.Lead.Get(ctx, leadID)
		if err != nil {
			return fmt.Errorf("load lead: %w", err)
		}
		name := strings.TrimSpace(customerName)
		if name == "" {
			name = l.Company
		}
		if name == "" {
			name = l.Name
		}
		cpl, err := o.tx.Pool.Query().Where(entpool.KindEQ(entpool.KindCustomer), entpool.IsDefault(true)).First(ctx)
		if err != nil {
			return fmt.Errorf("load default customer pool: %w", err)
		}
		if err := o.tx.Customer.Create().SetID(customerID).SetName(name).SetNameNorm(dedupe.Name(name)).
			SetIndustry(l.Industry).SetRegion(l.Region).SetSource(l.Source).SetTags(l.Tags).
			SetPoolID(cpl.ID).SetOwnerID(owner).SetOwnedAt(o.now).SetCreatedAt(o.now).SetUpdatedAt(o.now).Exec(ctx); err != nil {
			return fmt.Errorf("create customer: %w", err)
		}
		contactID := uuid.Must(uuid.NewV7())
		if err := o.tx.Contact.Create().SetID(contactID).SetCustomerID(customerID).SetName(l.Name).SetPhone(l.Phone).SetEmail(l.Email).
			SetPhoneNorm(l.PhoneNorm).SetEmailNorm(l.EmailNorm).SetIsPrimary(true).Exec(ctx); err != nil {
			return fmt.Errorf("create contact: %w", err)
		}
		// The lead's keys now belong to the customer (name) and its
		// contact (phone, email); a name typed on convert replaces the
		// company's key.
		if _, err := o.tx.DedupeKey.Delete().Where(dedupekey.RecordID(leadID), dedupekey.KeyTypeEQ(dedupekey.KeyTypeName)).Exec(ctx); err != nil {
			return fmt.Errorf("move keys: %w", err)
		}
		if v := dedupe.Name(name); v != "" {
			if err := o.tx.DedupeKey.Create().SetKeyType(dedupekey.KeyTypeName).SetValue(v).SetRecordKind(dedupekey.RecordKindCustomer).
				SetRecordID(customerID).OnConflictColumns(dedupekey.FieldKeyType, dedupekey.FieldValue).DoNothing().Exec(ctx); err != nil && !isNoRows(err) {
				return fmt.Errorf("move keys: %w", err)
			}
		}
		if _, err := o.tx.DedupeKey.Update().Where(dedupekey.RecordID(leadID)).
			SetRecordKind(dedupekey.RecordKindContact).SetRecordID(contactID).SetCustomerID(customerID).Save(ctx); err != nil {
			return fmt.Errorf("move keys: %w", err)
		}
		// Counters: the lead leaves the cap, the customer joins it.
		if err := adjust(ctx, o.tx, owner, kinds.Lead, -1); err != nil {
			return err
		}
		if err := adjust(ctx, o.tx, owner, kinds.Customer, 1); err != nil {
			return err
		}
		if err := o.tx.Lead.UpdateOneID(leadID).SetConvertedCustomerID(customerID).Exec(ctx); err != nil {
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
		if err := s.save(ctx, o.tx, cr, cpl, o.now); err != nil {
			return err
		}
		return s.log(ctx, o.tx, cr, Change{Op: "create", To: &owner, Actor: p, Reason: "converted from lead " + leadID.String(), RuleVersion: cpl.RuleVersion}, o.now)
	})
	return customerID, err
}
