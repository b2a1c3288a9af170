// Package store opens Shoal's database (embedded SQLite or PostgreSQL),
// applies the schema, and is the one way to run a transaction.
package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/schema"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	pgxuuid "github.com/vgarvardt/pgx-google-uuid/v5"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/shoalcrm/shoal/ent"
)

// DefaultURL is where Shoal keeps its data when nothing else is configured.
const DefaultURL = "sqlite:./data/shoal.db"

// Store is an open database: a client for writes and transactions and a
// client for reads. On PostgreSQL both are the same pool; on SQLite writes go
// through one connection (SQLite has one writer anyway, and queuing in Go is
// cheaper than spinning on SQLITE_BUSY) while reads use a pool of their own.
type Store struct {
	Dialect string
	// Client writes. Use WithTx for anything that reads before it writes.
	Client *ent.Client
	// Reader reads outside transactions.
	Reader *ent.Client

	writeDB *sql.DB
	readDB  *sql.DB
	// batch groups SQLite write transactions and ckpt checkpoints the
	// WAL (both nil on PostgreSQL).
	batch *batcher
	ckpt  *checkpointer
	// wal keeps the SQLite write-ahead log under its limit (nil on
	// PostgreSQL).
	wal *walGuard
	// rules watches pools, settings and teams (SQLite only).
	rules *ruleWatch
	// raw keeps the *sql.Tx of each running transaction (see SQLTx).
	raw *rawTxs
	// postgresURL is the database's URL on PostgreSQL, for the job queue's
	// own pgx pool.
	postgresURL string
}

// Option configures Open.
type Option func(*options)

type options struct {
	walLimit int64
}

// DefaultWALLimit is the size past which SQLite's write-ahead log is
// checkpointed and truncated even if that means waiting for readers.
const DefaultWALLimit = 64 << 20

// WithWALLimit sets the size in bytes past which the SQLite write-ahead log
// is checkpointed and truncated (see walGuard); 0 or less keeps the
// default. PostgreSQL ignores it.
func WithWALLimit(n int64) Option {
	return func(o *options) {
		if n > 0 {
			o.walLimit = n
		}
	}
}

// Open connects to databaseURL: "sqlite:PATH" (the directory is created) or
// "postgres://…" / "postgresql://…". It does not apply the schema; see Migrate.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	o := options{walLimit: DefaultWALLimit}
	for _, opt := range opts {
		opt(&o)
	}
	if databaseURL == "" {
		databaseURL = DefaultURL
	}
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		path, err := sqlitePath(databaseURL)
		if err != nil {
			return nil, err
		}
		return openSQLite(ctx, path, o)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return openPostgres(ctx, databaseURL)
	default:
		return nil, fmt.Errorf("unsupported database url %q: want sqlite:PATH or postgres://", Redact(databaseURL))
	}
}

// sqlitePath is the file a "sqlite:PATH" URL names. The rest of the URL is
// the path as it is: no query, no fragment, no escapes.
func sqlitePath(databaseURL string) (string, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//")
	if path == "" {
		return "", errors.New("sqlite url has no path")
	}
	return path, nil
}

