package records

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/store"
)

// CustomerInput holds a customer's client-set fields. On update, nil (or
// an unset patch field) means unchanged.
type CustomerInput struct {
	Name, Industry, Region, Address, Website, CreditLevel, Source *string
	Grade                                                         patch.Field[string]
	CreditLimit                                                   patch.Field[money.Money]
	Tags                                                          *[]string
	PoolID                                                        *uuid.UUID
}

// CustomerView is a customer as one caller sees it.
type CustomerView struct {
	*ent.Customer
	OwnerName *string
	Masked    bool
	Placement string
}

// CreateCustomer creates a customer placed by the pool engine; a duplicate
// name is Conflict duplicate and nothing is written.
func (s *Service) CreateCustomer(ctx context.Context, p *auth.Principal, in CustomerInput) (*CustomerView, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	keys := keysOf(deref(in.Name), "", "")
	id := uuid.Must(uuid.NewV7())
	var place string
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		pl, err := s.pools.Place(ctx, tx, p, "customer", in.PoolID)
		if err != nil {
			return err
		}
		if err := s.claimKeys(ctx, tx, p, "customer", id, nil, keys); err != nil {
			return err
		}
		c := tx.Customer.Create().SetID(id).SetName(deref(in.Name)).SetPoolID(pl.Pool.ID).
			SetNillableOwnerID(pl.OwnerID).SetCreatedAt(pl.Now).SetUpdatedAt(pl.Now)
		if pl.OwnerID != nil {
			c.SetOwnedAt(pl.Now)
		}
		setCustomerFields(c.Mutation(), in)
		if err := c.Exec(ctx); err != nil {
			return fmt.Errorf("create customer: %w", err)
		}
		if err := s.pools.Created(ctx, tx, p, "customer", id, pl); err != nil {
			return err
		}
		place = pl.How
		return nil
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	v, err := s.customerView(ctx, s.store.Reader, p, id)
	if err != nil {
		return nil, err
	}
	v.Placement = place
	return v, nil
}

// validate checks the rules the contract cannot state: a credit limit is
// an amount a customer may owe, so it is never negative.
func (in CustomerInput) validate() error {
	if v := in.CreditLimit.Value; v != nil && v.IsNegative() {
		return apperr.Invalidf("body/creditLimit", "minimum", "creditLimit must not be negative")
	}
	return nil
}

func setCustomerFields(m *ent.CustomerMutation, in CustomerInput) {
	if in.Name != nil {
		m.SetName(deref(in.Name))
		m.SetNameNorm(dedupe.Name(*in.Name))
	}
	set := func(v *string, f func(string)) {
		if v != nil {
			f(deref(v))
		}
	}
	set(in.Industry, m.SetIndustry)
	set(in.Region, m.SetRegion)
	set(in.Address, m.SetAddress)
	set(in.Website, m.SetWebsite)
	set(in.CreditLevel, m.SetCreditLevel)
	set(in.Source, m.SetSource)
	if in.Grade.Set {
		m.SetGrade(deref(in.Grade.Value))
	}
	if in.CreditLimit.Set {
		if in.CreditLimit.Value == nil {
			m.ClearCreditLimit()
		} else {
			m.SetCreditLimit(*in.CreditLimit.Value)
		}
	}
	if in.Tags != nil {
		m.SetTags(cleanTags(*in.Tags))
	}
}

// GetCustomer returns a customer p may see; NotFound otherwise.
func (s *Service) GetCustomer(ctx context.Context, p *auth.Principal, id uuid.UUID) (*CustomerView, error) {
	return s.customerView(ctx, s.store.Reader, p, id)
}

