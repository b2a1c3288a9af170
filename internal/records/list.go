package records

import (
	"context"
	"time"

	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/sqljson"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/search"
)

// Filter narrows a list of leads or customers. Pointers are optional.
type Filter struct {
	Owner        *string // "me", "none" or a user id
	PoolID       *uuid.UUID
	Status       *string
	DealStatus   *bool
	Grade        *string
	Region       *string
	Industry     *string
	Source       *string
	Tag          *string
	CreatedFrom  *time.Time
	CreatedTo    *time.Time
	UpdatedFrom  *time.Time
	UpdatedTo    *time.Time
	Q            *string
	Sort         string // createdAt, -createdAt, … (default -createdAt)
	IncludeTotal bool
	Cursor       *Cursor
	Limit        int
}

// Cursor is the keyset position after the last row of a page (see
// listing.Cursor): Null says the row had no value for a nullable sort key
// (ownedAt, lastFollowUpAt), so the page ended in the null tail.
type Cursor = listing.Cursor

// leadList and customerList declare the sort keys of leads and customers.
// A nullable key (ownedAt, lastFollowUpAt) lists every record: those that
// have the value first, ordered by it, then those without, by id, in both
// directions.
var (
	leadList = listing.New(lead.FieldID, func(l *ent.Lead) uuid.UUID { return l.ID }, "-createdAt",
		map[string]listing.Key[*ent.Lead]{
			"createdAt":      {Column: lead.FieldCreatedAt, Value: func(l *ent.Lead) *time.Time { return &l.CreatedAt }},
			"updatedAt":      {Column: lead.FieldUpdatedAt, Value: func(l *ent.Lead) *time.Time { return &l.UpdatedAt }},
			"ownedAt":        {Column: lead.FieldOwnedAt, Nullable: true, Value: func(l *ent.Lead) *time.Time { return l.OwnedAt }},
			"lastFollowUpAt": {Column: lead.FieldLastFollowUpAt, Nullable: true, Value: func(l *ent.Lead) *time.Time { return l.LastFollowUpAt }},
		})
	customerList = listing.New(customer.FieldID, func(c *ent.Customer) uuid.UUID { return c.ID }, "-createdAt",
		map[string]listing.Key[*ent.Customer]{
			"createdAt":      {Column: customer.FieldCreatedAt, Value: func(c *ent.Customer) *time.Time { return &c.CreatedAt }},
			"updatedAt":      {Column: customer.FieldUpdatedAt, Value: func(c *ent.Customer) *time.Time { return &c.UpdatedAt }},
			"ownedAt":        {Column: customer.FieldOwnedAt, Nullable: true, Value: func(c *ent.Customer) *time.Time { return c.OwnedAt }},
			"lastFollowUpAt": {Column: customer.FieldLastFollowUpAt, Nullable: true, Value: func(c *ent.Customer) *time.Time { return c.LastFollowUpAt }},
		})
)

// predicate applies the filter (not the cursor or order) to a table with
// the common record columns; leads and customers differ in what q looks
// at. A condition on a maskable field never matches rows on which a shows
// that field masked.
//
// plan is how q's substring search uses the index (nil: no search).
func (f Filter) predicate(me uuid.UUID, isLead bool, a access, plan *search.Plan) (func(*sql.Selector), error) {
	var owner *uuid.UUID
	ownerNone := false
	if f.Owner != nil {
		switch *f.Owner {
		case "me":
			owner = &me
		case "none":
			ownerNone = true
		default:
			id, err := uuid.Parse(*f.Owner)
			if err != nil {
				return nil, apperr.Invalidf("query.ownerId", "invalid", "ownerId must be me, none or a user id")
			}
			owner = &id
		}
	}
	var qPred func(*sql.Selector) *sql.Predicate
	if f.Q != nil {
		q := search.Parse(*f.Q)
		switch {
		case q.Indexed() && plan != nil:
			qPred = func(s *sql.Selector) *sql.Predicate { return searchPredicate(s, a, isLead, q, *plan) }
		case q.Text != "":
			// One character: too short for a gram, so it stays the
			// prefix search it was, on the indexed name columns.
			v := q.Text
			qPred = func(s *sql.Selector) *sql.Predicate {
				name := a.unmasked(s, "name", sql.HasPrefix(s.C(lead.FieldNameNorm), v))
				if isLead {
					return sql.Or(name, a.unmasked(s, "company", sql.HasPrefix(s.C(lead.FieldCompanyNorm), v)))
				}
				return name
			}
		default:
			return nil, apperr.Invalidf("query.q", "invalid", "q has nothing to search for")
		}
	}
	// Leads and customers share the record columns; their names are
	// taken from lead's constants, customer-only ones from customer's.
	return func(s *sql.Selector) {
		var ps []*sql.Predicate
		if owner != nil {
			ps = append(ps, sql.EQ(s.C(lead.FieldOwnerID), *owner))
		}
		if ownerNone {
			ps = append(ps, sql.IsNull(s.C(lead.FieldOwnerID)))
		}
		eq := func(col string, v *string) {
			if v != nil {
				// Maskable columns are named as their fields.
				ps = append(ps, a.unmasked(s, col, sql.EQ(s.C(col), *v)))
			}
		}
		if f.PoolID != nil {
			ps = append(ps, sql.EQ(s.C(lead.FieldPoolID), *f.PoolID))
		}
		eq(lead.FieldStatus, f.Status)
		eq(customer.FieldGrade, f.Grade)
		eq(lead.FieldRegion, f.Region)
		eq(lead.FieldIndustry, f.Industry)
		eq(lead.FieldSource, f.Source)
		if f.DealStatus != nil {
			ps = append(ps, sql.EQ(s.C(customer.FieldDealStatus), *f.DealStatus))
		}
		if f.Tag != nil {
			ps = append(ps, a.unmasked(s, "tags", sqljson.ValueContains(s.C(lead.FieldTags), *f.Tag)))
		}
		rng := func(col string, from, to *time.Time) {
			if from != nil {
				ps = append(ps, sql.GTE(s.C(col), from.UTC()))
			}
			if to != nil {
				ps = append(ps, sql.LT(s.C(col), to.UTC()))
			}
		}
		rng(lead.FieldCreatedAt, f.CreatedFrom, f.CreatedTo)
		rng(lead.FieldUpdatedAt, f.UpdatedFrom, f.UpdatedTo)
		if qPred != nil {
			ps = append(ps, qPred(s))
		}
		if len(ps) > 0 {
			s.Where(sql.And(ps...))
		}
	}, nil
}