func openSQLite(ctx context.Context, path string, o options) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	}
	// The path goes into a file: URI, where SQLite decodes %HH and a raw
	// ? or # would end the path.
	uri := "file:" + strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)
	// journal_size_limit shrinks the WAL file back to the limit whenever
	// SQLite starts it over, so the disk it took at a peak is given back.
	pragmas := fmt.Sprintf("_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=busy_timeout(%d)&_pragma=synchronous(NORMAL)&_pragma=journal_size_limit(%d)&_time_format=sqlite",
		busyTimeout.Milliseconds(), o.walLimit)
	drv, err := sqliteDriver()
	if err != nil {
		return nil, err
	}
	rules := &ruleWatch{}
	// The writer's page cache is 64 MiB (SQLite's default is 2 MiB): a
	// batch of an import writes some 8,000 search grams into an index of
	// millions, and with the default cache the transaction spilled pages
	// and read them back; a 40,000-row import ran 20–45% faster with it
	// (issue 18). The cache grows only as pages are used.
	writeDB := sql.OpenDB(cachingConnector{dsn: uri + "?" + pragmas + "&_txlock=immediate&_pragma=wal_autocheckpoint(0)&_pragma=temp_store(memory)&_pragma=cache_size(-65536)", drv: drv, outside: rules.outside})
	writeDB.SetMaxOpenConns(1)
	writeDB.SetMaxIdleConns(1)
	writeDB.SetConnMaxLifetime(0)

	readDB := sql.OpenDB(cachingConnector{dsn: uri + "?" + pragmas + "&_pragma=query_only(1)", drv: drv})
	readers := max(4, runtime.GOMAXPROCS(0)*2)
	readDB.SetMaxOpenConns(readers)
	readDB.SetMaxIdleConns(readers)

	s := &Store{
		Dialect: dialect.SQLite,
		writeDB: writeDB,
		readDB:  readDB,
		raw:     &rawTxs{},
	}
	s.Client = ent.NewClient(ent.Driver(&holdingDriver{Driver: detachedDriver{entsql.OpenDB(dialect.SQLite, writeDB)}, s: s}))
	s.Reader = ent.NewClient(ent.Driver(&holdingDriver{Driver: entsql.OpenDB(dialect.SQLite, readDB), s: s}))
	// The writer never checkpoints: see checkpointer.
	ckptDB := sql.OpenDB(cachingConnector{dsn: uri + "?" + pragmas, drv: drv})
	ckptDB.SetMaxOpenConns(1)
	s.ckpt = startCheckpointer(ckptDB)
	s.wal = newWALGuard(path+"-wal", o.walLimit, writeDB, &s.ckpt.mu)
	s.rules = rules
	s.Client.Use(s.rules.hook)
	s.batch = &batcher{client: s.Client, begin: s.raw.begin, committed: s.ckpt.soon, ended: s.rules.ended, afterCommit: s.wal.check}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// busyTimeout is how long a SQLite connection waits for a lock another
// connection holds before it gives up with SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// sqliteDriver is the driver modernc.org/sqlite registers as "sqlite".
func sqliteDriver() (driver.Driver, error) {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, fmt.Errorf("sqlite driver: %w", err)
	}
	defer db.Close()
	return db.Driver(), nil
}

func openPostgres(ctx context.Context, databaseURL string) (*Store, error) {
	db, err := OpenPostgresDB(databaseURL)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{Dialect: dialect.Postgres, writeDB: db, readDB: db, raw: &rawTxs{}, postgresURL: databaseURL}
	s.Client = ent.NewClient(ent.Driver(&holdingDriver{Driver: capturingDriver{entsql.OpenDB(dialect.Postgres, db)}, s: s}))
	s.Reader = s.Client
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// OpenPostgresDB opens a database/sql pool on PostgreSQL through pgx whose
// connections encode uuid.UUID parameters as the 16 bytes they are. pgx
// otherwise takes a uuid.UUID (a driver.Valuer) through its string form:
// it fails to encode the string as binary, builds an error message saying
// so, parses the string back and encodes that, for every UUID parameter of
// every statement; in a claim's profile that was 7% of the server's CPU.
func OpenPostgresDB(databaseURL string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(_ context.Context, c *pgx.Conn) error {
		pgxuuid.Register(c.TypeMap())
		return nil
	})), nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := s.writeDB.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	if s.readDB != s.writeDB {
		if err := s.readDB.PingContext(ctx); err != nil {
			return fmt.Errorf("ping database reader: %w", err)
		}
	}
	return nil
}

// DBs returns the underlying pools by name, for pool metrics.
func (s *Store) DBs() map[string]*sql.DB {
	if s.readDB == s.writeDB {
		return map[string]*sql.DB{"primary": s.writeDB}
	}
	return map[string]*sql.DB{"write": s.writeDB, "read": s.readDB}
}

// Close closes both pools.
func (s *Store) Close() error {
	var err error
	if s.ckpt != nil {
		err = s.ckpt.close()
	}
	err = errors.Join(err, s.writeDB.Close())
	if s.readDB != s.writeDB {
		err = errors.Join(err, s.readDB.Close())
	}
	return err
}

