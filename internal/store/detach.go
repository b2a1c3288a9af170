package store

import (
	"context"
	"database/sql"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
)

// detachedDriver is the SQLite writer's ent driver. It runs every
// statement without its caller's cancellation: for a context that can end,
// modernc.org/sqlite starts a goroutine per statement to interrupt it, and
// database/sql another per query to close its rows, and on the one writer
// that every write waits for, those were a share of each write's time. A
// write transaction's statements are short, and the batcher checks the
// caller's context before it runs the caller's body; a caller gone after
// that finds its work committed, as if it had left a moment later.
type detachedDriver struct{ *entsql.Driver }

func (d detachedDriver) Exec(ctx context.Context, query string, args, v any) error {
	return d.Driver.Exec(context.WithoutCancel(ctx), query, args, v)
}

func (d detachedDriver) Query(ctx context.Context, query string, args, v any) error {
	return d.Driver.Query(context.WithoutCancel(ctx), query, args, v)
}

func (d detachedDriver) Tx(ctx context.Context) (dialect.Tx, error) { return d.BeginTx(ctx, nil) }

func (d detachedDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := d.Driver.BeginTx(context.WithoutCancel(ctx), opts)
	if err != nil {
		return nil, err
	}
	captureSQLTx(ctx, tx)
	return detachedTx{tx.(*entsql.Tx)}, nil
}

// detachedTx is a transaction of detachedDriver.
type detachedTx struct{ *entsql.Tx }

func (t detachedTx) Exec(ctx context.Context, query string, args, v any) error {
	return t.Tx.Exec(context.WithoutCancel(ctx), query, args, v)
}

func (t detachedTx) Query(ctx context.Context, query string, args, v any) error {
	return t.Tx.Query(context.WithoutCancel(ctx), query, args, v)
}

func (t detachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return t.Tx.ExecContext(context.WithoutCancel(ctx), query, args...)
}

func (t detachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.Tx.QueryContext(context.WithoutCancel(ctx), query, args...)
}
