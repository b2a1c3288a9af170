package records

import (
	"context"
	"fmt"
	"net/mail"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/search"
	"github.com/shoalcrm/shoal/internal/store"
)

// ContactInput holds a contact's client-set fields. On update, nil means
// unchanged; an empty phone or email clears it.
type ContactInput struct {
	Name, Title, Phone, Email, Wechat, Notes *string
	IsPrimary                                *bool
}

// ContactView is a contact as one caller sees it: the contacts of a pooled
// customer are masked like the customer for those its pool masks.
type ContactView struct {
	*ent.Contact
	Masked bool
}

// CreateContact adds a contact to a customer p may change. A customer p
// may not see is NotFound, one he may only see is Forbidden
// not_record_owner; a phone or email another record holds is Conflict
// duplicate. A primary contact makes the customer's others non-primary.
func (s *Service) CreateContact(ctx context.Context, p *auth.Principal, customerID uuid.UUID, in ContactInput) (*ContactView, error) {
	var id uuid.UUID
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if _, err := customers.editable(ctx, s, tx, p, customerID); err != nil {
			return err
		}
		var err error
		id, err = s.insertContact(ctx, tx, p, customerID, in)
		return err
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	return s.contactView(ctx, s.store.Reader, p, id)
}

// insertContact claims the contact's duplicate keys and inserts it in tx,
// for a customer the caller has already checked p may change (a lead's
// conversion may call it too).
func (s *Service) insertContact(ctx context.Context, tx *ent.Tx, p *auth.Principal, customerID uuid.UUID, in ContactInput) (uuid.UUID, error) {
	id := uuid.Must(uuid.NewV7())
	if err := s.claimKeys(ctx, tx, p, "contact", id, &customerID, keysOf("", deref(in.Phone), deref(in.Email))); err != nil {
		return id, err
	}
	now := s.clock.Now()
	if in.IsPrimary != nil && *in.IsPrimary {
		if err := s.demotePrimary(ctx, tx, customerID, now); err != nil {
			return id, err
		}
	}
	c := tx.Contact.Create().SetID(id).SetCustomerID(customerID).SetName(deref(in.Name)).
		SetCreatedAt(now).SetUpdatedAt(now)
	setContactFields(c.Mutation(), in)
	if err := c.Exec(ctx); err != nil {
		return id, fmt.Errorf("create contact: %w", err)
	}
	if err := search.Reindex(ctx, tx, kinds.Customer, customerID); err != nil {
		return id, err
	}
	return id, s.emit(ctx, tx, p, events.ContactCreated, events.KindContact, id, events.Contact{CustomerID: customerID})
}

// demotePrimary makes every contact of a customer non-primary, under the
// customer's row lock on PostgreSQL so that two concurrent "make primary"
// requests cannot both win.
func (s *Service) demotePrimary(ctx context.Context, tx *ent.Tx, customerID uuid.UUID, now time.Time) error {
	if _, err := store.ForUpdate(s.store, tx.Customer.Query().Where(customer.ID(customerID))).Only(ctx); err != nil {
		return fmt.Errorf("lock customer: %w", err)
	}
	// A demoted contact changed, so its version moves too: an If-Match
	// read before the demotion is stale.
	_, err := tx.Contact.Update().Where(contact.CustomerID(customerID), contact.IsPrimary(true)).
		SetIsPrimary(false).AddVersion(1).SetUpdatedAt(now).Save(ctx)
	if err != nil {
		return fmt.Errorf("demote primary contact: %w", err)
	}
	return nil
}

// setContactFields copies the given fields and their normalised forms.
func setContactFields(m *ent.ContactMutation, in ContactInput) {
	if in.Name != nil {
		m.SetName(deref(in.Name))
		m.SetNameNorm(search.NormName(*in.Name))
	}
	setReach(m, in.Phone, in.Email)
	if in.Title != nil {
		m.SetTitle(deref(in.Title))
	}
	if in.Wechat != nil {
		m.SetWechat(deref(in.Wechat))
	}
	if in.Notes != nil {
		m.SetNotes(*in.Notes)
	}
	if in.IsPrimary != nil {
		m.SetIsPrimary(*in.IsPrimary)
	}
}

