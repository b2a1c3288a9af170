package records

import (
	"context"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/sqljson"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/kinds"
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

// Cursor is the keyset position after the last row of a page. Null says
// the row had no value for a nullable sort key (ownedAt, lastFollowUpAt):
// the page ended in the null tail, which is listed last and by id alone.
type Cursor struct {
	Sort string    `json:"s"`
	At   time.Time `json:"t"`
	ID   uuid.UUID `json:"i"`
	Null bool      `json:"n,omitempty"`
}

// sortColumns maps sort keys to columns.
var sortColumns = map[string]string{
	"createdAt": "created_at", "updatedAt": "updated_at", "ownedAt": "owned_at", "lastFollowUpAt": "last_follow_up_at",
}

// sortOf parses a sort parameter into column and direction.
func sortOf(sort string) (col string, desc bool, key string) {
	if sort == "" {
		sort = "-createdAt"
	}
	key = strings.TrimPrefix(sort, "-")
	return sortColumns[key], strings.HasPrefix(sort, "-"), key
}

// predicate applies the filter (not the cursor or order) to a table with
// the common record columns; leads and customers differ in what q looks
// at. A condition on a maskable field never matches rows on which a shows
// that field masked.
func (f Filter) predicate(me uuid.UUID, isLead bool, a access) (func(*sql.Selector), error) {
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
		q := strings.TrimSpace(*f.Q)
		switch {
		case strings.Contains(q, "@"):
			v := dedupe.Email(q)
			if isLead {
				qPred = func(s *sql.Selector) *sql.Predicate { return a.unmasked(s, "email", sql.EQ(s.C("email_norm"), v)) }
			} else {
				qPred = func(s *sql.Selector) *sql.Predicate { return sql.False() }
			}
		case looksLikePhone(q):
			v := dedupe.Phone(q)
			if isLead {
				qPred = func(s *sql.Selector) *sql.Predicate { return a.unmasked(s, "phone", sql.EQ(s.C("phone_norm"), v)) }
			} else {
				qPred = func(s *sql.Selector) *sql.Predicate { return sql.False() }
			}
		default:
			v := dedupe.Name(q)
			if v == "" {
				return nil, apperr.Invalidf("query.q", "invalid", "q has nothing to search for")
			}
			qPred = func(s *sql.Selector) *sql.Predicate {
				name := a.unmasked(s, "name", sql.HasPrefix(s.C("name_norm"), v))
				if isLead {
					return sql.Or(name, a.unmasked(s, "company", sql.HasPrefix(s.C("company_norm"), v)))
				}
				return name
			}
		}
	}
	return func(s *sql.Selector) {
		var ps []*sql.Predicate
		if owner != nil {
			ps = append(ps, sql.EQ(s.C("owner_id"), *owner))
		}
		if ownerNone {
			ps = append(ps, sql.IsNull(s.C("owner_id")))
		}
		eq := func(col string, v *string) {
			if v != nil {
				// Maskable columns are named as their fields.
				ps = append(ps, a.unmasked(s, col, sql.EQ(s.C(col), *v)))
			}
		}
		if f.PoolID != nil {
			ps = append(ps, sql.EQ(s.C("pool_id"), *f.PoolID))
		}
		eq("status", f.Status)
		eq("grade", f.Grade)
		eq("region", f.Region)
		eq("industry", f.Industry)
		eq("source", f.Source)
		if f.DealStatus != nil {
			ps = append(ps, sql.EQ(s.C("deal_status"), *f.DealStatus))
		}
		if f.Tag != nil {
			ps = append(ps, a.unmasked(s, "tags", sqljson.ValueContains(s.C("tags"), *f.Tag)))
		}
		rng := func(col string, from, to *time.Time) {
			if from != nil {
				ps = append(ps, sql.GTE(s.C(col), from.UTC()))
			}
			if to != nil {
				ps = append(ps, sql.LT(s.C(col), to.UTC()))
			}
		}
		rng("created_at", f.CreatedFrom, f.CreatedTo)
		rng("updated_at", f.UpdatedFrom, f.UpdatedTo)
		if qPred != nil {
			ps = append(ps, qPred(s))
		}
		if len(ps) > 0 {
			s.Where(sql.And(ps...))
		}
	}, nil
}

// nullableSort names the sort keys whose column may be empty.
var nullableSort = map[string]bool{"ownedAt": true, "lastFollowUpAt": true}

