package store

import (
	"errors"
	"runtime"
	"sync/atomic"

	"github.com/shoalcrm/shoal/ent"
)

// ErrNestedTx is what WithTx returns when it is called from inside the body
// of another transaction: a programming error. On SQLite the inner call
// would wait for the one writer, which the outer transaction holds while it
// waits for the inner call: a deadlock. On PostgreSQL it would open a
// second transaction on a second connection, which can wait for row locks
// the first holds (a deadlock the server never detects, since one side
// waits in Go) or, with enough requests doing it, empty the pool. The fix
// is always the same: pass the tx down instead of calling WithTx again.
var ErrNestedTx = errors.New("WithTx called inside a transaction body")

// ErrCommit wraps the error of a COMMIT that failed: none of the
// transaction's work was kept (on SQLite, that of every caller sharing it).
var ErrCommit = errors.New("commit")

// Detecting nesting.
//
// A context marker cannot do it: fn gets no context, so the inner call
// gets the very context the outer call got, which other goroutines may
// share (context.Background, a server's base context) and legitimately
// pass to WithTx at the same moment. What does tell nesting apart is the
// goroutine: a nested call is made by the goroutine running a body (on
// SQLite whichever goroutine runs the batch, on PostgreSQL the caller),
// from inside it. Every body runs under txFrame, a function that only calls
// it, so a goroutine is inside a body exactly when txFrame's return address
// is on its stack. Walking the stack costs about a microsecond per twenty
// frames, so WithTx only looks when a body of this store is running at all
// (runningBodies > 0): a lone writer never pays for it.
//
// Not caught: a body that starts another goroutine and waits for it to
// call WithTx (on SQLite that deadlocks all the same).

// txFrameReturn is the return address of txFrame's call of its body, the
// address found on the stack of a goroutine inside a body.
var txFrameReturn = func() uintptr {
	var pc uintptr
	_ = txFrame(func(*ent.Tx) error {
		var pcs [1]uintptr
		// Skip runtime.Callers and this function: the next frame is
		// txFrame, at the instruction after its call.
		if runtime.Callers(2, pcs[:]) == 1 {
			pc = pcs[0]
		}
		return nil
	}, nil)
	return pc
}()

// txFrame runs fn. It must not be inlined and must call fn exactly once,
// so that the call has one return address (see txFrameReturn).
//
//go:noinline
func txFrame(fn func(tx *ent.Tx) error, tx *ent.Tx) error {
	return fn(tx)
}

// insideTxBody reports whether the calling goroutine is running a
// transaction body (of any store: a body has no business opening a
// transaction elsewhere either).
func insideTxBody() bool {
	if txFrameReturn == 0 {
		return false
	}
	var pcs [64]uintptr
	// Skip runtime.Callers and insideTxBody; then walk the whole stack,
	// a buffer at a time.
	for skip := 2; ; skip += len(pcs) {
		n := runtime.Callers(skip, pcs[:])
		for _, pc := range pcs[:n] {
			if pc == txFrameReturn {
				return true
			}
		}
		if n < len(pcs) {
			return false
		}
	}
}

// runningBodies counts the transaction bodies running in this process.
var runningBodies atomic.Int64

// framed returns fn to be run under txFrame and counted while it runs.
func framed(fn func(tx *ent.Tx) error) func(tx *ent.Tx) error {
	return func(tx *ent.Tx) error {
		runningBodies.Add(1)
		defer runningBodies.Add(-1)
		return txFrame(fn, tx)
	}
}

// nestedTx reports whether a WithTx called now is called from inside a
// body.
func nestedTx() bool {
	return runningBodies.Load() > 0 && insideTxBody()
}
