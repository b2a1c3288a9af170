// Package products is the product catalogue (产品目录): what quotes and
// orders sell. Supervisors and admins manage it and see each product's
// internal cost (成本价) and margin; everyone else reads it without them
// (the HTTP layer leaves them out of every format by CostVisible).
package products

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

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

// IsSKUTaken reports whether err is createProduct's (or updateProduct's)
// refusal of an SKU another product holds (409 sku_taken).
func IsSKUTaken(err error) bool { return errors.Is(err, errSKUTaken) }

// The longest values the catalogue takes (the contract's maxLength, the
// columns' MaxLen).
const (
	MaxSKU           = 64
	MaxName          = 200
	MaxCategory      = 100
	MaxUnit          = 20
	MaxSpecification = 500
)

// skuPattern is the contract's SKU pattern (ProductCreate.sku), trimmed.
var skuPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)

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
	// Active is true when nil (createProduct; an import may say false).
	Active *bool
}

// Patch changes a product (merge patch: null clears the optional fields).
type Patch struct {
	SKU, Name                     *string
	Category, Unit, Specification patch.Field[string]
	ListPrice                     *money.Money
	InternalCost                  patch.Field[money.Money]
	Active                        *bool
}

// NormSKU is the SKU trimmed, and its unique form (upper case): the rule
// of createProduct and updateProduct (required, at most MaxSKU
// characters, letters, digits, '.', '_', '/', '-'), which the bulk import
// of products applies to each row.
func NormSKU(raw string) (sku, norm string, err error) {
	sku = strings.TrimSpace(raw)
	switch {
	case sku == "":
		return "", "", apperr.Invalidf("body/sku", "required", "sku is required")
	case utf8.RuneCountInString(sku) > MaxSKU:
		return "", "", apperr.Invalidf("body/sku", "maxLength", fmt.Sprintf("sku is longer than %d characters", MaxSKU))
	case !skuPattern.MatchString(sku):
		return "", "", apperr.Invalidf("body/sku", "pattern", "sku takes letters, digits, '.', '_', '/' and '-', and starts with a letter or digit")
	}
	return sku, strings.ToUpper(sku), nil
}

// CheckAmounts checks a list price and an internal cost (either may be
// nil): neither may be negative. Its errors never carry the amounts.
func CheckAmounts(list *money.Money, cost *money.Money) error {
	if list != nil && list.IsNegative() {
		return apperr.Invalidf("body/listPrice", "minimum", "listPrice may not be negative")
	}
	if cost != nil && cost.IsNegative() {
		return apperr.Invalidf("body/internalCost", "minimum", "internalCost may not be negative")
	}
	return nil
}

// ParseAmount reads the listPrice or internalCost (field) of a product
// from text, as the contract's Money does (a decimal string with at most
// two decimals, never rounded) and checks it as CheckAmounts does. Its
// errors name the field and a code, never the value: an internal cost is
// not for everyone's eyes.
func ParseAmount(field, raw string) (money.Money, error) {
	m, err := money.Parse(strings.TrimSpace(raw))
	if err != nil {
		code := "invalid"
		if errors.Is(err, money.ErrPrecision) {
			code = "precision"
		}
		return money.Money{}, apperr.Invalidf("body/"+field, code, field+" must be a decimal amount with at most two decimals, like 1234.50")
	}
	if m.IsNegative() {
		return money.Money{}, apperr.Invalidf("body/"+field, "minimum", field+" may not be negative")
	}
	return m, nil
}

// CheckName is a product's name trimmed: required, at most MaxName
// characters.
func CheckName(raw string) (string, error) {
	n := strings.TrimSpace(raw)
	if n == "" {
		return "", apperr.Invalidf("body/name", "required", "name is required")
	}
	if utf8.RuneCountInString(n) > MaxName {
		return "", apperr.Invalidf("body/name", "maxLength", fmt.Sprintf("name is longer than %d characters", MaxName))
	}
	return n, nil
}

// Create adds a product.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in Input) (*ent.Product, error) {
	if _, _, err := check(in); err != nil {
		return nil, err
	}
	var out *ent.Product
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		var err error
		out, err = s.CreateIn(ctx, tx, p, in)
		return err
	})
	return out, err
}

// check applies createProduct's rules to in: its SKU and its unique form.
func check(in Input) (string, string, error) {
	sku, norm, err := NormSKU(in.SKU)
	if err != nil {
		return "", "", err
	}
	if _, err := CheckName(in.Name); err != nil {
		return "", "", err
	}
	if err := CheckAmounts(&in.ListPrice, in.InternalCost); err != nil {
		return "", "", err
	}
	return sku, norm, nil
}

// CreateIn adds a product in tx, with its product.created event, by
// createProduct's rules: the bulk import's rows go through it, each in
// a savepoint of the batch's transaction. An SKU another product holds
// is refused (IsSKUTaken); nothing is written then, but on PostgreSQL a
// unique violation aborts tx, so callers that go on run it in a
// savepoint.
func (s *Service) CreateIn(ctx context.Context, tx *ent.Tx, p *auth.Principal, in Input) (*ent.Product, error) {
	sku, norm, err := check(in)
	if err != nil {
		return nil, err
	}
	n, _ := CheckName(in.Name)
	taken, err := tx.Product.Query().Where(product.SkuNorm(norm)).Exist(ctx)
	if err != nil {
		return nil, fmt.Errorf("sku taken: %w", err)
	}
	if taken {
		return nil, errSKUTaken
	}
	now := s.now()
	c := tx.Product.Create().SetSku(sku).SetSkuNorm(norm).SetName(n).SetNillableCategory(in.Category).
		SetNillableUnit(in.Unit).SetNillableSpecification(in.Specification).SetListPrice(in.ListPrice).
		SetNillableActive(in.Active).SetCreatedAt(now).SetUpdatedAt(now)
	if in.InternalCost != nil {
		c.SetInternalCost(*in.InternalCost)
	}
	out, err := c.Save(ctx)
	if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
		return nil, errSKUTaken
	}
	if err != nil {
		return nil, fmt.Errorf("create product: %w", err)
	}
	if err := s.emit(ctx, tx, p, events.ProductCreated, out.ID, events.Product{SKU: out.Sku}); err != nil {
		return nil, err
	}
	return out, nil
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
		if sku, norm, err = NormSKU(*in.SKU); err != nil {
			return nil, err
		}
	}
	if in.Name != nil {
		if n, err = CheckName(*in.Name); err != nil {
			return nil, err
		}
	}
	if err := CheckAmounts(in.ListPrice, in.InternalCost.Value); err != nil {
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
