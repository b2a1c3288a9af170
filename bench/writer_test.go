package bench

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// The writer benchmark measures what store.WithTx costs a write on SQLite,
// where it goes through the group-commit batcher, against the plainest
// transaction database/sql can run on the same file and schema: BEGIN
// IMMEDIATE, one prepared INSERT, COMMIT, on a writer connection configured
// like Shoal's. Every write inserts one settings row.

const insertSetting = "INSERT INTO settings (key, created_at, updated_at, value) VALUES (?, ?, ?, ?)"

// writerBench is a Shoal store and a raw writer on one SQLite file.
type writerBench struct {
	s    *store.Store
	raw  *rawDB
	stmt *sql.Stmt
	next int // key counter, so that every write inserts a new row
	mu   sync.Mutex
}

func newWriterBench(tb testing.TB) *writerBench {
	tb.Helper()
	ctx := context.Background()
	url := testdb.SQLite(tb)
	s, err := store.Open(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		tb.Fatal(err)
	}
	raw := openRaw(tb, url, roleWriter)
	stmt, err := raw.Prepare(insertSetting)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = stmt.Close() })
	return &writerBench{s: s, raw: raw, stmt: stmt}
}

func (w *writerBench) key() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.next++
	return fmt.Sprintf("w%09d", w.next)
}

// writeFunc performs one write.
type writeFunc func(ctx context.Context, key string) error

// shoal is one write through store.WithTx, with the raw phase's statement.
func (w *writerBench) shoal(ctx context.Context, key string) error {
	now := time.Now()
	return w.s.WithTx(ctx, func(tx *ent.Tx) error {
		_, err := tx.ExecContext(ctx, insertSetting, key, now, now, "{}")
		return err
	})
}

// shoalEnt is one write through store.WithTx and ent's builder, as
// Shoal's own code writes.
func (w *writerBench) shoalEnt(ctx context.Context, key string) error {
	return w.s.WithTx(ctx, func(tx *ent.Tx) error {
		return tx.Setting.Create().SetID(key).SetValue(map[string]any{}).Exec(ctx)
	})
}

// rawWrite is the reference: BEGIN IMMEDIATE (the DSN's _txlock), the
// prepared INSERT, COMMIT.
func (w *writerBench) rawWrite(ctx context.Context, key string) error {
	now := time.Now()
	tx, err := w.raw.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := tx.StmtContext(ctx, w.stmt).ExecContext(ctx, key, now, now, "{}"); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writes runs n writes of fn from workers goroutines.
func (w *writerBench) writes(n, workers int, fn writeFunc) run {
	ctx := context.Background()
	var (
		mu  sync.Mutex
		all run
		wg  sync.WaitGroup
	)
	all.perWorker = make([]int, workers)
	jobs := make(chan string, n)
	for range n {
		jobs <- w.key()
	}
	close(jobs)
	start := time.Now()
	for worker := range workers {
		wg.Go(func() {
			var lat []time.Duration
			var failed int
			var firstErr error
			for k := range jobs {
				t := time.Now()
				if err := fn(ctx, k); err != nil {
					failed++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			defer mu.Unlock()
			all.lat = append(all.lat, lat...)
			all.ok += len(lat)
			all.perWorker[worker] = len(lat)
			all.failed += failed
			if all.firstErr == nil {
				all.firstErr = firstErr
			}
		})
	}
	wg.Wait()
	all.elapsed = time.Since(start)
	all.load = loadAvg()
	slices.Sort(all.lat)
	return all
}

// writerPhases are measured in turn, round after round, so that a change
// in the machine's load (it is shared) falls on all of them alike.
type writerPhase struct {
	name string
	fn   func(w *writerBench) writeFunc
}

var writerPhases = []writerPhase{
	{"withtx", func(w *writerBench) writeFunc { return w.shoal }},
	{"withtx-ent", func(w *writerBench) writeFunc { return w.shoalEnt }},
	{"raw", func(w *writerBench) writeFunc { return w.rawWrite }},
}

// writerRun measures every phase with n writes in all, in rounds, from
// workers goroutines.
func (w *writerBench) writerRun(n, rounds, workers int) map[string]run {
	res := map[string]run{}
	for range rounds {
		for _, p := range writerPhases {
			res[p.name] = res[p.name].merge(w.writes(n/rounds, workers, p.fn(w)))
		}
	}
	return res
}

func writerLine(workers int, res map[string]run) string {
	r, e, raw := res["withtx"], res["withtx-ent"], res["raw"]
	return fmt.Sprintf("%d writer(s): withtx %.0f/s (p50 %.3f ms) withtx-ent %.0f/s raw %.0f/s (p50 %.3f ms) withtx÷raw %.2f withtx-ent÷raw %.2f [load %s]",
		workers, r.rate(), ms(r.pct(0.5)), e.rate(), raw.rate(), ms(raw.pct(0.5)), r.rate()/raw.rate(), e.rate()/raw.rate(), raw.load)
}

// BenchmarkLoneWriter is one client writing one row per transaction, one
// write after the other, through store.WithTx and through the raw
// transaction; BenchmarkLoneWriter/concurrent is the same with 16 clients,
// where group commit should put WithTx ahead of the raw transaction.
func BenchmarkLoneWriter(b *testing.B) {
	n := sized(2_000, 30_000)
	for _, workers := range []int{1, claimWorkers} {
		name := "sequential"
		if workers > 1 {
			name = "concurrent"
		}
		b.Run(name, func(b *testing.B) {
			w := newWriterBench(b)
			w.writerRun(n/10, 1, workers) // warm up: statement caches, pages
			res := map[string]run{}
			b.ResetTimer()
			for range b.N {
				for k, r := range w.writerRun(n, 10, workers) {
					mustSucceed(b, k, r)
					res[k] = res[k].merge(r)
				}
			}
			b.StopTimer()
			b.ReportMetric(res["withtx"].rate(), "withtx-writes/s")
			b.ReportMetric(res["raw"].rate(), "raw-writes/s")
			b.ReportMetric(res["withtx"].rate()/res["raw"].rate(), "withtx/raw")
			line := "writer: " + writerLine(workers, res)
			fmt.Println(line)
			b.Log(line)
		})
	}
}

// TestLoneWriterBenchSmall runs BenchmarkLoneWriter's body at a small size
// and checks that every write it timed is a row in the table.
func TestLoneWriterBenchSmall(t *testing.T) {
	for _, workers := range []int{1, 4} {
		t.Run(fmt.Sprint(workers), func(t *testing.T) {
			const n = 60
			w := newWriterBench(t)
			res := w.writerRun(n, 2, workers)
			total := 0
			for _, p := range writerPhases {
				r := res[p.name]
				mustSucceed(t, p.name, r)
				if r.ok != n {
					t.Fatalf("%s: %d writes timed, want %d", p.name, r.ok, n)
				}
				total += r.ok
			}
			if got := w.raw.count(t, "SELECT COUNT(*) FROM settings WHERE key LIKE 'w%'"); got != total {
				t.Fatalf("%d rows written, want %d", got, total)
			}
			t.Log(writerLine(workers, res))
		})
	}
}