// searchPredicate is q's substring search on s (leads or customers): the
// records the index names as candidates, of which those where some field
// the caller sees unmasked holds q. Leads are searched in their name,
// company, email and phone; customers in their name and their contacts'
// names, emails and phones, a contact's field masked as its customer's
// field of the same name is (see masker.contact).
func searchPredicate(s *sql.Selector, a access, isLead bool, q search.Query, plan search.Plan) *sql.Predicate {
	var fields []*sql.Predicate
	own := func(field, col, v string) {
		fields = append(fields, a.unmasked(s, field, search.Contains(s.C(col), v)))
	}
	contacts := func(field, col, v string) {
		t := sql.Table(contact.Table)
		has := sql.Exists(sql.Dialect(s.Dialect()).Select(t.C(contact.FieldID)).From(t).Where(sql.And(
			sql.ColumnsEQ(t.C(contact.FieldCustomerID), s.C(customer.FieldID)),
			search.Contains(t.C(col), v))))
		fields = append(fields, a.unmasked(s, field, has))
	}
	kind := kinds.Customer
	if isLead {
		kind = kinds.Lead
		if q.TextIndexed() {
			own("name", lead.FieldNameNorm, q.Text)
			own("company", lead.FieldCompanyNorm, q.Text)
		}
		if q.EmailIndexed() {
			own("email", lead.FieldEmailNorm, q.Email)
		}
		if q.Phone != "" {
			own("phone", lead.FieldPhoneNorm, q.Phone)
		}
	} else {
		if q.TextIndexed() {
			own("name", customer.FieldNameNorm, q.Text)
			contacts("name", contact.FieldNameNorm, q.Text)
		}
		if q.EmailIndexed() {
			contacts("email", contact.FieldEmailNorm, q.Email)
		}
		if q.Phone != "" {
			contacts("phone", contact.FieldPhoneNorm, q.Phone)
		}
	}
	match := sql.Or(fields...)
	if plan.Walk {
		return match
	}
	return sql.And(plan.Candidates(s, lead.FieldID, kind), match)
}

// planSearch chooses the plan of f's search, if any (search.Choose), by
// reading how many records hold each of its grams (a bounded read of the
// index).
func (s *Service) planSearch(ctx context.Context, kind kinds.Kind, f Filter) (*search.Plan, error) {
	if f.Q == nil {
		return nil, nil
	}
	q := search.Parse(*f.Q)
	if !q.Indexed() {
		return nil, nil
	}
	plan, err := search.Choose(ctx, s.store.Reader, kind, q.GramSets())
	if err != nil {
		return nil, err
	}
	return &plan, nil
}

// listPredicates builds the scope and filter predicates of a list; the
// order and the keyset come from leadList or customerList.
func (s *Service) listPredicates(ctx context.Context, p *auth.Principal, kind string, f Filter) (scope, filter func(*sql.Selector), err error) {
	a, err := s.access(ctx, p, kind)
	if err != nil {
		return
	}
	scope = a.scope
	plan, err := s.planSearch(ctx, kinds.Kind(kind), f)
	if err != nil {
		return
	}
	filter, err = f.predicate(principalUser(p), kinds.Kind(kind) == kinds.Lead, a, plan)
	if err != nil {
		return
	}
	// Merged records are gone from every list (their ids answer
	// merged_into), whatever the filter asks for.
	given := filter
	filter = func(s *sql.Selector) {
		given(s)
		s.Where(sql.NEQ(s.C(lead.FieldStatus), statusMerged))
	}
	return
}
