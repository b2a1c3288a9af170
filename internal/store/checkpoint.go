package store

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// checkpointEvery is how often the WAL is copied back into the database
// file when nothing asks sooner.
const checkpointEvery = 250 * time.Millisecond

// checkpointer copies SQLite's write-ahead log back into the database file
// from a connection of its own. Left to itself SQLite checkpoints inside
// the commit that crosses 1,000 WAL pages, syncing the file to disk while
// that commit, and so every writer queued behind it, waits. A PASSIVE
// checkpoint on another connection runs alongside writers and readers.
type checkpointer struct {
	db *sql.DB
	// mu is held during a checkpoint (see walGuard.ckptMu).
	mu   sync.Mutex
	kick chan struct{}
	stop context.CancelFunc
	done chan struct{}
}

func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, stop := context.WithCancel(context.Background())
	c := &checkpointer{db: db, kick: make(chan struct{}, 1), stop: stop, done: make(chan struct{})}
	go c.loop(ctx)
	return c
}

// soon asks for a checkpoint without waiting for it.
func (c *checkpointer) soon() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
		// A failure (the database busy with a checkpoint of someone
		// else's) is retried on the next round; nothing depends on it.
		c.mu.Lock()
		_, _ = c.db.ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)")
		c.mu.Unlock()
	}
}

// close stops the loop and closes its connection.
func (c *checkpointer) close() error {
	c.stop()
	<-c.done
	return c.db.Close()
}
