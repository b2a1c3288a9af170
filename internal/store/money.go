package store

import (
	"context"
	"fmt"

	"entgo.io/ent/dialect"
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
// Each float is rounded half away from zero to the fen (what the API now
// admits); on PostgreSQL through numeric, whose round() is half away from
// zero, where round() of a double rounds half to even. The float is then
// set to NULL in the same statement, so running this again (every start,
// several replicas) changes nothing, and a limit cleared later through the
// API is never brought back from the old column. The old column itself
// stays, empty: ent migrates without WithDropColumn (dropping every column
// the schema does not name is not something to do on every start), and an
// older binary still running during a rolling upgrade can keep writing it;
// whatever it writes is moved over at the next start.
func (s *Store) migrateMoney(ctx context.Context) error {
	for _, c := range legacyMoneyColumns {
		ok, err := s.hasColumn(ctx, c.table, c.float)
		if err != nil {
			return err
		}
		if !ok {
			continue // a database created by this version
		}
		fen := fmt.Sprintf("CAST(ROUND(%s * 100) AS INTEGER)", c.float)
		if s.Dialect == dialect.Postgres {
			fen = fmt.Sprintf("CAST(ROUND(CAST(%s AS NUMERIC) * 100) AS BIGINT)", c.float)
		}
		// The names come from legacyMoneyColumns above, never from input.
		q := fmt.Sprintf("UPDATE %s SET %s = %s, %s = NULL WHERE %s IS NOT NULL", c.table, c.fen, fen, c.float, c.float)
		if _, err := s.writeDB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("move %s.%s to fen: %w", c.table, c.float, err)
		}
	}
	return nil
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
