package jobs_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/store"
)

// TestMeasureSQLiteSharing is the measurement behind docs/jobs.md, not a
// test: it runs only with SHOAL_MEASURE_RIVER=1. Eight writers run small
// write transactions through the store's writer while River, on the same
// file, inserts and works no-op jobs; once with River on the store's
// writer connection, once on a connection of its own, once without River;
// River idle (polling, electing, maintaining) and River busy (inserting and
// working 400 jobs one by one meanwhile).
func TestMeasureSQLiteSharing(t *testing.T) {
	if os.Getenv("SHOAL_MEASURE_RIVER") != "1" {
		t.Skip("a measurement: set SHOAL_MEASURE_RIVER=1")
	}
	for _, mode := range []string{"none", "shared", "own"} {
		for _, jobs := range []int{0, 400} {
			if mode == "none" && jobs > 0 {
				continue
			}
			for range 3 {
				t.Run(fmt.Sprint(mode, jobs), func(t *testing.T) { measure(t, mode, jobs) })
			}
		}
	}
}

type noopArgs struct{ N int }

func (noopArgs) Kind() string { return "noop" }

type noopWorker struct {
	river.WorkerDefaults[noopArgs]
	done *atomic.Int64
}

func (w *noopWorker) Work(context.Context, *river.Job[noopArgs]) error {
	w.done.Add(1)
	return nil
}

func measure(t *testing.T, mode string, jobs int) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	st, err := store.Open(ctx, "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().ExecContext(ctx, "CREATE TABLE bench (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	var done atomic.Int64
	var jobErrs atomic.Int64
	var client *river.Client[*sql.Tx]
	if mode != "none" {
		db := st.DB()
		if mode == "own" {
			db, err = sql.Open("sqlite", "file:"+strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(path)+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_txlock=immediate&_time_format=sqlite")
			if err != nil {
				t.Fatal(err)
			}
			db.SetMaxOpenConns(1)
			defer db.Close()
		}
		workers := river.NewWorkers()
		river.AddWorker(workers, &noopWorker{done: &done})
		client, err = river.NewClient(riversqlite.New(db), &river.Config{
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollOnly: true,
			FetchPollInterval: 100 * time.Millisecond, FetchCooldown: 100 * time.Millisecond,
			Queues:       map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4}},
			Workers:      workers,
			ErrorHandler: errCounter{&jobErrs},
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = client.Stop(ctx) }()
		// Past River's start (election, maintenance services starting):
		// the steady state is what is measured.
		time.Sleep(5 * time.Second)
	}

	const writers, perWriter = 8, 250
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lat []time.Duration
	var writeErrs atomic.Int64
	start := time.Now()
	if client != nil && jobs > 0 {
		// River's own inserts, outside Shoal's transactions.
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				if _, err := client.Insert(ctx, noopArgs{N: i}, nil); err != nil {
					jobErrs.Add(1)
				}
			}
		}()
	}
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				t0 := time.Now()
				err := st.WithTx(ctx, func(tx *ent.Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO bench (v) VALUES (?)", fmt.Sprint(w, i))
					return err
				})
				d := time.Since(t0)
				if err != nil {
					writeErrs.Add(1)
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	writesTook := time.Since(start)
	if client != nil {
		deadline := time.Now().Add(60 * time.Second)
		for done.Load() < int64(jobs) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	t.Logf("mode=%s jobs=%d writes=%d in %s (%.0f/s) p50=%s p99=%s max=%s writeErrors=%d | jobs worked=%d/%d in %s jobErrors=%d",
		mode, jobs, len(lat), writesTook.Round(time.Millisecond), float64(len(lat))/writesTook.Seconds(),
		q(0.5).Round(time.Microsecond), q(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond), writeErrs.Load(),
		done.Load(), jobs, time.Since(start).Round(time.Millisecond), jobErrs.Load())
}

type errCounter struct{ n *atomic.Int64 }

func (e errCounter) HandleError(context.Context, *rivertype.JobRow, error) *river.ErrorHandlerResult {
	e.n.Add(1)
	return nil
}

func (e errCounter) HandlePanic(context.Context, *rivertype.JobRow, any, string) *river.ErrorHandlerResult {
	e.n.Add(1)
	return nil
}
