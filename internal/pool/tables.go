package pool

import (
	"context"
	"fmt"
	"slices"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
	"github.com/shoalcrm/shoal/internal/store"
)

// This file is the only place the engine names a kind's generated ent
// types. Everything else selects and updates records through tables,
// with predicates written once against the shared column names below.

// The columns the engine reads and writes. They are the columns of
// PoolableMixin (and the id and status every record table has), so every
// poolable kind's table has them under the same names: lead.FieldPoolID
// equals customer.FieldPoolID, and so on (TestTablesCoverKinds checks
// every kind's table has each of them).
const (
	colID             = lead.FieldID
	colStatus         = lead.FieldStatus
	colPoolID         = lead.FieldPoolID
	colOwnerID        = lead.FieldOwnerID
	colOwnedAt        = lead.FieldOwnedAt
	colLastFollowUpAt = lead.FieldLastFollowUpAt
	colFrozenUntil    = lead.FieldFrozenUntil
	colReleasedAt     = lead.FieldReleasedAt
	colReclaimAt      = lead.FieldReclaimAt
	colReclaimReason  = lead.FieldReclaimReason
)

// ownershipColumns are the columns a Record holds whatever its kind, and
// save compares against.
var ownershipColumns = []string{colID, colOwnerID, colPoolID, colOwnedAt, colLastFollowUpAt,
	colFrozenUntil, colReleasedAt, colStatus, colReclaimAt, colReclaimReason}

// lockMode is how a selection locks the rows it reads.
type lockMode int

const (
	noLock         lockMode = iota
	lockRows                // store.ForUpdate: FOR UPDATE on PostgreSQL
	lockSkipLocked          // store.ForUpdateSkipLocked: FOR UPDATE SKIP LOCKED on PostgreSQL
)

// selection is what to read of one kind's table.
type selection struct {
	where   func(*sql.Selector) // required: callers build it with where()
	order   []func(*sql.Selector)
	limit   int // 0: no limit
	lock    lockMode
	columns []string // nil: whole rows, kept on the records (Record.row)
}

// conn is where a table's statements run: in the transaction tx, or when
// it is nil through the client c. Not tx.Client(): that builds a client
// of every entity on first use, in every transaction of the claim path.
type conn struct {
	tx *ent.Tx
	c  *ent.Client
}

func inTx(tx *ent.Tx) conn   { return conn{tx: tx} }
func via(c *ent.Client) conn { return conn{c: c} }
func (c conn) leads() *ent.LeadClient {
	if c.tx != nil {
		return c.tx.Lead
	}
	return c.c.Lead
}

func (c conn) customers() *ent.CustomerClient {
	if c.tx != nil {
		return c.tx.Customer
	}
	return c.c.Customer
}

// table is what the engine needs of one poolable kind's table.
type table struct {
	// name and columns are the generated table name and columns (for
	// TestTablesCoverKinds).
	name    string
	columns []string
	// judged are the columns a Record of this kind holds: the ownership
	// columns and what else the pure rules judge by (a customer's deal
	// status and grade).
	judged []string
	// rows runs a selection.
	rows func(ctx context.Context, s *store.Store, c conn, q selection) ([]*Record, error)
	// update sets status (unless "") and what apply writes into the
	// mutation on the rows matching where, and returns how many matched.
	// It is Update, not UpdateOne: UpdateOne reads the row back.
	update func(ctx context.Context, c conn, where func(*sql.Selector), status string, apply func(ownershipMutation)) (int, error)
	// count counts the rows matching where.
	count func(ctx context.Context, c conn, where func(*sql.Selector)) (int, error)
	// sync writes into a whole row as loaded what save just stored.
	sync func(row any, r *Record, clk poolrules.Clock, now time.Time)
	// defaultCap is the global cap of owned records of this kind.
	defaultCap func(st Settings) *int
}

