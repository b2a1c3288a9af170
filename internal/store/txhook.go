package store

import (
	"context"
	"errors"

	"github.com/shoalcrm/shoal/ent"
)

// TxObserver is told of every transaction run through WithTx with a
// context that carries it (see WithTxObserver). It lets a layer above the
// domain code add its own rows to whatever transaction that code runs,
// without the domain code knowing: the audit trail writes a request's audit
// row in the same transaction as the change it records.
type TxObserver interface {
	// BodyStarts is called inside the transaction just before the body
	// runs (again, when WithRetryTx runs it again).
	BodyStarts(ctx context.Context)
	// BeforeCommit runs inside the transaction, after the body passed to
	// WithTx succeeded and before the commit (on SQLite inside the caller's
	// savepoint, so it shares the caller's fate and no one else's). An
	// error rolls the caller's work back and is what WithTx returns. The
	// returned function, if not nil, is called once the transaction has
	// ended, with whether it committed.
	BeforeCommit(ctx context.Context, tx *ent.Tx) (ended func(committed bool), err error)
}

type txObserverKey struct{}

// errPanicked stands for WithTx's outcome when its body panicked.
var errPanicked = errors.New("transaction body panicked")

// WithTxObserver returns ctx carrying obs; a nil obs removes any observer
// ctx carries (for work that must not be observed, such as the observer's
// own writes).
func WithTxObserver(ctx context.Context, obs TxObserver) context.Context {
	return context.WithValue(ctx, txObserverKey{}, obs)
}

func txObserverFrom(ctx context.Context) TxObserver {
	obs, _ := ctx.Value(txObserverKey{}).(TxObserver)
	return obs
}

// observed wraps fn so that ctx's observer, if any, runs after it inside
// the transaction. The returned end must be called with WithTx's result.
func observed(ctx context.Context, fn func(tx *ent.Tx) error) (wrapped func(tx *ent.Tx) error, end func(err error)) {
	obs := txObserverFrom(ctx)
	if obs == nil {
		return fn, func(error) {}
	}
	var ended func(committed bool)
	wrapped = func(tx *ent.Tx) error {
		obs.BodyStarts(ctx)
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		ended, err = obs.BeforeCommit(ctx, tx)
		return err
	}
	end = func(err error) {
		if ended != nil {
			// WithTx returns nil exactly when the transaction that ran
			// fn committed.
			ended(err == nil)
		}
	}
	return wrapped, end
}