// keyset orders by the sort column and id, and continues after the cursor.
// A nullable key (ownedAt, lastFollowUpAt) lists every record: those that
// have the value first, ordered by it, then those without, by id, in both
// directions. The order is spelt out as (col IS NULL), col, id because
// SQLite and PostgreSQL place NULLs at opposite ends by default.
func (f Filter) keyset() (func(*sql.Selector), error) {
	col, desc, key := sortOf(f.Sort)
	if col == "" {
		return nil, apperr.Invalidf("query.sort", "enum", "unknown sort key")
	}
	if f.Cursor != nil && f.Cursor.Sort != f.Sort && !(f.Cursor.Sort == "" && f.Sort == "") {
		return nil, apperr.Invalidf("query.cursor", "invalid_cursor", "the cursor belongs to another sort order")
	}
	nullable := nullableSort[key]
	if f.Cursor != nil && f.Cursor.Null && !nullable {
		return nil, apperr.Invalidf("query.cursor", "invalid_cursor", "the cursor belongs to another sort order")
	}
	return func(s *sql.Selector) {
		op := ">"
		if desc {
			op = "<"
		}
		if c := f.Cursor; c != nil {
			switch {
			case !nullable:
				s.Where(rowAfter(s.C(col), s.C("id"), op, c.At.UTC(), c.ID))
			case c.Null:
				// Inside the null tail: only null rows remain, by id.
				s.Where(sql.And(sql.IsNull(s.C(col)), idAfter(s.C("id"), op, c.ID)))
			default:
				// Among the valued rows: the rest of them, then the whole tail.
				s.Where(sql.Or(rowAfter(s.C(col), s.C("id"), op, c.At.UTC(), c.ID), sql.IsNull(s.C(col))))
			}
		}
		order := sql.Asc
		if desc {
			order = sql.Desc
		}
		if nullable {
			// Ascending on a boolean puts false (has a value) first.
			s.OrderExprFunc(func(b *sql.Builder) {
				b.WriteString("(").WriteString(s.C(col)).WriteString(" IS NULL)")
			})
		}
		s.OrderBy(order(s.C(col)), order(s.C("id")))
	}, nil
}

// idAfter is id op cursor id, for the null tail of a nullable sort.
func idAfter(idCol, op string, id uuid.UUID) *sql.Predicate {
	return sql.P(func(b *sql.Builder) {
		b.WriteString(idCol).WriteString(" ").WriteString(op).WriteString(" ")
		b.Arg(id)
	})
}

// looksLikePhone reports whether q is mostly digits.
func looksLikePhone(q string) bool {
	digits := 0
	for _, r := range q {
		if r >= '0' && r <= '9' || r >= '０' && r <= '９' {
			digits++
		}
	}
	return digits >= 5 && digits*2 >= len([]rune(q))
}

// next is the cursor after a row with the given sort values.
func (f Filter) next(id uuid.UUID, created, updated time.Time, owned, followed *time.Time) *Cursor {
	_, _, key := sortOf(f.Sort)
	c := &Cursor{Sort: f.Sort, ID: id}
	switch key {
	case "updatedAt":
		c.At = updated
	case "ownedAt":
		if owned != nil {
			c.At = *owned
		} else {
			c.Null = true
		}
	case "lastFollowUpAt":
		if followed != nil {
			c.At = *followed
		} else {
			c.Null = true
		}
	default:
		c.At = created
	}
	return c
}

// listPredicates builds the scope, filter and keyset predicates of a list.
func (s *Service) listPredicates(ctx context.Context, p *auth.Principal, kind string, f Filter) (scope, filter, keyset func(*sql.Selector), err error) {
	a, err := s.access(ctx, p, kind)
	if err != nil {
		return
	}
	scope = a.scope
	if filter, err = f.predicate(principalUser(p), kinds.Kind(kind) == kinds.Lead, a); err != nil {
		return
	}
	keyset, err = f.keyset()
	return
}

// rowAfter is the keyset condition (col, id) op (at, id) written as a row
// value comparison, which both SQLite and PostgreSQL answer with one range
// scan of a (col, id) index; the equivalent OR of two comparisons makes
// SQLite scan from the start of the index, so page 1,000 would cost a
// thousand times page 1.
func rowAfter(col, idCol, op string, at time.Time, id uuid.UUID) *sql.Predicate {
	return sql.P(func(b *sql.Builder) {
		b.WriteString("(").WriteString(col).WriteString(", ").WriteString(idCol).WriteString(") ").WriteString(op).WriteString(" (")
		b.Arg(at)
		b.WriteString(", ")
		b.Arg(id)
		b.WriteString(")")
	})
}
