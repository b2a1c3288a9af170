package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/shoalcrm/shoal/ent"
)

// The SQL that ent's generated queries cannot say and that differs between
// the engines lives here, behind named helpers, so that domain packages
// never write dialect-specific text themselves.

// IDIn is "col is one of ids" with the ids bound as one parameter (an
// array on PostgreSQL, a JSON array on SQLite) rather than one parameter
// each: the statement's text is the same for every batch, so it is
// prepared once, and no batch nears a parameter limit.
func (s *Store) IDIn(col string, ids []uuid.UUID) *entsql.Predicate {
	if s.Dialect == dialect.Postgres {
		strs := make([]string, len(ids))
		for i, id := range ids {
			strs[i] = id.String()
		}
		return entsql.P(func(b *entsql.Builder) {
			b.WriteString(col).WriteString(" = ANY(").Arg("{" + strings.Join(strs, ",") + "}").WriteString("::uuid[])")
		})
	}
	raw, _ := json.Marshal(ids) // uuid.UUID marshals as its string form, as SQLite stores it
	return entsql.P(func(b *entsql.Builder) {
		b.WriteString(col).WriteString(" IN (SELECT value FROM json_each(").Arg(string(raw)).WriteString("))")
	})
}

// ForUpdateSkipLocked is ForUpdate that skips rows another transaction
// holds (SELECT … FOR UPDATE SKIP LOCKED) on PostgreSQL. On SQLite, where
// the transaction holds the database's write lock, it changes nothing.
func ForUpdateSkipLocked[Q lockable[Q]](s *Store, q Q) Q {
	if s.Dialect == dialect.Postgres {
		return q.ForUpdate(entsql.WithLockAction(entsql.SkipLocked))
	}
	return q
}

// AddReturning adds delta to the integer column counter of the row of table
// whose idColumn is id and reads columns of the changed row into dest, in
// one statement (UPDATE … SET counter = counter + delta … RETURNING …,
// which both engines support). It reports false when there is no such
// row.
func (s *Store) AddReturning(ctx context.Context, tx *ent.Tx, table, idColumn string, id any, counter string, delta int,
	columns []string, dest ...any) (bool, error) {
	query, args := entsql.Dialect(s.Dialect).Update(table).Add(counter, delta).Where(entsql.EQ(idColumn, id)).
		Returning(columns...).Query()
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	if !rows.Next() {
		return false, rows.Err()
	}
	if err := rows.Scan(dest...); err != nil {
		return false, err
	}
	return true, rows.Close()
}

// SetCount sets the integer column target of every row of table to the
// number of rows of from whose column ref equals the row's idColumn and
// that match where (the rows of from, as a selector named after from):
//
//	UPDATE table SET target = (SELECT COUNT(*) FROM from WHERE from.ref = table.id AND where)
//
// It recounts a denormalised counter in one statement on both engines.
func (s *Store) SetCount(ctx context.Context, tx *ent.Tx, table, idColumn, target, from, ref string,
	where func(*entsql.Selector) *entsql.Predicate) error {
	d := entsql.Dialect(s.Dialect)
	src := d.Table(from)
	sub := d.Select(entsql.Count("*")).From(src)
	ps := []*entsql.Predicate{entsql.ColumnsEQ(src.C(ref), d.Table(table).C(idColumn))}
	if where != nil {
		ps = append(ps, where(sub))
	}
	sub.Where(entsql.And(ps...))
	query, args := d.Update(table).Set(target, entsql.ExprFunc(func(b *entsql.Builder) {
		b.Wrap(func(b *entsql.Builder) { b.Join(sub) })
	})).Query()
	if _, err := tx.ExecContext(ctx, query, args...); err != nil {
		return fmt.Errorf("recount %s.%s: %w", table, target, err)
	}
	return nil
}

// IsConstraint reports whether err is a constraint violation (unique,
// foreign key, check, not null) as the driver reports it: SQLite's
// SQLITE_CONSTRAINT result code (extended codes keep it in the low byte)
// or a PostgreSQL SQLSTATE of class 23 (integrity constraint violation).
// ent's own ConstraintError counts too.
func IsConstraint(err error) bool {
	if err == nil {
		return false
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		return lite.Code()&0xff == sqlite3.SQLITE_CONSTRAINT
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		return strings.HasPrefix(pg.Code, "23")
	}
	return ent.IsConstraintError(err)
}

// ScalarSubquery is (SELECT column FROM table WHERE key = value): one
// value of another table read beside a query's own columns
// (Selector.AppendSelectExprAs), a round trip fewer than reading it apart.
func ScalarSubquery(column, table, key string, value any) entsql.Querier {
	return entsql.ExprFunc(func(b *entsql.Builder) {
		b.WriteString("(SELECT ").Ident(column).WriteString(" FROM ").Ident(table).
			WriteString(" WHERE ").Ident(key).WriteOp(entsql.OpEQ).Arg(value).WriteString(")")
	})
}
