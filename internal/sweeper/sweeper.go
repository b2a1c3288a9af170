// Package sweeper runs the pool engine's sweep periodically, on exactly one
// replica: on PostgreSQL the replica holding a session advisory lock is the
// leader (another takes over when it dies, as its session ends); on SQLite
// the single process is.
package sweeper

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"

	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
)

// lockKey is the advisory lock id of the sweep leader ("shoal" in ASCII).
const lockKey = 0x73686f616c

// Run sweeps every interval until ctx ends. It reports each run through
// onRun (for tests and metrics); onRun may be nil.
func Run(ctx context.Context, st *store.Store, pools *pool.Service, interval time.Duration, log *slog.Logger, onRun func(*pool.SweepResult)) {
	var conn *sql.Conn
	defer func() {
		if conn != nil {
			release(conn)
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if st.Dialect == dialect.Postgres && conn == nil {
			c, ok := tryLead(ctx, st)
			if !ok {
				continue
			}
			conn = c
			log.Info("sweep leader elected")
		}
		if conn != nil && conn.PingContext(ctx) != nil {
			release(conn)
			conn = nil
			continue
		}
		res, err := pools.Sweep(ctx, nil, false)
		if err != nil {
			log.Error("sweep failed", slog.Any("error", err))
			continue
		}
		if len(res.Reclaimed)+len(res.Released)+len(res.Warned) > 0 {
			log.Info("sweep", slog.Int("reclaimed", len(res.Reclaimed)), slog.Int("released", len(res.Released)), slog.Int("warned", len(res.Warned)))
		}
		if onRun != nil {
			onRun(res)
		}
	}
}

// tryLead takes the leader lock on a dedicated connection, which holds it
// for as long as the connection lives.
func tryLead(ctx context.Context, st *store.Store) (*sql.Conn, bool) {
	c, err := st.DB().Conn(ctx)
	if err != nil {
		return nil, false
	}
	var ok bool
	if err := c.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", lockKey).Scan(&ok); err != nil || !ok {
		_ = c.Close()
		return nil, false
	}
	return c, true
}

// release gives up leadership by ending the leader's session. Closing a
// *sql.Conn only returns it to the pool, where the session, and with it the
// advisory lock, would live on and no other replica could take over; so the
// physical connection is discarded instead.
func release(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
}
