// Package quotes is quotes (报价单): priced offers to a customer, in
// revisions, behind the cost gate (先核算成本再报价).
//
// A quote is a draft until submitted. Submitting prices it again with the
// products' current costs and asks the approval flow (internal/approvals)
// whether it needs approval: when a product line has no cost or is below
// its category's minimum margin (the cost gate), or when a conditional
// flow rule holds (a deep discount). A quote that needs none is approved
// at once. Only an approved quote is sent (a draft that needs no approval
// is sent straight away); sending an unapproved one answers 409
// quote_needs_approval with the blocking lines. The customer's answer is
// recorded with accept or decline; revising a sent or declined quote makes
// the next revision, a draft, and leaves the old one readable.
package quotes

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/opportunity"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/product"
	entquote "github.com/shoalcrm/shoal/ent/quote"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/opportunities"
	"github.com/shoalcrm/shoal/internal/store"
)

// Statuses.
const (
	StatusDraft           = "draft"
	StatusPendingApproval = "pending_approval"
	StatusApproved        = "approved"
	StatusSent            = "sent"
	StatusAccepted        = "accepted"
	StatusDeclined        = "declined"
	StatusSuperseded      = "superseded"
)

// RuleCostGate names the cost gate as the rule that required an approval.
const RuleCostGate = "cost_gate"

// Limits.
const (
	MaxLines = 200
	// DefaultValidDays is how long a quote is valid when its creator
	// names no date.
	DefaultValidDays = 30
)

var (
	errNotFound            = apperr.NotFoundf("quote")
	errOpportunityNotFound = apperr.NotFoundf("opportunity")
	errExpired             = apperr.New(apperr.Conflict, "quote_expired", "the quote's validity date has passed")
)

// errStatus is 409 invalid_quote_status: the operation does not apply to
// a quote in its status, which the problem names.
func errStatus(status entquote.Status, op string) error {
	e := apperr.New(apperr.Conflict, "invalid_quote_status", fmt.Sprintf("a %s quote cannot be %s", status, op))
	e.Extra = map[string]any{"quoteStatus": string(status)}
	return e
}

// errNeedsApproval is 409 quote_needs_approval, naming the blocking lines
// and the flow rule that applies (costs never appear).
func errNeedsApproval(blockers []Blocker, rule string) error {
	e := apperr.New(apperr.Conflict, "quote_needs_approval", "the quote must be approved before it is sent: submit it")
	if blockers == nil {
		blockers = []Blocker{}
	}
	e.Extra = map[string]any{"blockingLines": blockers}
	if rule != "" && rule != RuleCostGate {
		e.Extra["rule"] = rule
	}
	return e
}

// Service runs quotes.
type Service struct {
	store     *store.Store
	opps      *opportunities.Service
	approvals *approvals.Service
	clock     clock.Clock
}

// NewService returns the service and registers quotes as a subject of
// approvals, with its built-in flow: one step, a supervisor of the owner.
func NewService(st *store.Store, opps *opportunities.Service, ap *approvals.Service, clk clock.Clock) *Service {
	s := &Service{store: st, opps: opps, approvals: ap, clock: clk}
	ap.Register(approvals.SubjectQuote, []schema.FlowRule{{Name: "default",
		Steps: []schema.ApprovalStep{{Approver: approvals.ApproverSupervisor}}}}, s.decide)
	return s
}

// LineInput is a line as a client gives it: a product (whose name, unit
// and list price are defaults) or a free-text line (name and unitPrice
// required).
type LineInput struct {
	ProductID       *uuid.UUID
	Name            *string
	Specification   *string
	Unit            *string
	Quantity        string
	UnitPrice       *money.Money
	DiscountPercent *string
	TaxRate         *string
}

// Input is a new quote: on an opportunity (whose customer it takes) or
// directly on a customer.
type Input struct {
	Title         string
	CustomerID    *uuid.UUID
	OpportunityID *uuid.UUID
	ContactID     *uuid.UUID
	ValidUntil    *string
	Currency      *string
	Notes, Terms  *string
	Lines         []LineInput
}