func (s *Service) customerView(ctx context.Context, c *ent.Client, p *auth.Principal, id uuid.UUID) (*CustomerView, error) {
	sc, err := s.scope(ctx, p, "customer")
	if err != nil {
		return nil, err
	}
	cu, err := c.Customer.Query().Where(customer.ID(id), predicate.Customer(sc)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("customer")
	}
	if err != nil {
		return nil, fmt.Errorf("get customer: %w", err)
	}
	views, err := s.customerViews(ctx, c, p, []*ent.Customer{cu})
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

func (s *Service) customerViews(ctx context.Context, c *ent.Client, p *auth.Principal, list []*ent.Customer) ([]*CustomerView, error) {
	owners, pools, err := lookups(ctx, c, len(list), func(i int) (*uuid.UUID, uuid.UUID) { return list[i].OwnerID, list[i].PoolID })
	if err != nil {
		return nil, err
	}
	out := make([]*CustomerView, len(list))
	for i, cu := range list {
		v := &CustomerView{Customer: cu}
		if cu.OwnerID != nil {
			if name, ok := owners[*cu.OwnerID]; ok {
				v.OwnerName = &name
			}
		} else {
			m := maskerFor(p, pools[cu.PoolID])
			cp := *cu
			masked := m.str("name", &cp.Name)
			masked = m.str("address", &cp.Address) || masked
			masked = m.str("website", &cp.Website) || masked
			masked = m.str("region", &cp.Region) || masked
			masked = m.str("industry", &cp.Industry) || masked
			masked = m.str("source", &cp.Source) || masked
			masked = m.tags(&cp.Tags) || masked
			v.Customer, v.Masked = &cp, masked
		}
		out[i] = v
	}
	return out, nil
}

// editableCustomer loads a customer p may see and change, in tx, locked
// (PostgreSQL): the version If-Match is checked against is the one the
// change overwrites, and changes to its contacts wait for each other.
func (s *Service) editableCustomer(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID) (*ent.Customer, error) {
	sc, err := s.scope(ctx, p, "customer")
	if err != nil {
		return nil, err
	}
	cu, err := store.ForUpdate(s.store, tx.Customer.Query().Where(customer.ID(id), predicate.Customer(sc))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("customer")
	}
	if err != nil {
		return nil, fmt.Errorf("load customer: %w", err)
	}
	ok, err := s.canEdit(ctx, tx, p, cu.OwnerID, cu.PoolID)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errNotEditable
	}
	return cu, nil
}

// UpdateCustomer changes a customer's fields (never owner, pool or deal
// status). It needs If-Match; a changed name that duplicates another
// record is Conflict duplicate.
func (s *Service) UpdateCustomer(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in CustomerInput) (*CustomerView, error) {
	if err := in.validate(); err != nil {
		return nil, err
	}
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		cu, err := s.editableCustomer(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, cu.Version); err != nil {
			return err
		}
		if in.Name != nil && dedupe.Name(*in.Name) != cu.NameNorm {
			if err := releaseKeys(ctx, tx, id, dedupe.MatchedName); err != nil {
				return err
			}
			if err := s.claimKeys(ctx, tx, p, "customer", id, nil, keysOf(*in.Name, "", "")); err != nil {
				return err
			}
		}
		upd := tx.Customer.UpdateOneID(id).AddVersion(1).SetUpdatedAt(s.clock.Now())
		setCustomerFields(upd.Mutation(), in)
		if err := s.emitUpdated(ctx, tx, p, events.KindCustomer, id, upd.Mutation()); err != nil {
			return err
		}
		return upd.Exec(ctx)
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	return s.customerView(ctx, s.store.Reader, p, id)
}

// SetDealStatus marks a customer dealt (成交) or not, for its owner, his
// supervisor or an admin. The owner's cap counter follows when dealt
// customers do not count (capCountsDealt off), and the reclaim deadline is
// recomputed, in the same transaction.
func (s *Service) SetDealStatus(ctx context.Context, p *auth.Principal, id uuid.UUID, dealt bool) (*CustomerView, error) {
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if _, err := s.editableCustomer(ctx, tx, p, id); err != nil {
			return err
		}
		return s.pools.SetDealt(ctx, tx, p, id, dealt)
	})
	if err != nil {
		return nil, err
	}
	return s.customerView(ctx, s.store.Reader, p, id)
}

// ListCustomers lists the customers p may see, filtered and
// keyset-paginated; the total only when asked for.
func (s *Service) ListCustomers(ctx context.Context, p *auth.Principal, f Filter) ([]*CustomerView, *int, *Cursor, error) {
	sc, fp, ks, err := s.listPredicates(ctx, p, "customer", f)
	if err != nil {
		return nil, nil, nil, err
	}
	var total *int
	if f.IncludeTotal {
		n, err := s.store.Reader.Customer.Query().Where(predicate.Customer(sc), predicate.Customer(fp)).Count(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("count customers: %w", err)
		}
		total = &n
	}
	list, err := s.store.Reader.Customer.Query().Where(predicate.Customer(sc), predicate.Customer(fp), predicate.Customer(ks)).Limit(f.Limit).All(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list customers: %w", err)
	}
	var next *Cursor
	if len(list) == f.Limit && f.Limit > 0 {
		c := list[len(list)-1]
		next = f.next(c.ID, c.CreatedAt, c.UpdatedAt, c.OwnedAt, c.LastFollowUpAt)
	}
	views, err := s.customerViews(ctx, s.store.Reader, p, list)
	return views, total, next, err
}
