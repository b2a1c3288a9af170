package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"

	"entgo.io/ent/dialect"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
)

// riverMigrateLock is the advisory lock PostgreSQL replicas take while they
// apply River's migrations ("river" in ASCII): rivermigrate takes none, and
// two replicas starting at once would both try to create River's tables.
const riverMigrateLock = 0x7269766572

// migrateRiver applies the job queue's (River's) schema: its tables live
// beside Shoal's in the same database, so a job can be inserted in the
// transaction of the change that calls for it. rivermigrate applies only
// the versions it has not recorded, so this is safe on every start.
func (s *Store) migrateRiver(ctx context.Context) error {
	if s.Dialect != dialect.Postgres {
		// One process per file (LockExclusive) and one writer connection:
		// nothing runs beside this.
		m, err := rivermigrate.New(riversqlite.New(s.writeDB), nil)
		if err != nil {
			return fmt.Errorf("job queue migrations: %w", err)
		}
		if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
			return fmt.Errorf("apply job queue schema: %w", err)
		}
		return nil
	}
	// The lock is a session lock on a connection of its own, held while
	// the migrations run on others, and given back with the connection's
	// session (discarded below) even if the unlock fails.
	conn, err := s.writeDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	defer discard(conn)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", riverMigrateLock); err != nil {
		return fmt.Errorf("job queue migration lock: %w", err)
	}
	m, err := rivermigrate.New(riverdatabasesql.New(s.writeDB), nil)
	if err != nil {
		return fmt.Errorf("job queue migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("apply job queue schema: %w", err)
	}
	return nil
}

// PostgresURL is the database's URL on PostgreSQL ("" on SQLite), for a
// library that opens a pool of its own on it (River's pgx driver).
func (s *Store) PostgresURL() string { return s.postgresURL }

// discard closes c and drops its session rather than return it to the pool,
// so that a session lock it may still hold ends with it.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
