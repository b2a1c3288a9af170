package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/setting"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// batchHarness lines callers up behind a transaction that holds the SQLite
// writer, so that they are known to share the next transaction.
type batchHarness struct {
	s      *Store
	queued chan struct{} // a caller was queued
	txs    atomic.Int32  // transactions ended
}

func newBatchHarness(t *testing.T) *batchHarness {
	t.Helper()
	h := &batchHarness{s: openTemp(t), queued: make(chan struct{}, 256)}
	h.s.batch.queued = func() { h.queued <- struct{}{} }
	prev := h.s.batch.ended
	h.s.batch.ended = func() { h.txs.Add(1); prev() }
	return h
}

// hold starts a transaction whose body waits; it returns once the body
// runs. release lets it commit.
func (h *batchHarness) hold(t *testing.T) (release func()) {
	t.Helper()
	started, rel, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- h.s.WithTx(context.Background(), func(*ent.Tx) error {
			close(started)
			<-rel
			return nil
		})
	}()
	<-h.queued
	<-started
	return func() {
		close(rel)
		if err := <-done; err != nil {
			t.Errorf("holding transaction: %v", err)
		}
	}
}

// callers runs bodies[i] through WithTx with ctxs[i] (Background if nil),
// each on its own goroutine, and returns once all are queued; wait gives
// their results.
func (h *batchHarness) callers(ctxs []context.Context, bodies []func(tx *ent.Tx) error) (wait func() []error) {
	errs := make([]error, len(bodies))
	var wg sync.WaitGroup
	for i, fn := range bodies {
		ctx := context.Background()
		if i < len(ctxs) && ctxs[i] != nil {
			ctx = ctxs[i]
		}
		wg.Go(func() { errs[i] = h.s.WithTx(ctx, fn) })
		<-h.queued // one at a time, so they queue in order
	}
	return func() []error { wg.Wait(); return errs }
}

func putSetting(key string) func(tx *ent.Tx) error {
	return func(tx *ent.Tx) error {
		return tx.Setting.Create().SetID(key).SetValue(map[string]any{}).Exec(context.Background())
	}
}

