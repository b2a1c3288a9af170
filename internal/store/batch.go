package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shoalcrm/shoal/ent"
)

// maxBatch bounds how many callers share one SQLite transaction.
const maxBatch = 64

// When fewer than coalesceMin callers are queued, the drainer waits
// coalesceWait once for more before it starts a transaction. Most of a commit's cost is its WAL
// frames (two write syscalls per page), and callers in one transaction
// share the hot pages (the right edge of history, events and audit, the
// counters), so fuller batches write fewer frames per caller: with 16
// concurrent claimers batches grew from 2.6 to 3.6 callers and throughput
// by about a tenth. The price is 200 µs more per write on an
// idle server, a fraction of what an HTTP request costs anyway.
const (
	coalesceWait = 200 * time.Microsecond
	coalesceMin  = 8
)

// batcher runs SQLite write transactions with group commit. SQLite has one
// writer, so write transactions run one after the other anyway; what each
// one costs on its own is BEGIN, COMMIT and the WAL frames the commit writes,
// which were a third of a claim. Callers that arrive while a transaction is
// running are queued, and the next transaction runs all of them, each inside
// a savepoint of its own: a caller that fails is rolled back to its
// savepoint and the others commit. Each caller still returns only after its
// own work is committed (or failed), and sees the effects of every caller
// that ran before it, so the outcome is the same as running them one after
// the other.
type batcher struct {
	client *ent.Client
	// committed is told of every commit (it schedules a checkpoint), and
	// ended of the end of every transaction, committed or not.
	committed func()
	ended     func()
	// afterCommit runs after every commit, once its callers have their
	// answer and before the next transaction begins (it bounds the WAL).
	afterCommit func()

	// asked counts the transactions ever asked for, so that a long
	// writer (the sweep) can tell whether others want the writer too.
	asked atomic.Uint64

	mu       sync.Mutex
	queue    []*txCall
	draining bool
	commits  int // only touched by the one drain goroutine
}

// txCall is one caller's transaction body and where it hears the outcome.
type txCall struct {
	ctx  context.Context
	fn   func(tx *ent.Tx) error
	err  error // fn's own error, or nil
	pan  any   // what fn panicked with
	done chan error
}

// panicked carries a panic of fn back to its caller's goroutine.
type panicked struct{ value any }

func (p panicked) Error() string { return fmt.Sprintf("transaction body panicked: %v", p.value) }

// run queues fn and waits for the transaction that runs it to end.
func (b *batcher) run(ctx context.Context, fn func(tx *ent.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &txCall{ctx: ctx, fn: fn, done: make(chan error, 1)}
	b.asked.Add(1)
	b.mu.Lock()
	b.queue = append(b.queue, c)
	if !b.draining {
		b.draining = true
		go b.drain()
	}
	b.mu.Unlock()
	err := <-c.done
	var p panicked
	if errors.As(err, &p) {
		panic(p.value)
	}
	return err
}

// drain runs queued callers, a transaction at a time, until none is left.
func (b *batcher) drain() {
	for {
		b.mu.Lock()
		if len(b.queue) < coalesceMin {
			b.mu.Unlock()
			time.Sleep(coalesceWait)
			b.mu.Lock()
		}
		n := min(len(b.queue), maxBatch)
		if n == 0 {
			b.draining = false
			b.mu.Unlock()
			return
		}
		calls := b.queue[:n:n]
		b.queue = b.queue[n:]
		b.mu.Unlock()
		b.runBatch(calls)
	}
}

// runBatch runs calls in one transaction and tells each how it ended.
func (b *batcher) runBatch(calls []*txCall) {
	if b.ended != nil {
		defer b.ended()
	}
	ctx := context.Background()
	tx, err := b.client.Tx(ctx)
	if err != nil {
		finish(calls, fmt.Errorf("begin transaction: %w", err))
		return
	}
	if len(calls) == 1 {
		// Alone in its transaction, a caller needs no savepoint: its
		// failure rolls back the transaction.
		b.runAlone(ctx, tx, calls[0])
		return
	}
	for i, c := range calls {
		if err := b.runOne(ctx, tx, c); err != nil {
			// The transaction itself is broken (a savepoint could not be
			// rolled back): nothing in it can be trusted.
			_ = tx.Rollback()
			finish(calls[:i+1], err)
			b.requeue(calls[i+1:])
			return
		}
	}
	b.commit(tx, calls)
}

// runAlone runs a single caller's body as the whole transaction.
func (b *batcher) runAlone(ctx context.Context, tx *ent.Tx, c *txCall) {
	if c.err = c.ctx.Err(); c.err == nil {
		c.err = body(c, tx)
	}
	if c.err != nil {
		_ = tx.Rollback()
		c.done <- c.err
		return
	}
	b.commit(tx, []*txCall{c})
}

// commit commits tx and tells each of calls how it ended.
func (b *batcher) commit(tx *ent.Tx, calls []*txCall) {
	if err := tx.Commit(); err != nil {
		finish(calls, fmt.Errorf("commit: %w", err))
		return
	}
	if b.committed != nil {
		b.commits++
		if b.commits%32 == 0 {
			b.committed()
		}
	}
	for _, c := range calls {
		c.done <- c.err
	}
	if b.afterCommit != nil {
		b.afterCommit()
	}
}

// runOne runs one caller's body inside a savepoint, undoing it if the body
// fails. Its own error is kept in c.err; the returned error means the
// transaction can no longer be used.
func (b *batcher) runOne(ctx context.Context, tx *ent.Tx, c *txCall) error {
	if err := c.ctx.Err(); err != nil {
		c.err = err
		return nil
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT call"); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	c.err = body(c, tx)
	if c.err != nil {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO call"); err != nil {
			return errors.Join(c.err, fmt.Errorf("rollback to savepoint: %w", err))
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE call"); err != nil {
		return errors.Join(c.err, fmt.Errorf("release savepoint: %w", err))
	}
	return nil
}

// body runs c.fn, turning a panic into an error its caller re-panics with.
func body(c *txCall, tx *ent.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicked{value: p}
		}
	}()
	return c.fn(tx)
}

// requeue puts calls that never ran back at the head of the queue.
func (b *batcher) requeue(calls []*txCall) {
	if len(calls) == 0 {
		return
	}
	b.mu.Lock()
	b.queue = append(append([]*txCall(nil), calls...), b.queue...)
	b.mu.Unlock()
}

func finish(calls []*txCall, err error) {
	for _, c := range calls {
		if c.err != nil {
			c.done <- c.err
			continue
		}
		c.done <- err
	}
}
