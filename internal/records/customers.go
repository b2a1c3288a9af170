package records

import (
	"context"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
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

// customers is the customer kind of the owned-record service.
var customers = &ownedKind[*ent.Customer, CustomerInput]{
	kind:  kinds.Customer,
	sorts: customerList,
	lock: func(ctx context.Context, st *store.Store, tx *ent.Tx, id uuid.UUID) error {
		_, err := store.ForUpdate(st, tx.Customer.Query().Where(customer.ID(id))).IDs(ctx)
		return err
	},
	find: func(ctx context.Context, c *ent.Client, limit int, preds ...func(*sql.Selector)) ([]*ent.Customer, error) {
		q := c.Customer.Query().Where(customerPreds(preds)...)
		if limit > 0 {
			q.Limit(limit)
		}
		return q.All(ctx)
	},
	count: func(ctx context.Context, c *ent.Client, preds ...func(*sql.Selector)) (int, error) {
		return c.Customer.Query().Where(customerPreds(preds)...).Count(ctx)
	},
	meta: func(c *ent.Customer) rowMeta {
		return rowMeta{ID: c.ID, OwnerID: c.OwnerID, PoolID: c.PoolID, Version: c.Version, CreatedAt: c.CreatedAt,
			UpdatedAt: c.UpdatedAt, OwnedAt: c.OwnedAt, LastFollowUpAt: c.LastFollowUpAt, MergedInto: mergedInto(string(c.Status), c.MergedIntoID)}
	},
	clone: func(c *ent.Customer) *ent.Customer { cp := *c; return &cp },
	masked: func(c *ent.Customer) ([]*string, *[]string) {
		return []*string{&c.Name, &c.Address, &c.Website, &c.Region, &c.Industry, &c.Source}, &c.Tags
	},
	validate: CustomerInput.validate,
	keyed:    func(in CustomerInput) dedupeFields { return dedupeFields{name: in.Name} },
	stored:   func(c *ent.Customer) dedupeFields { return dedupeFields{name: &c.NameNorm} },
	insert: func(ctx context.Context, tx *ent.Tx, id uuid.UUID, in CustomerInput, place func(placedMutation)) error {
		c := tx.Customer.Create().SetName(deref(in.Name))
		place(c.Mutation())
		setCustomerFields(c.Mutation(), in)
		return c.Exec(ctx)
	},
	update: func(tx *ent.Tx, id uuid.UUID, in CustomerInput) (versionedMutation, func(context.Context) error) {
		upd := tx.Customer.UpdateOneID(id)
		setCustomerFields(upd.Mutation(), in)
		return upd.Mutation(), upd.Exec
	},
}

func customerPreds(preds []func(*sql.Selector)) []predicate.Customer {
	out := make([]predicate.Customer, len(preds))
	for i, p := range preds {
		out[i] = p
	}
	return out
}

func customerView(v *View[*ent.Customer]) *CustomerView {
	return &CustomerView{Customer: v.Row, OwnerName: v.OwnerName, Masked: v.Masked, Placement: v.Placement}
}

// CreateCustomer creates a customer placed by the pool engine; a duplicate
// name is Conflict duplicate and nothing is written.
func (s *Service) CreateCustomer(ctx context.Context, p *auth.Principal, in CustomerInput) (*CustomerView, error) {
	v, err := customers.create(ctx, s, p, in, in.PoolID)
	if err != nil {
		return nil, err
	}
	return customerView(v), nil
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
	v, err := customers.view(ctx, s, c, p, id)
	if err != nil {
		return nil, err
	}
	return customerView(v), nil
}

func (s *Service) customerViews(ctx context.Context, c *ent.Client, p *auth.Principal, list []*ent.Customer) ([]*CustomerView, error) {
	views, err := customers.views(ctx, c, p, list)
	return mapViews(views, customerView), err
}

// UpdateCustomer changes a customer's fields (never owner, pool or deal
// status). It needs If-Match; a changed name that duplicates another
// record is Conflict duplicate.
func (s *Service) UpdateCustomer(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in CustomerInput) (*CustomerView, error) {
	v, err := customers.updateFields(ctx, s, p, id, ifMatch, in)
	if err != nil {
		return nil, err
	}
	return customerView(v), nil
}

// SetDealStatus marks a customer dealt (成交) or not, for its owner, his
// supervisor or an admin. The owner's cap counter follows when dealt
// customers do not count (capCountsDealt off), and the reclaim deadline is
// recomputed, in the same transaction. ifMatch is optional; when given it
// must name the current version.
func (s *Service) SetDealStatus(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, dealt bool) (*CustomerView, error) {
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		row, err := customers.editable(ctx, s, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.CheckIfGiven(ifMatch, row.Version); err != nil {
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
	views, total, next, err := customers.list(ctx, s, p, f)
	return mapViews(views, customerView), total, next, err
}