// Migrate brings the schema up to date. It is safe to run on every start
// and from several replicas: ent only adds what is missing.
func (s *Store) Migrate(ctx context.Context) error {
	// ent's migration edits its package-level table descriptions, so two
	// stores migrating at once in one process (tests, replicas in one
	// binary) must take turns.
	migrateMu.Lock()
	defer migrateMu.Unlock()
	// Indexes dropped from the schema are dropped from the database too:
	// an index nothing reads still costs every write.
	if err := s.Client.Schema.Create(ctx, schema.WithDropIndex(true), schema.WithDiffHook(keepFeedIndex)); err != nil {
		return fmt.Errorf("apply schema: %w", err)
	}
	if err := s.migrateFeed(ctx); err != nil {
		return err
	}
	if err := s.migrateMoney(ctx); err != nil {
		return err
	}
	if err := s.migrateSearch(ctx); err != nil {
		return err
	}
	return s.migrateRiver(ctx)
}

var migrateMu sync.Mutex

// WithTx runs fn in one transaction on the write client and commits if fn
// returns nil. It is the only way Shoal runs a transaction. On SQLite the
// transaction takes the write lock at BEGIN (immediate mode), so a
// read-then-write sequence can never be interleaved with another writer,
// and concurrent callers share a transaction, each in a savepoint of its own
// (see batcher). fn must therefore read what it decides on through tx, not
// through Reader: a caller earlier in the same transaction may have changed
// it, uncommitted.
//
// A TxObserver on ctx (see WithTxObserver) runs inside the transaction after
// fn succeeds, and hears whether the transaction committed. A Hold on ctx
// (see WithHold) keeps the transaction open for the request's answer.
//
// WithTx must not be called from inside fn (or any other transaction body):
// it returns an error wrapping ErrNestedTx at once rather than deadlock.
// An error, not a panic: it fails the outer body like any other error, so
// the outer transaction rolls back and the caller (and its test) sees why,
// while a panic would take down a background job's goroutine.
func (s *Store) WithTx(ctx context.Context, fn func(tx *ent.Tx) error) (err error) {
	if nestedTx() {
		return fmt.Errorf("%w: pass the tx down instead", ErrNestedTx)
	}
	if h := holdFrom(ctx); h != nil && h.s == s {
		if handled, err := h.withHold(ctx, fn); handled {
			return err
		}
	}
	fn, end := observed(ctx, fn)
	fn = framed(fn)
	defer func() {
		if p := recover(); p != nil {
			end(errPanicked)
			panic(p)
		}
		end(err)
	}()
	if s.batch != nil {
		return s.batch.run(ctx, fn)
	}
	return s.withOwnTx(ctx, fn)
}

// WritesAsked counts the write transactions asked for so far through
// WithTx on SQLite, where they take turns on the one writer. A long writer
// compares two counts to learn whether others queued meanwhile. ok is false
// on PostgreSQL, where writers do not take turns.
func (s *Store) WritesAsked() (n uint64, ok bool) {
	if s.batch == nil {
		return 0, false
	}
	return s.batch.asked.Load(), true
}

// withOwnTx runs fn in a transaction of its own.
func (s *Store) withOwnTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	tx, err := s.raw.begin(ctx, s.Client)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rerr := tx.Rollback(); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback: %w", rerr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%w: %w", ErrCommit, err)
	}
	return nil
}

// Redact hides the password in a database URL so it can be logged.
func Redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// lockable is any generated ent query (they all have ForUpdate).
type lockable[Q any] interface {
	ForUpdate(opts ...entsql.LockOption) Q
}

// ForUpdate adds SELECT … FOR UPDATE on PostgreSQL, where concurrent
// transactions must lock the rows they will change. SQLite has no row locks
// and needs none: its transactions take the database write lock at BEGIN.
func ForUpdate[Q lockable[Q]](s *Store, q Q) Q {
	if s.Dialect == dialect.Postgres {
		return q.ForUpdate()
	}
	return q
}

// DB is the write pool, for the few things ent does not model (advisory
// locks).
func (s *Store) DB() *sql.DB { return s.writeDB }