// GetContact returns a contact of a customer p may see; NotFound otherwise.
func (s *Service) GetContact(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ContactView, error) {
	return s.contactView(ctx, s.store.Reader, p, id)
}

func (s *Service) contactView(ctx context.Context, c *ent.Client, p *auth.Principal, id uuid.UUID) (*ContactView, error) {
	ct, err := c.Contact.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("contact")
	}
	if err != nil {
		return nil, fmt.Errorf("get contact: %w", err)
	}
	cu, err := s.visibleCustomer(ctx, c, p, ct.CustomerID)
	if apperr.HasCode(err, "not_found") {
		return nil, apperr.NotFoundf("contact")
	}
	if err != nil {
		return nil, err
	}
	m, err := s.contactMasker(ctx, c, p, cu)
	if err != nil {
		return nil, err
	}
	return m.contact(ct), nil
}

// visibleCustomer loads a customer p may see; NotFound otherwise.
func (s *Service) visibleCustomer(ctx context.Context, c *ent.Client, p *auth.Principal, id uuid.UUID) (*ent.Customer, error) {
	sc, err := s.scope(ctx, p, string(kinds.Customer))
	if err != nil {
		return nil, err
	}
	cu, err := c.Customer.Query().Where(customer.ID(id), predicate.Customer(sc)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, kinds.Customer.NotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("load customer: %w", err)
	}
	if survivor := mergedInto(string(cu.Status), cu.MergedIntoID); survivor != nil {
		return nil, kinds.Customer.MergedInto(*survivor)
	}
	return cu, nil
}

// contactMasker is the masking of a customer's contacts for p: none when
// the customer is owned, its pool's otherwise.
func (s *Service) contactMasker(ctx context.Context, c *ent.Client, p *auth.Principal, cu *ent.Customer) (masker, error) {
	if cu.OwnerID != nil {
		return masker{}, nil
	}
	pl, err := c.Pool.Get(ctx, cu.PoolID)
	if err != nil {
		return masker{}, fmt.Errorf("load pool: %w", err)
	}
	return maskerFor(p, pl), nil
}

// contact applies the masking to a copy of ct.
func (m masker) contact(ct *ent.Contact) *ContactView {
	if !m.On() {
		return &ContactView{Contact: ct}
	}
	cp := *ct
	masked := m.str("name", &cp.Name)
	masked = m.str("phone", &cp.Phone) || masked
	masked = m.str("email", &cp.Email) || masked
	masked = m.str("wechat", &cp.Wechat) || masked
	masked = m.str("notes", &cp.Notes) || masked
	return &ContactView{Contact: &cp, Masked: masked}
}

// editableContact loads a contact whose customer p may change, in tx. A
// contact of a customer p may not see is NotFound, like a missing one.
//
// Every change to a customer's existing contacts holds the customer's row
// lock (editableCustomer, demotePrimary), customer before contact: the
// contact is read again once the lock is held, so that on PostgreSQL the
// version If-Match is checked against is the one this change overwrites.
func (s *Service) editableContact(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID) (*ent.Contact, error) {
	ct, err := tx.Contact.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("contact")
	}
	if err != nil {
		return nil, fmt.Errorf("load contact: %w", err)
	}
	if _, err := customers.editable(ctx, s, tx, p, ct.CustomerID); err != nil {
		if apperr.HasCode(err, "not_found") {
			return nil, apperr.NotFoundf("contact")
		}
		return nil, err
	}
	ct, err = tx.Contact.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("contact")
	}
	if err != nil {
		return nil, fmt.Errorf("load contact: %w", err)
	}
	return ct, nil
}

