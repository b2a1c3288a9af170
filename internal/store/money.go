package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/internal/money"
)

// legacyMoney is a money column that an older Shoal kept as a float and
// that now lives, as integer fen, in a column of its own (see
// internal/money).
type legacyMoney struct{ table, float, fen string }

var legacyMoneyColumns = []legacyMoney{
	{table: "customers", float: "credit_limit", fen: "credit_limit_fen"},
}

// migrateMoney moves the amounts an older Shoal stored as floats into
// their fen columns, once, after ent has created those columns.
//
// Why a new column rather than changing the old one's type: ent's
// auto-migration would have to turn a float column into a BIGINT in place,
// which PostgreSQL refuses without a USING clause and SQLite does by
// rebuilding the table with whatever its type affinity makes of 1234.5;
// either way the value would not reliably become 123450 fen.
//
// The conversion runs in Go, not SQL, so both engines give the same
// answer: each float becomes the shortest decimal that reads back as the
// same float (what the client once sent: 2.675, not 2.67499999…), rounded
// to the fen by money's one rule (half away from zero). In SQL, 2.675*100
// is 267.49999… on SQLite, and PostgreSQL's round() of a double rounds
// half to even.
//
// The float is set to NULL in the same transaction, so running this
// again (every start, several replicas) changes nothing, and a limit
// cleared later through the API is never brought back from the old
// column. The old column itself stays, empty: ent migrates without
// WithDropColumn (dropping every column the schema does not name is not
// something to do on every start), and an older binary still running
// during a rolling upgrade can keep writing it; what it writes is moved
// over at the next start.
func (s *Store) migrateMoney(ctx context.Context) error {
	for _, c := range legacyMoneyColumns {
		ok, err := s.hasColumn(ctx, c.table, c.float)
		if err != nil {
			return err
		}
		if !ok {
			continue // a database created by this version
		}
		if err := s.moveToFen(ctx, c); err != nil {
			return fmt.Errorf("move %s.%s to fen: %w", c.table, c.float, err)
		}
	}
	return nil
}

func (s *Store) moveToFen(ctx context.Context, c legacyMoney) (err error) {
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	// The names come from legacyMoneyColumns above, never from input.
	rows, err := tx.QueryContext(ctx, fmt.Sprintf("SELECT id, %s FROM %s WHERE %s IS NOT NULL", c.float, c.table, c.float))
	if err != nil {
		return err
	}
	type row struct {
		id  uuid.UUID
		fen money.Money
	}
	var todo []row
	for rows.Next() {
		var id uuid.UUID
		var f float64
		if err := rows.Scan(&id, &f); err != nil {
			_ = rows.Close()
			return err
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			// Never written through the API; leave it where it is rather
			// than lose it or refuse to start.
			slog.WarnContext(ctx, "legacy amount is not a number; left in place", "table", c.table, "column", c.float, "id", id)
			continue
		}
		m, err := money.Round(decimal.NewFromFloat(f))
		if err != nil {
			slog.WarnContext(ctx, "legacy amount out of range; left in place", "table", c.table, "column", c.float, "id", id, "err", err)
			continue
		}
		todo = append(todo, row{id, m})
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return err
	}
	// Read everything first: on SQLite the transaction has one connection,
	// which cannot update while a result set is still open on it.
	//
	// "AND float IS NOT NULL": if another replica moved this row after we
	// read it (and a client has changed the limit since), PostgreSQL
	// re-checks the condition on the row's new version and skips it,
	// instead of writing our stale copy over the client's change.
	q := fmt.Sprintf("UPDATE %s SET %s = ?, %s = NULL WHERE id = ? AND %s IS NOT NULL", c.table, c.fen, c.float, c.float)
	if s.Dialect == dialect.Postgres {
		q = fmt.Sprintf("UPDATE %s SET %s = $1, %s = NULL WHERE id = $2 AND %s IS NOT NULL", c.table, c.fen, c.float, c.float)
	}
	stmt, err := tx.PrepareContext(ctx, q)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }()
	for _, r := range todo {
		if _, err := stmt.ExecContext(ctx, r.fen, r.id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// hasColumn reports whether table has column in the current schema.
func (s *Store) hasColumn(ctx context.Context, table, column string) (bool, error) {
	q := "SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?"
	if s.Dialect == dialect.Postgres {
		q = "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
	}
	var n int
	if err := s.writeDB.QueryRowContext(ctx, q, table, column).Scan(&n); err != nil {
		return false, fmt.Errorf("look for column %s.%s: %w", table, column, err)
	}
	return n > 0, nil
}