func settingExists(t *testing.T, s *Store, key string) bool {
	t.Helper()
	n, err := s.Reader.Setting.Query().Where(setting.ID(key)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// One caller of a batch fails after writing: its savepoint is rolled back
// and it gets its own error, while the others, in the same transaction,
// commit.
func TestWithTxBatchFailingSavepoint(t *testing.T) {
	h := newBatchHarness(t)
	release := h.hold(t)
	errFail := errors.New("fails after writing")
	bodies := make([]func(*ent.Tx) error, 5)
	for i := range bodies {
		bodies[i] = putSetting(fmt.Sprintf("sp%d", i))
	}
	bodies[2] = func(tx *ent.Tx) error {
		if err := putSetting("sp2")(tx); err != nil {
			return err
		}
		return errFail
	}
	wait := h.callers(nil, bodies)
	release()
	errs := wait()
	for i, err := range errs {
		if i == 2 {
			if !errors.Is(err, errFail) || settingExists(t, h.s, "sp2") {
				t.Errorf("failing caller: err %v, row kept %v; want its error and no row", err, settingExists(t, h.s, "sp2"))
			}
			continue
		}
		if err != nil || !settingExists(t, h.s, fmt.Sprintf("sp%d", i)) {
			t.Errorf("caller %d: err %v, row %v; want committed", i, err, settingExists(t, h.s, fmt.Sprintf("sp%d", i)))
		}
	}
	if n := h.txs.Load(); n != 2 {
		t.Fatalf("%d transactions, want 2: the holder's and one for the whole batch", n)
	}
}

// COMMIT itself fails: every caller of the transaction gets the error and
// none of their work is visible, and the writer is usable afterwards.
//
// SQLite checks deferred foreign keys at COMMIT: a body that turns on
// defer_foreign_keys and inserts a row whose parent does not exist passes
// its statements and its savepoint, and fails the COMMIT (SQLite switches
// the pragma off again at the end of every transaction). Nothing Shoal
// runs defers foreign keys; this stands for the failures a COMMIT can
// really have (I/O errors, a full disk).
func TestWithTxFailedCommit(t *testing.T) {
	ctx := context.Background()
	poison := func(tx *ent.Tx) error {
		if _, err := tx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO fk_child (parent) VALUES (999)")
		return err
	}
	setup := func(t *testing.T) *batchHarness {
		h := newBatchHarness(t)
		if _, err := h.s.DB().ExecContext(ctx, `CREATE TABLE fk_parent (id INTEGER PRIMARY KEY);
			CREATE TABLE fk_child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES fk_parent (id))`); err != nil {
			t.Fatal(err)
		}
		return h
	}
	afterwards := func(t *testing.T, h *batchHarness) {
		t.Helper()
		var children int
		if err := h.s.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM fk_child").Scan(&children); err != nil || children != 0 {
			t.Errorf("%d child rows (%v), want none", children, err)
		}
		// The failed COMMIT must not leave the writer inside a
		// transaction that every later BEGIN would trip over.
		if err := h.s.WithTx(ctx, putSetting("after")); err != nil || !settingExists(t, h.s, "after") {
			t.Fatalf("write after the failed commit: %v", err)
		}
	}

	t.Run("batch", func(t *testing.T) {
		h := setup(t)
		release := h.hold(t)
		wait := h.callers(nil, []func(*ent.Tx) error{putSetting("c0"), poison, putSetting("c2"), putSetting("c3")})
		release()
		for i, err := range wait() {
			if !errors.Is(err, ErrCommit) {
				t.Errorf("caller %d: %v, want the commit's error", i, err)
			}
		}
		for _, k := range []string{"c0", "c2", "c3"} {
			if settingExists(t, h.s, k) {
				t.Errorf("%s visible after a failed commit", k)
			}
		}
		afterwards(t, h)
	})
	t.Run("alone", func(t *testing.T) {
		h := setup(t)
		if err := h.s.WithTx(ctx, poison); !errors.Is(err, ErrCommit) {
			t.Fatalf("err %v, want the commit's error", err)
		}
		afterwards(t, h)
	})
}

// A caller that breaks the shared transaction (here: it releases the
// batcher's savepoint itself, so the batcher cannot) fails with the
// callers before it, whose work is rolled back with the transaction; the
// callers after it never ran, so they are put back in the queue and commit
// in the next transaction. A caller whose context ends while it is queued
// does nothing and hears why.
func TestWithTxRequeue(t *testing.T) {
	h := newBatchHarness(t)
	release := h.hold(t)
	cancelled, cancel := context.WithCancel(context.Background())
	breaker := func(tx *ent.Tx) error {
		_, err := tx.ExecContext(context.Background(), "RELEASE call")
		return err
	}
	wait := h.callers(
		[]context.Context{nil, nil, cancelled, nil, nil},
		[]func(*ent.Tx) error{putSetting("before"), breaker, putSetting("cancelled"), putSetting("after1"), putSetting("after2")},
	)
	cancel()
	release()
	errs := wait()
	if errs[0] == nil || settingExists(t, h.s, "before") {
		t.Errorf("caller before the breaker: err %v, row %v; want failed with the transaction", errs[0], settingExists(t, h.s, "before"))
	}
	if errs[1] == nil {
		t.Error("the breaker succeeded")
	}
	if !errors.Is(errs[2], context.Canceled) || settingExists(t, h.s, "cancelled") {
		t.Errorf("cancelled caller: err %v, row %v", errs[2], settingExists(t, h.s, "cancelled"))
	}
	for i, k := range []string{"after1", "after2"} {
		if errs[3+i] != nil || !settingExists(t, h.s, k) {
			t.Errorf("requeued caller %s: err %v, row %v; want committed", k, errs[3+i], settingExists(t, h.s, k))
		}
	}
	if n := h.txs.Load(); n != 3 {
		t.Fatalf("%d transactions, want 3: the holder's, the broken one, the requeued callers'", n)
	}
}

// WithTx called from inside a transaction body fails at once with
// ErrNestedTx on both engines (on SQLite it used to deadlock), the inner
// body never runs, and the outer transaction, failed by that error, leaves
// nothing. Callers on other goroutines that share the context are not
// nested, even while a body runs.
func TestWithTxNested(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		type key struct{}
		tests := []struct {
			name  string
			inner func(ctx context.Context, fn func(*ent.Tx) error) error
		}{
			{"same context", func(ctx context.Context, fn func(*ent.Tx) error) error { return s.WithTx(ctx, fn) }},
			{"derived context", func(ctx context.Context, fn func(*ent.Tx) error) error {
				ctx, cancel := context.WithTimeout(context.WithValue(ctx, key{}, 1), time.Minute)
				defer cancel()
				return s.WithTx(ctx, fn)
			}},
			{"retrying", func(ctx context.Context, fn func(*ent.Tx) error) error { return s.WithRetryTx(ctx, fn) }},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				outerKey, innerKey := fmt.Sprintf("outer%d", i), fmt.Sprintf("inner%d", i)
				innerRan := false
				var innerErr error
				done := make(chan error, 1)
				go func() {
					done <- s.WithTx(ctx, func(tx *ent.Tx) error {
						if err := putSetting(outerKey)(tx); err != nil {
							return err
						}
						innerErr = tt.inner(ctx, func(tx *ent.Tx) error {
							innerRan = true
							return putSetting(innerKey)(tx)
						})
						return innerErr
					})
				}()
				var outerErr error
				select {
				case outerErr = <-done:
				case <-time.After(30 * time.Second):
					t.Fatal("nested WithTx deadlocked")
				}
				if !errors.Is(innerErr, ErrNestedTx) || innerRan {
					t.Errorf("inner call: err %v, body ran %v; want ErrNestedTx and not run", innerErr, innerRan)
				}
				if !errors.Is(outerErr, ErrNestedTx) || settingExists(t, s, outerKey) || settingExists(t, s, innerKey) {
					t.Errorf("outer call: err %v, rows %v/%v; want ErrNestedTx and nothing committed", outerErr, settingExists(t, s, outerKey), settingExists(t, s, innerKey))
				}
			})
		}

		t.Run("sibling sharing the context", func(t *testing.T) {
			inBody, rel := make(chan struct{}), make(chan struct{})
			done := make(chan error, 1)
			go func() {
				done <- s.WithTx(ctx, func(tx *ent.Tx) error {
					close(inBody)
					<-rel
					return putSetting("holder")(tx)
				})
			}()
			<-inBody
			sibling := make(chan error, 1)
			go func() { sibling <- s.WithTx(ctx, putSetting("sibling")) }()
			if s.batch == nil {
				// PostgreSQL: the sibling has a transaction of its own
				// and need not wait for the holder.
				if err := <-sibling; err != nil {
					t.Fatalf("sibling: %v", err)
				}
			}
			close(rel)
			if err := <-done; err != nil {
				t.Fatalf("holder: %v", err)
			}
			if s.batch != nil {
				if err := <-sibling; err != nil {
					t.Fatalf("sibling: %v", err)
				}
			}
			if !settingExists(t, s, "holder") || !settingExists(t, s, "sibling") {
				t.Fatal("a transaction sharing the context did not commit")
			}
		})
	})
}
