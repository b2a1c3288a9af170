package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/shoalcrm/shoal/ent"
)

// Held transactions.
//
// A request made with an Idempotency-Key must store its answer in the same
// transaction as its change, so that a crash can never leave the one
// without the other. But the answer (status, headers, body) is built by the
// handler from what the service returns, and the service returns only once
// WithTx has committed. A Hold turns that around for one request: the
// first WithTx whose context carries the hold runs its body (and the
// observers: the audit row) as usual, then keeps the transaction open and
// returns nil to its caller, as if committed. The request goes on; any
// later WithTx of the same request joins the held transaction (in a
// savepoint of its own, so its failure undoes only itself). When the
// handler has answered, Finish writes the answer into the transaction and
// commits it, and only then is the answer sent: the client never sees an
// answer whose change did not commit, and no change commits without its
// answer.
//
// On SQLite the held body runs in the batcher's transaction like any
// other; the transaction's other callers wait for this request's handler to
// answer (microseconds: rendering a response). Work that does not fit in
// one transaction (the sweep) must not run under a hold.
//
// A context carrying a hold must be used by one goroutine at a time (the
// request's), and must not be handed to a WithTx without the hold while
// the hold is held: on SQLite that waits for the writer the hold keeps.

// ErrHoldAborted is what a held transaction ends with when the request
// gives it up (Finish with no last write): it rolls back.
var ErrHoldAborted = errors.New("held transaction given up")

type holdState int

const (
	holdIdle     holdState = iota // no transaction yet
	holdStarting                  // the first body is running
	holdHeld                      // the body succeeded; the transaction waits for Finish
	holdClosed                    // Finish was called: WithTx runs on its own again
)

// Hold is one request's held transaction (see above).
type Hold struct {
	s *Store

	mu     sync.Mutex
	state  holdState
	tx     *ent.Tx
	sqlTx  *sql.Tx
	finish chan func(tx *ent.Tx) error
	done   chan error
	joins  int
}

// NewHold returns a hold for one request; put it on the request's context
// with WithHold and end it with Finish.
func (s *Store) NewHold() *Hold { return &Hold{s: s} }

type holdKey struct{}

// WithHold returns ctx carrying h: the first WithTx under it is held.
func WithHold(ctx context.Context, h *Hold) context.Context {
	return context.WithValue(ctx, holdKey{}, h)
}

// WithoutHold returns ctx carrying no hold.
func WithoutHold(ctx context.Context) context.Context {
	return context.WithValue(ctx, holdKey{}, (*Hold)(nil))
}

func holdFrom(ctx context.Context) *Hold {
	h, _ := ctx.Value(holdKey{}).(*Hold)
	return h
}

// Held reports whether a transaction is held, waiting for Finish.
func (h *Hold) Held() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.state == holdHeld
}

// Finish ends the hold. If a transaction is held, last (if not nil) runs
// inside it and the transaction commits; with last nil, or if last fails,
// it rolls back. held reports whether there was a transaction, and err is
// how it ended (nil: committed). Later WithTx calls under the hold's
// context run on their own.
func (h *Hold) Finish(last func(tx *ent.Tx) error) (held bool, err error) {
	h.mu.Lock()
	st := h.state
	h.state = holdClosed
	h.mu.Unlock()
	if st != holdHeld {
		return false, nil
	}
	h.finish <- last
	return true, <-h.done
}

// withHold runs fn as WithTx would under h: the first body holds its
// transaction, later ones join it. handled is false when h no longer
// holds anything (closed, or busy starting on another goroutine): the
// caller runs fn on its own.
func (h *Hold) withHold(ctx context.Context, fn func(tx *ent.Tx) error) (handled bool, err error) {
	h.mu.Lock()
	switch h.state {
	case holdHeld:
		tx := h.tx
		h.joins++
		sp := fmt.Sprintf("held_join_%d", h.joins)
		h.mu.Unlock()
		return true, h.join(ctx, tx, sp, fn)
	case holdIdle:
		h.state = holdStarting
		h.mu.Unlock()
		return true, h.start(ctx, fn)
	default:
		h.mu.Unlock()
		return false, nil
	}
}