// Create makes a draft quote.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in Input) (*ent.Quote, error) {
	title := strings.TrimSpace(in.Title)
	if title == "" {
		return nil, apperr.Invalidf("body/title", "required", "title is required")
	}
	if in.CustomerID == nil && in.OpportunityID == nil {
		return nil, apperr.Invalidf("body/customerId", "required", "a quote is on a customer or an opportunity")
	}
	if err := opportunities.CheckDate("body/validUntil", in.ValidUntil); err != nil {
		return nil, err
	}
	var out *ent.Quote
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		customerID, ownerID, oppID, err := s.subject(ctx, tx, p, in.CustomerID, in.OpportunityID)
		if err != nil {
			return err
		}
		if in.ContactID != nil {
			if err := opportunities.CheckContact(ctx, tx, customerID, *in.ContactID); err != nil {
				return err
			}
		}
		lines, err := s.lines(ctx, tx, in.Lines)
		if err != nil {
			return err
		}
		t, err := Price(lines)
		if err != nil {
			return err
		}
		now := s.now()
		valid := now.AddDate(0, 0, DefaultValidDays).Format(time.DateOnly)
		if in.ValidUntil != nil {
			valid = *in.ValidUntil
		}
		number, err := newNumber(now)
		if err != nil {
			return err
		}
		id := schema.NewID()
		c := tx.Quote.Create().SetID(id).SetNumber(number).SetRootID(id).SetCustomerID(customerID).
			SetNillableOpportunityID(oppID).SetNillableContactID(in.ContactID).SetOwnerID(ownerID).SetTitle(title).
			SetValidUntil(valid).SetLines(lines).SetSubtotal(t.Subtotal).SetDiscountTotal(t.Discount).
			SetTaxTotal(t.Tax).SetTotal(t.Total).SetCreatedBy(p.CreatedByUser()).SetCreatedAt(now).SetUpdatedAt(now)
		if in.Currency != nil {
			c.SetCurrency(*in.Currency)
		}
		if in.Notes != nil {
			c.SetNotes(*in.Notes)
		}
		if in.Terms != nil {
			c.SetTerms(*in.Terms)
		}
		if out, err = c.Save(ctx); err != nil {
			return fmt.Errorf("create quote: %w", err)
		}
		return s.emit(ctx, tx, p, events.QuoteCreated, out, nil)
	})
	return out, err
}

// newNumber is a quote number: QT, the date, and 40 random bits in 8
// base-32 characters (QT20261207-K3M9X2QA). Numbers are not sequential:
// replicas make them without coordinating. 40 bits keep a clash within
// one day unlikely for any sales team (at 10,000 quotes a day, about one
// in 20,000 days); the unique index on (number, revision) refuses one.
func newNumber(now time.Time) (string, error) {
	var b [5]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("quote number: %w", err)
	}
	return "QT" + now.Format("20060102") + "-" + numberEncoding.EncodeToString(b[:]), nil
}

// numberEncoding is Crockford's base 32: no I, L, O or U to misread.
var numberEncoding = base32.NewEncoding("0123456789ABCDEFGHJKMNPQRSTVWXYZ").WithPadding(base32.NoPadding)

// subject resolves what a new quote is on: the opportunity's customer and
// owner, or the customer's owner (p himself for a customer in a pool).
func (s *Service) subject(ctx context.Context, tx *ent.Tx, p *auth.Principal, customerID, oppID *uuid.UUID) (uuid.UUID, uuid.UUID, *uuid.UUID, error) {
	if oppID != nil {
		vis, err := s.opps.OnCustomer(ctx, p)
		if err != nil {
			return uuid.Nil, uuid.Nil, nil, err
		}
		o, err := tx.Opportunity.Query().Where(opportunity.ID(*oppID), predicate.Opportunity(vis)).Only(ctx)
		if ent.IsNotFound(err) {
			return uuid.Nil, uuid.Nil, nil, errOpportunityNotFound
		}
		if err != nil {
			return uuid.Nil, uuid.Nil, nil, fmt.Errorf("opportunity: %w", err)
		}
		if customerID != nil && *customerID != o.CustomerID {
			return uuid.Nil, uuid.Nil, nil, apperr.Invalidf("body/customerId", "invalid", "the opportunity is on another customer")
		}
		return o.CustomerID, o.OwnerID, &o.ID, nil
	}
	cu, err := s.opps.Customer(ctx, tx, p, *customerID)
	if err != nil {
		return uuid.Nil, uuid.Nil, nil, err
	}
	owner := p.CreatedByUser()
	if cu.OwnerID != nil {
		owner = *cu.OwnerID
	}
	return cu.ID, owner, nil, nil
}

