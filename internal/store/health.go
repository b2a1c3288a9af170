package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrReadOnly is what ProbeWrite reports when the database answers but
// would refuse writes.
var ErrReadOnly = errors.New("database is read-only")

// Unavailable reports whether err means the database itself cannot serve
// (unreachable, out of disk or memory, read-only, shutting down) rather
// than that the request or the code is wrong. It is the one place driver
// errors are classified, so that the HTTP layer can answer 503 for an
// outage instead of 500 for a bug.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrReadOnly) || errors.Is(err, driver.ErrBadConn) {
		return true
	}
	var lite *sqlite.Error
	if errors.As(err, &lite) {
		// Extended result codes keep the primary code in the low byte.
		switch lite.Code() & 0xff {
		case sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM:
			return true
		}
		return false
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"): // connection exception
			return true
		case strings.HasPrefix(pg.Code, "53"): // insufficient resources: 53100 disk_full, 53200 out_of_memory, 53300 too_many_connections
			return true
		case strings.HasPrefix(pg.Code, "57P0"): // admin/crash shutdown, cannot connect now, database dropped
			return true
		case pg.Code == "25006": // read_only_sql_transaction: a standby, or default_transaction_read_only
			return true
		}
		return false
	}
	var connect *pgconn.ConnectError
	if errors.As(err, &connect) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// ProbeWrite checks that the database would accept a write right now,
// without leaving anything behind. A ping only proves that a connection
// opens; a full disk or a read-only database answers pings happily.
//
// On SQLite it takes the write lock (BEGIN IMMEDIATE: fails on a read-only
// or unopenable file) and creates a table, which allocates a page (fails
// with SQLITE_FULL when the file may not grow), then rolls back. SQLite
// writes nothing to the WAL for a rolled-back transaction, so a disk that
// is full only for the WAL is caught by the first real write instead, which
// Unavailable classifies as 503 all the same.
//
// On PostgreSQL it assigns a transaction id (pg_current_xact_id fails on a
// standby in recovery and when the cluster stops assigning ids to prevent
// wraparound) and checks that the transaction is not read-only (the
// setting managed services flip when the disk fills), then rolls back.
// PostgreSQL itself does not write for a rolled-back transaction either, so
// a disk full of table data shows on the first real write (53100).
func (s *Store) ProbeWrite(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	tx, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("probe write: begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	switch s.Dialect {
	case dialect.SQLite:
		if _, err := tx.ExecContext(ctx, "CREATE TABLE shoal_write_probe (x INTEGER)"); err != nil {
			return fmt.Errorf("probe write: %w", err)
		}
	default:
		var xid, readOnly string
		if err := tx.QueryRowContext(ctx, "SELECT pg_current_xact_id()::text, current_setting('transaction_read_only')").Scan(&xid, &readOnly); err != nil {
			return fmt.Errorf("probe write: %w", err)
		}
		if readOnly == "on" {
			return fmt.Errorf("probe write: %w", ErrReadOnly)
		}
	}
	if err := tx.Rollback(); err != nil {
		return fmt.Errorf("probe write: rollback: %w", err)
	}
	return nil
}
