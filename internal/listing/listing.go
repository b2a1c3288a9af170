// Package listing is the one keyset list builder every list uses. An
// entity declares its sort keys once (a Spec: API name → column, nullable
// or not, plus the id tiebreak); a Page built from a request's sort and
// cursor applies the keyset condition and the order to an ent query as a
// predicate, and the last row of a full page gives the next cursor.
// Cursors travel signed and bound to their operation through page.Codec.
//
// Every list keeps the behaviour it had before the builder: a cursor is
// returned whenever a page is full (so a list whose length is a multiple
// of the page size ends with an empty page), and rows with no value for a
// nullable key come last, by id, in both directions.
package listing

import (
	"context"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/page"
)

// Cursor is the keyset position after the last row of a page. Sort is the
// sort parameter the page was listed with ("" for the default); At the
// row's sort value; Null says the row had none (the page ended in the null
// tail of a nullable key). The JSON names are those the hand-written
// cursors used, so cursors issued before this package still decode.
type Cursor struct {
	Sort string    `json:"s,omitempty"`
	At   time.Time `json:"t,omitzero"`
	ID   uuid.UUID `json:"i"`
	Null bool      `json:"n,omitempty"`
}

// Key is a sort key of an entity. Column is ent's generated column
// constant; Value reads the row's value (nil when the column is NULL,
// which only a Nullable key may be).
type Key[T any] struct {
	Column   string
	Nullable bool
	Value    func(T) *time.Time
}

// Spec declares how an entity's list is ordered.
type Spec[T any] struct {
	idColumn string
	id       func(T) uuid.UUID
	keys     map[string]Key[T]
	def      string // the sort used when the request names none
}

// New declares a list sorted by one of keys (by API name), then by id;
// def is the default sort ("-createdAt": descending).
func New[T any](idColumn string, id func(T) uuid.UUID, def string, keys map[string]Key[T]) *Spec[T] {
	if _, ok := keys[strings.TrimPrefix(def, "-")]; !ok {
		panic("listing: default sort " + def + " is not a declared key")
	}
	return &Spec[T]{idColumn: idColumn, id: id, keys: keys, def: def}
}

// ByID declares a list ordered by id alone (UUIDv7 ids: creation order),
// ascending or, with desc, newest first. It accepts no sort parameter.
func ByID[T any](idColumn string, id func(T) uuid.UUID, desc bool) *Spec[T] {
	def := ""
	if desc {
		def = "-" // the id "key" has no name: "-" alone means descending
	}
	return &Spec[T]{idColumn: idColumn, id: id, def: def}
}

// Page is one request's position in a list: its order, where it starts and
// its size.
type Page[T any] struct {
	spec   *Spec[T]
	sort   string // as the request gave it ("" for the default)
	key    Key[T] // zero for a list by id alone
	desc   bool
	cursor *Cursor
	Limit  int
}

// errOtherSort is the answer to a cursor of another sort order of the
// same list (the signature binds it to the operation only).
func errOtherSort() error {
	return apperr.Invalidf("query.cursor", "invalid_cursor", "the cursor belongs to another sort order")
}

// Page checks sort and cursor against the spec. An unknown sort key is
// Invalid (query.sort); a cursor of another sort order is Invalid
// (query.cursor, invalid_cursor).
func (s *Spec[T]) Page(sort string, c *Cursor, limit int) (*Page[T], error) {
	p := &Page[T]{spec: s, sort: sort, cursor: c, Limit: limit}
	eff := sort
	if eff == "" {
		eff = s.def
	}
	p.desc = strings.HasPrefix(eff, "-")
	name := strings.TrimPrefix(eff, "-")
	if s.keys == nil {
		if sort != "" {
			return nil, apperr.Invalidf("query.sort", "enum", "unknown sort key")
		}
	} else {
		k, ok := s.keys[name]
		if !ok {
			return nil, apperr.Invalidf("query.sort", "enum", "unknown sort key")
		}
		p.key = k
	}
	if c != nil && (c.Sort != sort || (c.Null && !p.key.Nullable)) {
		return nil, errOtherSort()
	}
	return p, nil
}