// lines turns a client's lines into stored ones: product lines take the
// product's SKU, name, specification, category, unit and list price (the
// client's name, unit and price win) and its current cost.
func (s *Service) lines(ctx context.Context, tx *ent.Tx, in []LineInput) ([]schema.QuoteLine, error) {
	if len(in) == 0 || len(in) > MaxLines {
		return nil, apperr.Invalidf("body/lines", "invalid", fmt.Sprintf("a quote has 1 to %d lines", MaxLines))
	}
	var ids []uuid.UUID
	for _, l := range in {
		if l.ProductID != nil {
			ids = append(ids, *l.ProductID)
		}
	}
	products := map[uuid.UUID]*ent.Product{}
	if len(ids) > 0 {
		rows, err := tx.Product.Query().Where(product.IDIn(ids...)).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("products: %w", err)
		}
		for _, pr := range rows {
			products[pr.ID] = pr
		}
	}
	out := make([]schema.QuoteLine, len(in))
	for i, l := range in {
		at := fmt.Sprintf("body/lines/%d", i)
		q, err := decimal.NewFromString(l.Quantity)
		if err != nil || !q.IsPositive() {
			return nil, apperr.Invalidf(at+"/quantity", "invalid", "a quantity is a positive decimal")
		}
		line := schema.QuoteLine{ID: schema.NewID(), ProductID: l.ProductID, Quantity: q.String(),
			DiscountPercent: "0", TaxRate: "0"}
		if l.ProductID != nil {
			pr, ok := products[*l.ProductID]
			if !ok {
				return nil, apperr.Invalidf(at+"/productId", "unknown_product", "no product has this id")
			}
			if !pr.Active {
				return nil, apperr.Invalidf(at+"/productId", "product_inactive", "the product is not active")
			}
			line.SKU, line.Name, line.UnitPrice = pr.Sku, pr.Name, pr.ListPrice.Fen()
			line.Specification, line.Category, line.Unit = deref(pr.Specification), deref(pr.Category), deref(pr.Unit)
			setCost(&line, pr)
		} else if l.Name == nil || l.UnitPrice == nil {
			return nil, apperr.Invalidf(at, "required", "a line without a product names its name and unitPrice")
		}
		if l.Name != nil {
			if line.Name = strings.TrimSpace(*l.Name); line.Name == "" {
				return nil, apperr.Invalidf(at+"/name", "required", "name may not be empty")
			}
		}
		if l.Specification != nil {
			line.Specification = *l.Specification
		}
		if l.Unit != nil {
			line.Unit = *l.Unit
		}
		if l.UnitPrice != nil {
			if l.UnitPrice.IsNegative() {
				return nil, apperr.Invalidf(at+"/unitPrice", "minimum", "a price may not be negative")
			}
			line.UnitPrice = l.UnitPrice.Fen()
		}
		for _, pc := range []struct {
			name string
			in   *string
			dst  *string
		}{{"discountPercent", l.DiscountPercent, &line.DiscountPercent}, {"taxRate", l.TaxRate, &line.TaxRate}} {
			if pc.in == nil {
				continue
			}
			v, err := decimal.NewFromString(*pc.in)
			if err != nil || v.IsNegative() || v.GreaterThan(hundred) {
				return nil, apperr.Invalidf(at+"/"+pc.name, "invalid", "a percentage is a decimal from 0 to 100")
			}
			*pc.dst = v.String()
		}
		out[i] = line
	}
	return out, nil
}

func setCost(l *schema.QuoteLine, pr *ent.Product) {
	if pr.InternalCost == nil {
		l.UnitCost = nil
		return
	}
	c := pr.InternalCost.Fen()
	l.UnitCost = &c
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// refreshCosts copies the products' current costs into a quote's lines,
// for the gate at submit and send.
func refreshCosts(ctx context.Context, tx *ent.Tx, lines []schema.QuoteLine) ([]schema.QuoteLine, error) {
	out := append([]schema.QuoteLine(nil), lines...)
	var ids []uuid.UUID
	for _, l := range out {
		if l.ProductID != nil {
			ids = append(ids, *l.ProductID)
		}
	}
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := tx.Product.Query().Where(product.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	byID := map[uuid.UUID]*ent.Product{}
	for _, pr := range rows {
		byID[pr.ID] = pr
	}
	for i := range out {
		if out[i].ProductID == nil {
			continue
		}
		if pr, ok := byID[*out[i].ProductID]; ok {
			setCost(&out[i], pr)
			out[i].Category = deref(pr.Category)
		}
	}
	return out, nil
}

// visible is "quotes p sees": those on the customers he sees and those he
// owns (opportunities.OnCustomer).
func (s *Service) visible(ctx context.Context, p *auth.Principal) (predicate.Quote, error) {
	f, err := s.opps.OnCustomer(ctx, p)
	return predicate.Quote(f), err
}

// Get returns a quote p sees.
func (s *Service) Get(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ent.Quote, error) {
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, err
	}
	q, err := s.store.Reader.Quote.Query().Where(entquote.ID(id), vis).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get quote: %w", err)
	}
	return q, nil
}

// lock reads a quote p sees and may change, locked.
func (s *Service) lock(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID) (*ent.Quote, error) {
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, err
	}
	q, err := store.ForUpdate(s.store, tx.Quote.Query().Where(entquote.ID(id), vis)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load quote: %w", err)
	}
	if err := opportunities.MayEdit(ctx, tx, p, q.OwnerID); err != nil {
		return nil, err
	}
	return q, nil
}

// Patch changes a draft (merge patch); Lines replaces every line.
type Patch struct {
	Title        *string
	ContactID    *uuid.UUID
	ClearContact bool
	ValidUntil   *string
	Currency     *string
	Notes, Terms *string
	Lines        []LineInput
}

