// Package products is the product catalogue (产品目录): what quotes and
// orders sell. Supervisors and admins manage it and see each product's
// internal cost (成本价) and margin; everyone else reads it without them
// (the HTTP layer leaves them out of every format by CostVisible).
package products

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/product"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/store"
)

var (
	errNotFound = apperr.NotFoundf("product")
	errSKUTaken = apperr.New(apperr.Conflict, "sku_taken", "another product has this SKU")
)

// CostVisible reports whether p may see products' internal cost and
// margin: supervisors and admins.
func CostVisible(p *auth.Principal) bool {
	return p != nil && p.Type == auth.ActorUser && (p.Role == auth.RoleSupervisor || p.Role == auth.RoleAdmin)
}

// Service manages the catalogue.
type Service struct {
	store *store.Store
	clock clock.Clock
}

// NewService returns the catalogue service.
func NewService(st *store.Store, clk clock.Clock) *Service { return &Service{store: st, clock: clk} }

// Input is a new product.
type Input struct {
	SKU, Name                     string
	Category, Unit, Specification *string
	ListPrice                     money.Money
	InternalCost                  *money.Money
}

// Patch changes a product (merge patch: null clears the optional fields).
type Patch struct {
	SKU, Name                     *string
	Category, Unit, Specification patch.Field[string]
	ListPrice                     *money.Money
	InternalCost                  patch.Field[money.Money]
	Active                        *bool
}

// normSKU is the SKU trimmed, and its unique form (upper case).
func normSKU(raw string) (string, string, error) {
	sku := strings.TrimSpace(raw)
	if sku == "" {
		return "", "", apperr.Invalidf("body/sku", "required", "sku is required")
	}
	return sku, strings.ToUpper(sku), nil
}

func checkAmounts(list *money.Money, cost *money.Money) error {
	if list != nil && list.IsNegative() {
		return apperr.Invalidf("body/listPrice", "minimum", "listPrice may not be negative")
	}
	if cost != nil && cost.IsNegative() {
		return apperr.Invalidf("body/internalCost", "minimum", "internalCost may not be negative")
	}
	return nil
}

func name(raw string) (string, error) {
	n := strings.TrimSpace(raw)
	if n == "" {
		return "", apperr.Invalidf("body/name", "required", "name is required")
	}
	return n, nil
}

// Create adds a product.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in Input) (*ent.Product, error) {
	sku, norm, err := normSKU(in.SKU)
	if err != nil {
		return nil, err
	}
	n, err := name(in.Name)
	if err != nil {
		return nil, err
	}
	if err := checkAmounts(&in.ListPrice, in.InternalCost); err != nil {
		return nil, err
	}
	var out *ent.Product
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		taken, err := tx.Product.Query().Where(product.SkuNorm(norm)).Exist(ctx)
		if err != nil {
			return fmt.Errorf("sku taken: %w", err)
		}
		if taken {
			return errSKUTaken
		}
		now := s.now()
		c := tx.Product.Create().SetSku(sku).SetSkuNorm(norm).SetName(n).SetNillableCategory(in.Category).
			SetNillableUnit(in.Unit).SetNillableSpecification(in.Specification).SetListPrice(in.ListPrice).
			SetCreatedAt(now).SetUpdatedAt(now)
		if in.InternalCost != nil {
			c.SetInternalCost(*in.InternalCost)
		}
		out, err = c.Save(ctx)
		if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
			return errSKUTaken
		}
		if err != nil {
			return fmt.Errorf("create product: %w", err)
		}
		return s.emit(ctx, tx, p, events.ProductCreated, out.ID, events.Product{SKU: out.Sku})
	})
	return out, err
}

// Get returns a product.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*ent.Product, error) {
	pr, err := s.store.Reader.Product.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get product: %w", err)
	}
	return pr, nil
}

// Filter narrows a list.
type Filter struct {
	// Q is a substring of the SKU or the name.
	Q        *string
	Category *string
	Active   *bool
}