// UpdateContact changes a contact of a customer p may change (NotFound or
// Forbidden not_record_owner otherwise). A changed phone or email that
// another record holds is Conflict duplicate; making it primary makes the
// customer's others non-primary. An email that is neither empty nor an
// address is Invalid. ifMatch must name the contact's current version
// (etag.Check).
func (s *Service) UpdateContact(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in ContactInput) (*ContactView, error) {
	if v := deref(in.Email); v != "" {
		if a, err := mail.ParseAddress(v); err != nil || a.Address != v {
			return nil, apperr.Invalidf("body/email", "format", "email must be an email address or empty")
		}
	}
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		ct, err := s.editableContact(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, ct.Version); err != nil {
			return err
		}
		var changed []string
		var keys []dupKey
		if in.Phone != nil && dedupe.Phone(*in.Phone) != ct.PhoneNorm {
			changed = append(changed, dedupe.MatchedPhone)
			keys = append(keys, keysOf("", *in.Phone, "")...)
		}
		if in.Email != nil && dedupe.Email(*in.Email) != ct.EmailNorm {
			changed = append(changed, dedupe.MatchedEmail)
			keys = append(keys, keysOf("", "", *in.Email)...)
		}
		if len(changed) > 0 {
			if err := releaseKeys(ctx, tx, id, changed...); err != nil {
				return err
			}
			cid := ct.CustomerID
			if err := s.claimKeys(ctx, tx, p, "contact", id, &cid, keys); err != nil {
				return err
			}
		}
		now := s.clock.Now()
		if in.IsPrimary != nil && *in.IsPrimary && !ct.IsPrimary {
			if err := s.demotePrimary(ctx, tx, ct.CustomerID, now); err != nil {
				return err
			}
		}
		upd := tx.Contact.UpdateOneID(id).AddVersion(1).SetUpdatedAt(now)
		setContactFields(upd.Mutation(), in)
		fields, err := events.ChangedFields(ctx, upd.Mutation())
		if err != nil {
			return err
		}
		if err := s.emit(ctx, tx, p, events.ContactUpdated, events.KindContact, id,
			events.Contact{CustomerID: ct.CustomerID, Fields: fields}); err != nil {
			return err
		}
		if err := upd.Exec(ctx); err != nil {
			return fmt.Errorf("update contact: %w", err)
		}
		return search.Reindex(ctx, tx, kinds.Customer, ct.CustomerID)
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	return s.contactView(ctx, s.store.Reader, p, id)
}

// DeleteContact removes a contact of a customer p may change (NotFound or
// Forbidden not_record_owner otherwise) and releases its phone and email.
// ifMatch must name the contact's current version (etag.Check).
func (s *Service) DeleteContact(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string) error {
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		ct, err := s.editableContact(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, ct.Version); err != nil {
			return err
		}
		if err := releaseKeys(ctx, tx, id, dedupe.MatchedName, dedupe.MatchedPhone, dedupe.MatchedEmail); err != nil {
			return err
		}
		if err := tx.Contact.DeleteOneID(id).Exec(ctx); err != nil {
			return fmt.Errorf("delete contact: %w", err)
		}
		if err := search.Reindex(ctx, tx, kinds.Customer, ct.CustomerID); err != nil {
			return err
		}
		return s.emit(ctx, tx, p, events.ContactDeleted, events.KindContact, id, events.Contact{CustomerID: ct.CustomerID})
	})
}

// contactList orders contacts by id: creation order.
var contactList = listing.ByID(contact.FieldID, func(c *ent.Contact) uuid.UUID { return c.ID }, false)

// ListContacts lists the contacts of a customer p may see (NotFound
// otherwise), in id order, from the cursor on; and the cursor of the next
// page.
func (s *Service) ListContacts(ctx context.Context, p *auth.Principal, customerID uuid.UUID, cursor *listing.Cursor, limit int) ([]*ContactView, *listing.Cursor, error) {
	pg, err := contactList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	c := s.store.Reader
	cu, err := s.visibleCustomer(ctx, c, p, customerID)
	if err != nil {
		return nil, nil, err
	}
	list, err := c.Contact.Query().Where(contact.CustomerID(customerID), predicate.Contact(pg.Apply)).Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list contacts: %w", err)
	}
	m, err := s.contactMasker(ctx, c, p, cu)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*ContactView, len(list))
	for i, ct := range list {
		out[i] = m.contact(ct)
	}
	return out, pg.Next(list), nil
}