// Update changes a draft; ifMatch must name the current version.
func (s *Service) Update(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in Patch) (*ent.Quote, error) {
	if in.Title != nil && strings.TrimSpace(*in.Title) == "" {
		return nil, apperr.Invalidf("body/title", "required", "title may not be empty")
	}
	if err := opportunities.CheckDate("body/validUntil", in.ValidUntil); err != nil {
		return nil, err
	}
	var out *ent.Quote
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		q, err := s.lock(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, q.Version); err != nil {
			return err
		}
		if q.Status != entquote.StatusDraft {
			return errStatus(q.Status, "changed")
		}
		m := tx.Quote.UpdateOne(q)
		if in.Title != nil {
			m.SetTitle(strings.TrimSpace(*in.Title))
		}
		if in.ClearContact {
			m.ClearContactID()
		} else if in.ContactID != nil {
			if err := opportunities.CheckContact(ctx, tx, q.CustomerID, *in.ContactID); err != nil {
				return err
			}
			m.SetContactID(*in.ContactID)
		}
		if in.ValidUntil != nil {
			m.SetValidUntil(*in.ValidUntil)
		}
		if in.Currency != nil {
			m.SetCurrency(*in.Currency)
		}
		if in.Notes != nil {
			m.SetNotes(*in.Notes)
		}
		if in.Terms != nil {
			m.SetTerms(*in.Terms)
		}
		if in.Lines != nil {
			lines, err := s.lines(ctx, tx, in.Lines)
			if err != nil {
				return err
			}
			t, err := Price(lines)
			if err != nil {
				return err
			}
			m.SetLines(lines).SetSubtotal(t.Subtotal).SetDiscountTotal(t.Discount).SetTaxTotal(t.Tax).SetTotal(t.Total)
		}
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = q
			return nil
		}
		if out, err = m.AddVersion(1).SetUpdatedAt(s.now()).Save(ctx); err != nil {
			return fmt.Errorf("update quote: %w", err)
		}
		return events.Emit(ctx, tx, events.Event{Type: events.QuoteUpdated, SubjectKind: events.KindQuote, SubjectID: id,
			Actor: p.EventActor(), OccurredAt: s.now(), Data: events.QuoteChanged{CustomerID: q.CustomerID, Fields: fields}})
	})
	return out, err
}

// Filter narrows a list.
type Filter struct {
	Owner         *uuid.UUID
	CustomerID    *uuid.UUID
	OpportunityID *uuid.UUID
	Status        *string
	Number        *string
	Q             *string
}

var list = listing.New(entquote.FieldID, func(q *ent.Quote) uuid.UUID { return q.ID }, "-createdAt",
	map[string]listing.Key[*ent.Quote]{
		"createdAt": {Column: entquote.FieldCreatedAt, Value: func(q *ent.Quote) *time.Time { return &q.CreatedAt }},
	})

// List returns a page of the quotes p sees, newest first.
func (s *Service) List(ctx context.Context, p *auth.Principal, f Filter, cursor *listing.Cursor, limit int) ([]*ent.Quote, *listing.Cursor, error) {
	pg, err := list.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.Quote.Query().Where(vis, predicate.Quote(pg.Apply), predicate.Quote(listing.Where(
		listing.Eq(entquote.FieldOwnerID, f.Owner), listing.Eq(entquote.FieldCustomerID, f.CustomerID),
		listing.Eq(entquote.FieldOpportunityID, f.OpportunityID), listing.Eq(entquote.FieldStatus, f.Status),
		listing.Eq(entquote.FieldNumber, f.Number))))
	if f.Q != nil {
		if v := strings.TrimSpace(*f.Q); v != "" {
			q = q.Where(predicate.Quote(func(sel *entsql.Selector) {
				sel.Where(entsql.Or(entsql.Contains(sel.C(entquote.FieldTitle), v), entsql.HasPrefix(sel.C(entquote.FieldNumber), v)))
			}))
		}
	}
	rows, err := q.Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list quotes: %w", err)
	}
	return rows, pg.Next(rows), nil
}

func (s *Service) emit(ctx context.Context, tx *ent.Tx, p *auth.Principal, t events.Type, q *ent.Quote, prev *uuid.UUID) error {
	return events.Emit(ctx, tx, events.Event{Type: t, SubjectKind: events.KindQuote, SubjectID: q.ID,
		Actor: p.EventActor(), OccurredAt: s.now(), Data: events.Quote{CustomerID: q.CustomerID, OpportunityID: q.OpportunityID,
			Number: q.Number, Revision: q.Revision, Status: string(q.Status), OwnerID: q.OwnerID, ApprovalID: q.ApprovalID,
			PreviousID: prev}})
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
