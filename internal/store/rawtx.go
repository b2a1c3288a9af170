package store

import (
	"context"
	"database/sql"
	"sync"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"

	"github.com/shoalcrm/shoal/ent"
)

// Raw transactions.
//
// A library that writes in the caller's transaction (River's InsertTx)
// takes the *sql.Tx, which ent keeps to itself: an *ent.Tx has no accessor
// for the transaction it runs on. So every transaction the store begins is
// begun with a slot on its context; the store's drivers put the *sql.Tx
// they began into it (BeginTx sees the same context), and the store keeps
// it beside the *ent.Tx until the transaction ends. SQLTx looks it up.

type sqlTxSlotKey struct{}

// sqlTxSlot receives the *sql.Tx a driver begins.
type sqlTxSlot struct{ tx *sql.Tx }

// captureSQLTx puts the *sql.Tx under t into ctx's slot, if any.
func captureSQLTx(ctx context.Context, t dialect.Tx) {
	slot, _ := ctx.Value(sqlTxSlotKey{}).(*sqlTxSlot)
	if slot == nil {
		return
	}
	if et, ok := t.(*entsql.Tx); ok {
		slot.tx, _ = et.Tx.(*sql.Tx)
	}
}

// capturingDriver is the PostgreSQL ent driver: entsql.Driver, recording
// the *sql.Tx of every transaction it begins (see captureSQLTx).
type capturingDriver struct{ *entsql.Driver }

func (d capturingDriver) Tx(ctx context.Context) (dialect.Tx, error) { return d.BeginTx(ctx, nil) }

func (d capturingDriver) BeginTx(ctx context.Context, opts *sql.TxOptions) (dialect.Tx, error) {
	tx, err := d.Driver.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	captureSQLTx(ctx, tx)
	return tx, nil
}

// rawTxs maps the *ent.Tx of every running WithTx transaction to its
// *sql.Tx.
type rawTxs struct{ m sync.Map }

// begin begins a transaction on client, remembering its *sql.Tx until it
// commits or rolls back.
func (r *rawTxs) begin(ctx context.Context, client *ent.Client) (*ent.Tx, error) {
	slot := &sqlTxSlot{}
	tx, err := client.Tx(context.WithValue(ctx, sqlTxSlotKey{}, slot))
	if err != nil || slot.tx == nil {
		return tx, err
	}
	r.m.Store(tx, slot.tx)
	tx.OnCommit(func(next ent.Committer) ent.Committer {
		return ent.CommitFunc(func(ctx context.Context, tx *ent.Tx) error {
			defer r.m.Delete(tx)
			return next.Commit(ctx, tx)
		})
	})
	tx.OnRollback(func(next ent.Rollbacker) ent.Rollbacker {
		return ent.RollbackFunc(func(ctx context.Context, tx *ent.Tx) error {
			defer r.m.Delete(tx)
			return next.Rollback(ctx, tx)
		})
	})
	return tx, nil
}

// SQLTx returns the database/sql transaction under tx, a transaction body's
// argument, for libraries that write in the caller's transaction (River's
// InsertTx). On SQLite the transaction may be shared with other callers,
// each in a savepoint of its own (see WithTx): what is written through it
// belongs to the caller's savepoint like the rest of its work. ok is false
// for a transaction this store did not begin or that has ended.
func (s *Store) SQLTx(tx *ent.Tx) (stx *sql.Tx, ok bool) {
	v, ok := s.raw.m.Load(tx)
	if !ok {
		return nil, false
	}
	return v.(*sql.Tx), true
}
