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

// When the last transaction had company (more than one caller, or callers
// who asked for the writer while it ran) and fewer than coalesceMin
// callers are queued, the next transaction waits up to coalesceWait for
// more, or until coalesceMin are queued. Most of a commit's cost is its WAL
// frames (two write syscalls per page), and callers in one transaction
// share the hot pages (the right edge of history, events and audit, the
// counters), so fuller batches write fewer frames per caller: with 16
// concurrent claimers batches grew from 2.6 to 3.6 callers and throughput
// by about a tenth.
//
// The wait is only worth it when others are on their way, and it is not
// short: Go rounds a 200 µs timer up to about 1.2 ms on Linux, and when
// every transaction waited, a lone sequential writer paid that on every
// write (about 800 writes/s at most). A lone writer's transactions have no
// company, so it never waits. "Asked while it ran" is counted before the
// transaction's callers are answered, so a caller's own next write does
// not count; and the last transaction's company is remembered across an
// idle writer, since a crowd answered all at once comes back all at once.
// The first write after a busy spell pays the wait once.
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
	// begin begins a transaction on client (Store.raw.begin, so that
	// SQLTx finds it); nil means client.Tx.
	begin func(context.Context, *ent.Client) (*ent.Tx, error)
	// committed is told of every commit (it schedules a checkpoint), and
	// ended of the end of every transaction, committed or not.
	committed func()
	ended     func()
	// afterCommit runs after every commit, once its callers have their
	// answer and before the next transaction begins (it bounds the WAL).
	afterCommit func()

	// queued, if set (by tests), is called once a caller is queued.
	queued func()

	// asked counts the transactions ever asked for, so that a long
	// writer (the sweep) can tell whether others want the writer too.
	asked atomic.Uint64

	mu       sync.Mutex
	queue    []*txCall
	draining bool
	// more, when not nil, is closed by the caller that brings the queue
	// to coalesceMin while the drainer waits for more.
	more chan struct{}
	// contended is whether the last transaction had company: more than
	// one caller, or callers who asked while it ran. It survives the
	// writer going idle, since a crowd answered all at once comes back
	// all at once.
	contended bool
	commits   int // only touched by whoever runs the transaction
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
	if b.more != nil && len(b.queue) >= coalesceMin {
		close(b.more)
		b.more = nil
	}
	lead := !b.draining
	b.draining = true
	b.mu.Unlock()
	if b.queued != nil {
		b.queued()
	}
	if lead {
		// The writer was idle, so the queue holds this caller first: run
		// that transaction on this goroutine rather than hand it to
		// another (a goroutine start and two switches, a good part of
		// what a lone write costs beyond its SQL), and leave whoever
		// queued meanwhile to a drain goroutine.
		b.step()
		b.mu.Lock()
		if len(b.queue) == 0 {
			b.draining = false
			b.mu.Unlock()
		} else {
			b.mu.Unlock()
			go b.drain()
		}
	}
	err := <-c.done
	var p panicked
	if errors.As(err, &p) {
		panic(p.value)
	}
	return err
}

// drain runs queued callers, a transaction at a time, until none is left.
func (b *batcher) drain() {
	for b.step() {
	}
}

// step runs the next transaction of queued callers, first waiting for more
// if the last one was contended (see coalesceWait). With none queued it
// clears draining and reports false.
func (b *batcher) step() bool {
	b.mu.Lock()
	if b.contended && len(b.queue) < coalesceMin {
		b.waitForMore()
	}
	n := min(len(b.queue), maxBatch)
	if n == 0 {
		b.draining = false
		b.mu.Unlock()
		return false
	}
	calls := b.queue[:n:n]
	b.queue = b.queue[n:]
	b.mu.Unlock()
	arrived := b.runBatch(calls)
	b.mu.Lock()
	b.contended = arrived || n > 1
	b.mu.Unlock()
	return true
}

// waitForMore waits, with b.mu held on entry and on return, until
// coalesceMin callers are queued or coalesceWait has passed.
func (b *batcher) waitForMore() {
	more := make(chan struct{})
	b.more = more
	b.mu.Unlock()
	t := time.NewTimer(coalesceWait)
	select {
	case <-more:
		t.Stop()
	case <-t.C:
	}
	b.mu.Lock()
	b.more = nil
}

// runBatch runs calls in one transaction and tells each how it ended. It
// reports whether anyone asked for the writer while the transaction ran.
func (b *batcher) runBatch(calls []*txCall) (contended bool) {
	if b.ended != nil {
		defer b.ended()
	}
	asked := b.asked.Load()
	// Read once the transaction is over but before its callers hear of
	// it: the next write of a caller answered here must not count.
	arrived := func() bool { return b.asked.Load() != asked }

	ctx := context.Background()
	var tx *ent.Tx
	var err error
	if b.begin != nil {
		tx, err = b.begin(ctx, b.client)
	} else {
		tx, err = b.client.Tx(ctx)
	}
	if err != nil {
		contended = arrived()
		finish(calls, fmt.Errorf("begin transaction: %w", err))
		return contended
	}
	if len(calls) == 1 {
		// Alone in its transaction, a caller needs no savepoint: its
		// failure rolls back the transaction.
		c := calls[0]
		if c.err = c.ctx.Err(); c.err == nil {
			c.err = body(c, tx)
		}
		if c.err != nil {
			_ = tx.Rollback()
			contended = arrived()
			c.done <- c.err
			return contended
		}
		return b.commit(tx, calls, arrived)
	}
	for i, c := range calls {
		if err := b.runOne(ctx, tx, c); err != nil {
			// The transaction itself is broken (a savepoint could not be
			// rolled back or released): nothing in it can be trusted. The
			// callers that ran in it fail with it; those that did not run
			// yet go first in the next transaction.
			_ = tx.Rollback()
			b.requeue(calls[i+1:])
			contended = arrived()
			finish(calls[:i+1], err)
			return contended
		}
	}
	return b.commit(tx, calls, arrived)
}

// commit commits tx and tells each of calls how it ended.
func (b *batcher) commit(tx *ent.Tx, calls []*txCall, arrived func() bool) (contended bool) {
	if err := tx.Commit(); err != nil {
		contended = arrived()
		finish(calls, fmt.Errorf("%w: %w", ErrCommit, err))
		return contended
	}
	contended = arrived()
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
	return contended
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