var tables = map[kinds.Kind]table{
	kinds.Lead: {
		name: lead.Table, columns: lead.Columns, judged: ownershipColumns,
		rows: func(ctx context.Context, s *store.Store, c conn, q selection) ([]*Record, error) {
			lq := c.leads().Query().Where(predicate.Lead(q.where))
			for _, o := range q.order {
				lq.Order(o)
			}
			if q.limit > 0 {
				lq.Limit(q.limit)
			}
			lq = lockAs(s, lq, q.lock)
			if q.columns != nil {
				rows, err := lq.Select(q.columns...).All(ctx)
				return records(rows, err, fromLead, false)
			}
			rows, err := lq.All(ctx)
			return records(rows, err, fromLead, true)
		},
		update: func(ctx context.Context, c conn, where func(*sql.Selector), status string, apply func(ownershipMutation)) (int, error) {
			u := c.leads().Update().Where(predicate.Lead(where))
			if status != "" {
				u.SetStatus(lead.Status(status))
			}
			apply(u.Mutation())
			return u.Save(ctx)
		},
		count: func(ctx context.Context, c conn, where func(*sql.Selector)) (int, error) {
			return c.leads().Query().Where(predicate.Lead(where)).Count(ctx)
		},
		sync: func(row any, r *Record, clk poolrules.Clock, now time.Time) {
			l := row.(*ent.Lead)
			l.PoolID, l.OwnerID, l.Status = r.PoolID, r.OwnerID, lead.Status(r.Status)
			l.OwnedAt, l.LastFollowUpAt, l.FrozenUntil, l.ReleasedAt = r.OwnedAt, r.LastFollowUpAt, r.FrozenUntil, r.ReleasedAt
			l.ReclaimAt, l.ReclaimReason = clk.ReclaimAt, clk.Reason
			l.Version++
			l.UpdatedAt = now
		},
		defaultCap: func(st Settings) *int { return st.MaxOwnedLeads },
	},
	kinds.Customer: {
		name: customer.Table, columns: customer.Columns,
		judged: slices.Concat(ownershipColumns, []string{customer.FieldDealStatus, customer.FieldGrade}),
		rows: func(ctx context.Context, s *store.Store, c conn, q selection) ([]*Record, error) {
			cq := c.customers().Query().Where(predicate.Customer(q.where))
			for _, o := range q.order {
				cq.Order(o)
			}
			if q.limit > 0 {
				cq.Limit(q.limit)
			}
			cq = lockAs(s, cq, q.lock)
			if q.columns != nil {
				rows, err := cq.Select(q.columns...).All(ctx)
				return records(rows, err, fromCustomer, false)
			}
			rows, err := cq.All(ctx)
			return records(rows, err, fromCustomer, true)
		},
		update: func(ctx context.Context, c conn, where func(*sql.Selector), status string, apply func(ownershipMutation)) (int, error) {
			u := c.customers().Update().Where(predicate.Customer(where))
			if status != "" {
				u.SetStatus(customer.Status(status))
			}
			apply(u.Mutation())
			return u.Save(ctx)
		},
		count: func(ctx context.Context, c conn, where func(*sql.Selector)) (int, error) {
			return c.customers().Query().Where(predicate.Customer(where)).Count(ctx)
		},
		sync: func(row any, r *Record, clk poolrules.Clock, now time.Time) {
			c := row.(*ent.Customer)
			c.PoolID, c.OwnerID, c.Status = r.PoolID, r.OwnerID, customer.Status(r.Status)
			c.OwnedAt, c.LastFollowUpAt, c.FrozenUntil, c.ReleasedAt = r.OwnedAt, r.LastFollowUpAt, r.FrozenUntil, r.ReleasedAt
			c.ReclaimAt, c.ReclaimReason = clk.ReclaimAt, clk.Reason
			c.Version++
			c.UpdatedAt = now
		},
		defaultCap: func(st Settings) *int { return st.MaxOwnedCustomers },
	},
}

func fromLead(l *ent.Lead) *Record {
	r := &Record{Kind: kinds.Lead, ID: l.ID, OwnerID: l.OwnerID, PoolID: l.PoolID, OwnedAt: l.OwnedAt,
		LastFollowUpAt: l.LastFollowUpAt, FrozenUntil: l.FrozenUntil, ReleasedAt: l.ReleasedAt, Status: string(l.Status)}
	r.stored = &storedState{Record: *r, ReclaimAt: l.ReclaimAt, ReclaimReason: l.ReclaimReason}
	return r
}

