package store

import (
	"context"
	"errors"
	"testing"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/setting"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// holdStores are a SQLite store and a PostgreSQL one, migrated.
func holdStores(t *testing.T) map[string]*Store {
	pg, err := Open(context.Background(), testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Close() })
	if err := pg.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return map[string]*Store{"sqlite": openTemp(t), "postgres": pg}
}

// A held transaction: its first body's work is visible to the request
// (through tx, a later WithTx, and Reader under the request's context) but
// not to anyone else until Finish commits it with the last write; a later
// body that fails undoes only itself; Finish(nil) undoes everything; a
// first body that fails holds nothing, and its retry may hold.
func TestHoldKeepsTheTransactionForTheAnswer(t *testing.T) {
	for name, s := range holdStores(t) {
		t.Run(name, func(t *testing.T) {
			bg := context.Background()
			exists := func(ctx context.Context, key string) bool {
				ok, err := s.Reader.Setting.Query().Where(setting.ID(key)).Exist(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return ok
			}
			put := func(key string) func(tx *ent.Tx) error {
				return func(tx *ent.Tx) error {
					return tx.Setting.Create().SetID(key).SetValue(map[string]any{}).Exec(bg)
				}
			}
			errBody := errors.New("body fails")
			for _, commit := range []bool{true, false} {
				h := s.NewHold()
				ctx := WithHold(bg, h)
				p := name + map[bool]string{true: "-c-", false: "-r-"}[commit]
				if err := s.WithTx(ctx, func(tx *ent.Tx) error { _ = put(p + "failed")(tx); return errBody }); !errors.Is(err, errBody) || h.Held() {
					t.Fatalf("failing first body: %v, held %v", err, h.Held())
				}
				if err := s.WithRetryTx(ctx, put(p+"first")); err != nil || !h.Held() {
					t.Fatalf("first body: %v, held %v", err, h.Held())
				}
				if err := s.WithTx(ctx, put(p+"joined")); err != nil {
					t.Fatal(err)
				}
				if err := s.WithTx(ctx, func(tx *ent.Tx) error { _ = put(p + "undone")(tx); return errBody }); !errors.Is(err, errBody) {
					t.Fatalf("failing joined body: %v", err)
				}
				if !exists(ctx, p+"first") || !exists(ctx, p+"joined") || exists(ctx, p+"undone") {
					t.Fatal("the request does not see its own held work")
				}
				if exists(bg, p+"first") {
					t.Fatal("held work visible to others before the commit")
				}
				var last func(tx *ent.Tx) error
				if commit {
					last = put(p + "answer")
				}
				held, err := h.Finish(last)
				if !held || (commit && err != nil) || (!commit && !errors.Is(err, ErrHoldAborted)) {
					t.Fatalf("finish: held %v, %v", held, err)
				}
				for _, k := range []string{"first", "joined", "answer"} {
					if exists(bg, p+k) != commit {
						t.Fatalf("%s%s exists %v after finish(commit %v)", p, k, !commit, commit)
					}
				}
				if exists(bg, p+"failed") || exists(bg, p+"undone") {
					t.Fatal("failed bodies left work behind")
				}
				// Closed: WithTx commits on its own again.
				if err := s.WithTx(ctx, put(p+"after")); err != nil || !exists(bg, p+"after") {
					t.Fatalf("after finish: %v", err)
				}
			}
		})
	}
}