var list = listing.New(product.FieldID, func(pr *ent.Product) uuid.UUID { return pr.ID }, "-createdAt",
	map[string]listing.Key[*ent.Product]{
		"createdAt": {Column: product.FieldCreatedAt, Value: func(pr *ent.Product) *time.Time { return &pr.CreatedAt }},
	})

// List returns a page of products.
func (s *Service) List(ctx context.Context, sort string, f Filter, cursor *listing.Cursor, limit int) ([]*ent.Product, *listing.Cursor, error) {
	pg, err := list.Page(sort, cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.Product.Query().Where(predicate.Product(pg.Apply))
	if f.Q != nil {
		if v := strings.TrimSpace(*f.Q); v != "" {
			q = q.Where(product.Or(product.SkuNormContains(strings.ToUpper(v)), product.NameContains(v)))
		}
	}
	if f.Category != nil {
		q = q.Where(product.Category(*f.Category))
	}
	if f.Active != nil {
		q = q.Where(product.Active(*f.Active))
	}
	rows, err := q.Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list products: %w", err)
	}
	return rows, pg.Next(rows), nil
}

// Update applies a patch; ifMatch must name the current version.
func (s *Service) Update(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in Patch) (*ent.Product, error) {
	var sku, norm, n string
	var err error
	if in.SKU != nil {
		if sku, norm, err = normSKU(*in.SKU); err != nil {
			return nil, err
		}
	}
	if in.Name != nil {
		if n, err = name(*in.Name); err != nil {
			return nil, err
		}
	}
	if err := checkAmounts(in.ListPrice, in.InternalCost.Value); err != nil {
		return nil, err
	}
	var out *ent.Product
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		cur, err := store.ForUpdate(s.store, tx.Product.Query().Where(product.ID(id))).Only(ctx)
		if ent.IsNotFound(err) {
			return errNotFound
		}
		if err != nil {
			return fmt.Errorf("load product: %w", err)
		}
		if err := etag.Check(ifMatch, cur.Version); err != nil {
			return err
		}
		m := tx.Product.UpdateOne(cur)
		if in.SKU != nil && norm != cur.SkuNorm {
			taken, err := tx.Product.Query().Where(product.SkuNorm(norm), product.IDNEQ(id)).Exist(ctx)
			if err != nil {
				return fmt.Errorf("sku taken: %w", err)
			}
			if taken {
				return errSKUTaken
			}
		}
		if in.SKU != nil {
			m.SetSku(sku).SetSkuNorm(norm)
		}
		if in.Name != nil {
			m.SetName(n)
		}
		patch.ApplyTo(in.Category, m.SetCategory, m.ClearCategory)
		patch.ApplyTo(in.Unit, m.SetUnit, m.ClearUnit)
		patch.ApplyTo(in.Specification, m.SetSpecification, m.ClearSpecification)
		if in.ListPrice != nil {
			m.SetListPrice(*in.ListPrice)
		}
		patch.ApplyTo(in.InternalCost, m.SetInternalCost, m.ClearInternalCost)
		if in.Active != nil {
			m.SetActive(*in.Active)
		}
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = cur
			return nil
		}
		out, err = m.AddVersion(1).SetUpdatedAt(s.now()).Save(ctx)
		if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
			return errSKUTaken
		}
		if err != nil {
			return fmt.Errorf("update product: %w", err)
		}
		return s.emit(ctx, tx, p, events.ProductUpdated, id, events.Changed{Fields: fields})
	})
	return out, err
}

func (s *Service) emit(ctx context.Context, tx *ent.Tx, p *auth.Principal, t events.Type, id uuid.UUID, data any) error {
	return events.Emit(ctx, tx, events.Event{Type: t, SubjectKind: events.KindProduct, SubjectID: id,
		Actor: p.EventActor(), OccurredAt: s.now(), Data: data})
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