func fromCustomer(c *ent.Customer) *Record {
	r := &Record{Kind: kinds.Customer, ID: c.ID, OwnerID: c.OwnerID, PoolID: c.PoolID, OwnedAt: c.OwnedAt,
		LastFollowUpAt: c.LastFollowUpAt, FrozenUntil: c.FrozenUntil, ReleasedAt: c.ReleasedAt, Status: string(c.Status),
		Dealt: c.DealStatus, Grade: c.Grade}
	r.stored = &storedState{Record: *r, ReclaimAt: c.ReclaimAt, ReclaimReason: c.ReclaimReason}
	return r
}

// records turns the rows a query returned into records; keep keeps each
// (whole) row on its record.
func records[R any](rows []R, err error, from func(R) *Record, keep bool) ([]*Record, error) {
	if err != nil {
		return nil, err
	}
	out := make([]*Record, len(rows))
	for i, row := range rows {
		out[i] = from(row)
		if keep {
			out[i].row = row
		}
	}
	return out, nil
}

// lockAs applies a lock mode to any generated query.
func lockAs[Q interface {
	ForUpdate(opts ...sql.LockOption) Q
}](s *store.Store, q Q, mode lockMode) Q {
	switch mode {
	case lockRows:
		return store.ForUpdate(s, q)
	case lockSkipLocked:
		return store.ForUpdateSkipLocked(s, q)
	}
	return q
}

// tableOf is kind's table.
func tableOf(kind kinds.Kind) (table, error) {
	t, ok := tables[kind]
	if !ok {
		return table{}, fmt.Errorf("pool: record kind %q has no table", kind)
	}
	return t, nil
}

// where ANDs predicates on a record table into one.
func where(ps ...func(*sql.Selector)) func(*sql.Selector) {
	return func(s *sql.Selector) {
		for _, p := range ps {
			p(s)
		}
	}
}

// idIs is the predicate "the record is id".
func idIs(id uuid.UUID) func(*sql.Selector) { return sql.FieldEQ(colID, id) }

// idIn is store.IDIn as a predicate: the ids of a batch bound as one
// parameter, so the statement is prepared once.
func (s *Service) idIn(ids []uuid.UUID) func(*sql.Selector) {
	return func(sel *sql.Selector) { sel.Where(s.store.IDIn(sel.C(colID), ids)) }
}

// byID orders records by id.
var byID = []func(*sql.Selector){ent.Asc(colID)}

// rows reads the records of kind q selects.
func (s *Service) rows(ctx context.Context, c conn, kind kinds.Kind, q selection) ([]*Record, error) {
	t, err := tableOf(kind)
	if err != nil {
		return nil, err
	}
	return t.rows(ctx, s.store, c, q)
}

// one reads the record of kind q selects, kind.NotFound() when there is
// none. It asks for two rows, as ent's Only does.
func (s *Service) one(ctx context.Context, c conn, kind kinds.Kind, q selection) (*Record, error) {
	q.limit = 2
	rs, err := s.rows(ctx, c, kind, q)
	switch {
	case err != nil:
		return nil, fmt.Errorf("load %s: %w", kind, err)
	case len(rs) == 0:
		return nil, kind.NotFound()
	case len(rs) > 1:
		return nil, fmt.Errorf("load %s: %d rows for one", kind, len(rs))
	}
	return rs[0], nil
}

// update writes to the records of kind matching where: status unless "",
// and whatever apply sets. It returns how many matched.
func (s *Service) update(ctx context.Context, c conn, kind kinds.Kind, where func(*sql.Selector), status string, apply func(ownershipMutation)) (int, error) {
	t, err := tableOf(kind)
	if err != nil {
		return 0, err
	}
	return t.update(ctx, c, where, status, apply)
}

// count counts the records of kind matching where.
func (s *Service) count(ctx context.Context, c conn, kind kinds.Kind, where func(*sql.Selector)) (int, error) {
	t, err := tableOf(kind)
	if err != nil {
		return 0, err
	}
	return t.count(ctx, c, where)
}
