package bench

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // "sqlite" driver for the raw connections

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// full reports whether the large sizes the targets are stated for were
// asked for; the default sizes only keep the code exercised.
func full() bool { return os.Getenv("SHOAL_BENCH_FULL") == "1" }

// sized picks the full or the small value.
func sized[T any](small, big T) T {
	if full() {
		return big
	}
	return small
}

// engines are the databases every benchmark runs on. PostgreSQL is skipped
// when testdb cannot find or start one.
var engines = []struct {
	name string
	url  func(testing.TB) string
}{
	{"sqlite", testdb.SQLite},
	{"postgres", testdb.Postgres},
}

// startShoal runs Shoal on databaseURL. It logs at info level into nothing:
// that keeps the cost of formatting the access log, as `shoal serve` has,
// without apitest's default of keeping every debug line in memory, which
// would grow without bound over a full-size run.
func startShoal(tb testing.TB, databaseURL string) *apitest.Env {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger}})
}

// connRole says what a raw connection pool is for; each is configured like
// its counterpart inside Shoal, so the baseline differs from Shoal only by
// what Shoal does on top of SQL.
type connRole int

const (
	// roleSeed bulk-loads data: durability does not matter for a
	// throwaway database, a big page cache does.
	roleSeed connRole = iota
	// roleWriter is the baseline for writes: on SQLite one connection
	// with BEGIN IMMEDIATE and synchronous=NORMAL, like Shoal's writer and
	// the reference claim figure in /work/shared/docs/performance.md.
	roleWriter
	// roleReader is the baseline for reads: a read-only pool the size of
	// Shoal's.
	roleReader
)

// rawDB is a database/sql pool on the same database Shoal uses.
type rawDB struct {
	*sql.DB
	pg bool
}

// openRaw opens a pool for role on Shoal's databaseURL ("sqlite:PATH" or
// "postgres://…") and closes it when the test ends.
func openRaw(tb testing.TB, databaseURL string, role connRole) *rawDB {
	tb.Helper()
	var (
		db  *sql.DB
		err error
		pg  bool
	)
	if path, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
		dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_time_format=sqlite"
		switch role {
		case roleSeed:
			dsn += "&_pragma=synchronous(OFF)&_pragma=cache_size(-262144)"
		case roleWriter:
			dsn += "&_pragma=synchronous(NORMAL)&_txlock=immediate"
		case roleReader:
			dsn += "&_pragma=synchronous(NORMAL)&_pragma=query_only(1)"
		}
		db, err = sql.Open("sqlite", dsn)
		if err == nil {
			conns := 1
			if role == roleReader {
				conns = max(4, runtime.GOMAXPROCS(0)*2) // as internal/store
			}
			db.SetMaxOpenConns(conns)
			db.SetMaxIdleConns(conns)
		}
	} else {
		pg = true
		// The same pgx set-up as Shoal's, so neither side pays for
		// encoding UUIDs through their text form.
		db, err = store.OpenPostgresDB(databaseURL)
		if err == nil {
			db.SetMaxOpenConns(32) // as internal/store
			db.SetMaxIdleConns(32)
		}
	}
	if err != nil {
		tb.Fatalf("open raw database: %v", err)
	}
	tb.Cleanup(func() { _ = db.Close() })
	if err := db.Ping(); err != nil {
		tb.Fatalf("ping raw database: %v", err)
	}
	return &rawDB{DB: db, pg: pg}
}

// q rewrites the ? placeholders of query to $1, $2, … on PostgreSQL, so each
// statement is written once for both engines. No query here has a ? inside
// a literal.
func (d *rawDB) q(query string) string {
	if !d.pg {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// count runs a COUNT-like query returning one integer.
func (d *rawDB) count(tb testing.TB, query string, args ...any) int {
	tb.Helper()
	var n int
	if err := d.QueryRow(d.q(query), args...).Scan(&n); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
	return n
}

// settle makes the freshly loaded data look like a database that has been
// running for a while: on SQLite the bulk load is moved out of the WAL (a
// long WAL slows every reader), on PostgreSQL the planner gets statistics,
// which autovacuum would gather shortly after a load anyway. SQLite gets no
// ANALYZE because Shoal never runs one.
func (d *rawDB) settle(tb testing.TB) {
	tb.Helper()
	query := "PRAGMA wal_checkpoint(TRUNCATE)"
	if d.pg {
		query = "ANALYZE"
	}
	if _, err := d.Exec(query); err != nil {
		tb.Fatalf("%s: %v", query, err)
	}
}

// rowsPerInsert keeps a multi-row INSERT well under SQLite's 32,766 and
// PostgreSQL's 65,535 parameters for every table seeded here.
const rowsPerInsert = 500

// inserter writes rows of one table through multi-row INSERTs. Columns
// whose value is the same in every row are written as SQL literals, which
// keeps the statements short and the parameter count low.
type inserter struct {
	db       *rawDB
	head     string // INSERT INTO t (params…, constants…) VALUES
	tuple    string // (?, ?, …, literal, …)
	nParams  int
	bySize   map[int]string
	pending  []any
	inserted int
}

// newInserter prepares inserts into table of the params columns (given per
// row to add) followed by constant columns (column name → SQL literal).
func (d *rawDB) newInserter(table string, params []string, constants [][2]string) *inserter {
	cols := append([]string(nil), params...)
	vals := make([]string, 0, len(params)+len(constants))
	for range params {
		vals = append(vals, "?")
	}
	for _, c := range constants {
		cols = append(cols, c[0])
		vals = append(vals, c[1])
	}
	return &inserter{
		db:      d,
		head:    "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES ",
		tuple:   "(" + strings.Join(vals, ", ") + ")",
		nParams: len(params),
		bySize:  map[int]string{},
	}
}

// add queues one row (its param values, in order) and writes a full batch.
func (in *inserter) add(ctx context.Context, tx *sql.Tx, row ...any) error {
	if len(row) != in.nParams {
		return fmt.Errorf("%s: %d values for %d columns", in.head, len(row), in.nParams)
	}
	in.pending = append(in.pending, row...)
	if len(in.pending) >= rowsPerInsert*in.nParams {
		return in.flush(ctx, tx)
	}
	return nil
}

// flush writes the queued rows.
func (in *inserter) flush(ctx context.Context, tx *sql.Tx) error {
	rows := len(in.pending) / in.nParams
	if rows == 0 {
		return nil
	}
	query, ok := in.bySize[rows]
	if !ok {
		query = in.db.q(in.head + strings.Repeat(in.tuple+", ", rows-1) + in.tuple)
		in.bySize[rows] = query
	}
	if _, err := tx.ExecContext(ctx, query, in.pending...); err != nil {
		return fmt.Errorf("%s…: %w", in.head, err)
	}
	in.inserted += rows
	in.pending = in.pending[:0]
	return nil
}
