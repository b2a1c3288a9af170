package store

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// forcedWait is how long a forced checkpoint waits for readers still
// reading from the WAL before it gives up (and is tried again later). The
// writer, and so every write, waits with it: the wait stays short. Shoal's
// reads are short statements, never long-lived read transactions, so a
// reader is normally gone within milliseconds.
const forcedWait = time.Second

// forcedRetry is how long after a forced checkpoint that could not finish
// the next one is tried, so that a slow reader does not make every commit
// wait forcedWait. Past twice the limit there is no such pause (see
// walGuard).
const forcedRetry = time.Second

// walGuard bounds SQLite's write-ahead log. The checkpointer's PASSIVE
// checkpoints copy the log into the database without waiting for anyone,
// but SQLite only starts the log over once a checkpoint has copied all of
// it and no reader still reads from it; under steady writes and reads
// that moment may never come, and the log grew to four times the database
// (638 MB for 153 MB). So after each commit the writer looks at the log's
// size, and when it has passed the limit runs a TRUNCATE checkpoint
// itself, between two transactions: that waits (at most forcedWait) for
// the readers of older snapshots, copies everything and empties the file.
// Running it on the writer connection means it never competes with a
// writer of this process; writers of other processes wait on their busy
// handler.
//
// Readers that take longer than forcedWait (a loaded machine) make it
// fail; it is tried again forcedRetry later, while writes go on. Once the
// log has grown to twice the limit anyway, the writer tries again and
// again, and no write of this process commits, until it is done: the log
// never grows past twice the limit and one group commit. Shoal's reads
// are single statements, so the readers it waits for always end.
type walGuard struct {
	path  string // the -wal file
	limit int64
	db    *sql.DB // the writer
	// ckptMu is held by whoever checkpoints in this process: SQLite lets
	// one checkpoint run at a time and fails any other at once (busy),
	// so the forced one waits for the checkpointer's PASSIVE one instead.
	ckptMu *sync.Mutex

	// retryAt (unix nanoseconds) holds off a new attempt after one that
	// could not finish. Only the batcher's drain goroutine writes it.
	retryAt atomic.Int64

	size   prometheus.GaugeFunc
	forced *prometheus.CounterVec
}

func newWALGuard(path string, limit int64, writer *sql.DB, ckptMu *sync.Mutex) *walGuard {
	g := &walGuard{path: path, limit: limit, db: writer, ckptMu: ckptMu}
	g.size = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoal_sqlite_wal_bytes",
		Help: "Size of the SQLite write-ahead log file.",
	}, func() float64 { return float64(g.bytes()) })
	g.forced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "shoal_sqlite_wal_forced_checkpoints_total",
		Help: "TRUNCATE checkpoints run because the SQLite write-ahead log passed its limit, by result (done, or busy when readers held it past the wait).",
	}, []string{"result"})
	g.forced.WithLabelValues("done") // shown as 0 until the first one
	return g
}

// bytes is the WAL file's size now (0 when there is none).
func (g *walGuard) bytes() int64 {
	fi, err := os.Stat(g.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// check checkpoints and truncates the WAL if it has passed the limit. It
// runs on the batcher's drain goroutine after a commit.
func (g *walGuard) check() {
	size := g.bytes()
	if size <= g.limit {
		return
	}
	hard := size > 2*g.limit
	if !hard && time.Now().UnixNano() < g.retryAt.Load() {
		return
	}
	for {
		done, err := g.truncate(context.Background())
		switch {
		case err != nil:
			// Not the readers: the connection or the disk. Writing on
			// is what the store would do without this guard.
			g.forced.WithLabelValues("error").Inc()
		case !done:
			g.forced.WithLabelValues("busy").Inc()
			if hard {
				continue
			}
		default:
			g.forced.WithLabelValues("done").Inc()
			return
		}
		g.retryAt.Store(time.Now().Add(forcedRetry).UnixNano())
		return
	}
}

// truncate runs a TRUNCATE checkpoint on the writer connection, waiting
// for readers at most forcedWait. done is false when readers held it.
func (g *walGuard) truncate(ctx context.Context) (done bool, err error) {
	conn, err := g.db.Conn(ctx)
	if err != nil {
		return false, fmt.Errorf("wal checkpoint: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", forcedWait.Milliseconds())); err != nil {
		return false, fmt.Errorf("wal checkpoint: %w", err)
	}
	defer func() {
		if _, rerr := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())); rerr != nil && err == nil {
			err = fmt.Errorf("wal checkpoint: restore busy_timeout: %w", rerr)
		}
	}()
	g.ckptMu.Lock()
	defer g.ckptMu.Unlock()
	var busy, logFrames, copied int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &copied); err != nil {
		return false, fmt.Errorf("wal checkpoint: %w", err)
	}
	return busy == 0, nil
}

// Collectors are the store's Prometheus metrics: the SQLite WAL's size and
// the checkpoints forced to keep it bounded. PostgreSQL has none.
func (s *Store) Collectors() []prometheus.Collector {
	if s.wal == nil {
		return nil
	}
	return []prometheus.Collector{s.wal.size, s.wal.forced}
}