// Decode reads an optional cursor parameter; nil when there is none. A
// cursor this server did not issue for the operation on ctx is Invalid
// with code invalid_cursor.
func Decode(ctx context.Context, codec page.Codec, cursor *string) (*Cursor, error) {
	if cursor == nil || *cursor == "" {
		return nil, nil
	}
	var c Cursor
	if err := codec.Decode(ctx, *cursor, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// Encode signs c for the operation on ctx; nil stays nil (no next page).
func Encode(ctx context.Context, codec page.Codec, c *Cursor) *string {
	if c == nil {
		return nil
	}
	v := codec.Encode(ctx, c)
	return &v
}

// Apply adds the keyset condition and the order to a query; pass it as
// the entity's predicate: q.Where(predicate.Lead(p.Apply)). The order is
// spelt out as (col IS NULL), col, id for a nullable key because SQLite
// and PostgreSQL place NULLs at opposite ends by default.
func (p *Page[T]) Apply(s *sql.Selector) {
	op := ">"
	order := sql.Asc
	if p.desc {
		op, order = "<", sql.Desc
	}
	idCol := s.C(p.spec.idColumn)
	if p.key.Column == "" {
		if c := p.cursor; c != nil {
			s.Where(compare(idCol, op, c.ID))
		}
		s.OrderBy(order(idCol))
		return
	}
	col := s.C(p.key.Column)
	if c := p.cursor; c != nil {
		switch {
		case !p.key.Nullable:
			s.Where(RowAfter(col, idCol, op, c.At.UTC(), c.ID))
		case c.Null:
			// Inside the null tail: only null rows remain, by id.
			s.Where(sql.And(sql.IsNull(col), compare(idCol, op, c.ID)))
		default:
			// Among the valued rows: the rest of them, then the whole tail.
			s.Where(sql.Or(RowAfter(col, idCol, op, c.At.UTC(), c.ID), sql.IsNull(col)))
		}
	}
	if p.key.Nullable {
		// Ascending on a boolean puts false (has a value) first.
		s.OrderExprFunc(func(b *sql.Builder) {
			b.WriteString("(").WriteString(col).WriteString(" IS NULL)")
		})
	}
	s.OrderBy(order(col), order(idCol))
}

// Next is the cursor after rows when they fill the page, nil otherwise.
func (p *Page[T]) Next(rows []T) *Cursor {
	if p.Limit <= 0 || len(rows) < p.Limit {
		return nil
	}
	last := rows[len(rows)-1]
	c := &Cursor{Sort: p.sort, ID: p.spec.id(last)}
	if p.key.Value != nil {
		if at := p.key.Value(last); at != nil {
			c.At = at.UTC()
		} else {
			c.Null = true
		}
	}
	return c
}

// compare is col op value for one column.
func compare(col, op string, v any) *sql.Predicate {
	return sql.P(func(b *sql.Builder) {
		b.WriteString(col).WriteString(" ").WriteString(op).WriteString(" ")
		b.Arg(v)
	})
}

// RowAfter is the keyset condition (col, id) op (at, id) written as a row
// value comparison, which both SQLite and PostgreSQL answer with one range
// scan of a (col, id) index; the equivalent OR of two comparisons makes
// SQLite scan from the start of the index, so page 1,000 would cost a
// thousand times page 1.
func RowAfter(col, idCol, op string, at time.Time, id uuid.UUID) *sql.Predicate {
	return sql.P(func(b *sql.Builder) {
		b.WriteString("(").WriteString(col).WriteString(", ").WriteString(idCol).WriteString(") ").WriteString(op).WriteString(" (")
		b.Arg(at)
		b.WriteString(", ")
		b.Arg(id)
		b.WriteString(")")
	})
}

// Filter is one condition a list request may ask for, declared with the
// entity's column constant; a filter the request did not ask for is nil.
type Filter func(*sql.Selector) *sql.Predicate

// Eq is column = *v, or nil when v is nil (the request did not filter).
func Eq[V any](column string, v *V) Filter {
	if v == nil {
		return nil
	}
	return func(s *sql.Selector) *sql.Predicate { return sql.EQ(s.C(column), *v) }
}

// Range is from <= column < to for the bounds given (in UTC, as times
// are stored), or nil when neither is.
func Range(column string, from, to *time.Time) Filter {
	if from == nil && to == nil {
		return nil
	}
	return func(s *sql.Selector) *sql.Predicate {
		var ps []*sql.Predicate
		if from != nil {
			ps = append(ps, sql.GTE(s.C(column), from.UTC()))
		}
		if to != nil {
			ps = append(ps, sql.LT(s.C(column), to.UTC()))
		}
		return sql.And(ps...)
	}
}

// Where is the conjunction of the filters asked for, as a predicate to
// pass to the entity's query: q.Where(predicate.User(listing.Where(…))).
func Where(filters ...Filter) func(*sql.Selector) {
	return func(s *sql.Selector) {
		var ps []*sql.Predicate
		for _, f := range filters {
			if f != nil {
				ps = append(ps, f(s))
			}
		}
		if len(ps) > 0 {
			s.Where(sql.And(ps...))
		}
	}
}