// start runs fn in a new transaction and, once it succeeded, keeps the
// transaction open: it returns nil while the transaction waits for Finish.
func (h *Hold) start(ctx context.Context, fn func(tx *ent.Tx) error) error {
	wrapped, end := observed(ctx, fn)
	ready := make(chan *ent.Tx, 1)
	finish := make(chan func(tx *ent.Tx) error, 1)
	done := make(chan error, 1)
	body := framed(func(tx *ent.Tx) error {
		if err := wrapped(tx); err != nil {
			return err
		}
		ready <- tx
		last := <-finish
		if last == nil {
			return ErrHoldAborted
		}
		return last(tx)
	})
	h.mu.Lock()
	h.finish, h.done = finish, done
	h.mu.Unlock()
	outcome := make(chan error, 1)
	go func() {
		var err error
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("%w: %v", errPanicked, p)
			}
			end(err)
			outcome <- err
		}()
		if h.s.batch != nil {
			err = h.s.batch.run(ctx, body)
		} else {
			err = h.s.withOwnTx(ctx, body)
		}
	}()
	select {
	case tx := <-ready:
		stx, _ := h.s.SQLTx(tx)
		h.mu.Lock()
		h.tx, h.sqlTx, h.state = tx, stx, holdHeld
		h.mu.Unlock()
		// The transaction's end reaches Finish through done.
		go func() { done <- <-outcome }()
		return nil
	case err := <-outcome:
		// The body failed (or the transaction did): nothing is held, and
		// a retry may hold again.
		h.mu.Lock()
		if h.state == holdStarting {
			h.state = holdIdle
		}
		h.mu.Unlock()
		return err
	}
}

// join runs fn inside the held transaction, in a savepoint of its own.
func (h *Hold) join(ctx context.Context, tx *ent.Tx, sp string, fn func(tx *ent.Tx) error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+sp); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	err := framed(fn)(tx)
	if err != nil {
		if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO "+sp); rerr != nil {
			return errors.Join(err, fmt.Errorf("rollback to savepoint: %w", rerr))
		}
	}
	if _, rerr := tx.ExecContext(ctx, "RELEASE "+sp); rerr != nil {
		return errors.Join(err, fmt.Errorf("release savepoint: %w", rerr))
	}
	return err
}

// heldSQLTx is the transaction ctx's hold keeps open for s, if any.
func heldSQLTx(ctx context.Context, s *Store) (*sql.Tx, bool) {
	h := holdFrom(ctx)
	if h == nil || h.s != s {
		return nil, false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state != holdHeld || h.sqlTx == nil {
		return nil, false
	}
	return h.sqlTx, true
}

// holdingDriver is the driver under both of a store's clients: a statement
// run outside a transaction by a request whose transaction is held runs in
// that transaction instead. The request's later reads (a service reading
// back through Reader what it just wrote) then see its uncommitted change,
// as they would have seen it committed; and on SQLite, a statement on the
// one write connection does not wait for the transaction that keeps it.
type holdingDriver struct {
	dialect.Driver
	s *Store
}

func (d *holdingDriver) Exec(ctx context.Context, query string, args, v any) error {
	if stx, ok := heldSQLTx(ctx, d.s); ok {
		return entsql.Conn{ExecQuerier: stx}.Exec(context.WithoutCancel(ctx), query, args, v)
	}
	return d.Driver.Exec(ctx, query, args, v)
}

func (d *holdingDriver) Query(ctx context.Context, query string, args, v any) error {
	if stx, ok := heldSQLTx(ctx, d.s); ok {
		return entsql.Conn{ExecQuerier: stx}.Query(context.WithoutCancel(ctx), query, args, v)
	}
	return d.Driver.Query(ctx, query, args, v)
}

// ExecContext and QueryContext serve ent's Client.ExecContext and
// QueryContext (the sql/execquery feature), held like Exec and Query.
func (d *holdingDriver) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if stx, ok := heldSQLTx(ctx, d.s); ok {
		return stx.ExecContext(context.WithoutCancel(ctx), query, args...)
	}
	e, ok := d.Driver.(interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	})
	if !ok {
		return nil, fmt.Errorf("driver %T has no ExecContext", d.Driver)
	}
	return e.ExecContext(ctx, query, args...)
}

func (d *holdingDriver) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if stx, ok := heldSQLTx(ctx, d.s); ok {
		return stx.QueryContext(context.WithoutCancel(ctx), query, args...)
	}
	q, ok := d.Driver.(interface {
		QueryContext(context.Context, string, ...any) (*sql.Rows, error)
	})
	if !ok {
		return nil, fmt.Errorf("driver %T has no QueryContext", d.Driver)
	}
	return q.QueryContext(ctx, query, args...)
}

// BeginTx begins a transaction as the driver under it does (ent's
// Client.BeginTx asks for it).
func (d *holdingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	b, ok := d.Driver.(interface {
		BeginTx(context.Context, *sql.TxOptions) (dialect.Tx, error)
	})
	if !ok {
		return d.Driver.Tx(ctx)
	}
	return b.BeginTx(ctx, opts)
}
