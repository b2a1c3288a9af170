package store

import (
	"context"
	"testing"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/setting"
)

// Once a caller's body has started on the SQLite writer, the caller's
// context no longer interrupts its statements: the body runs to its end
// and commits, as if the caller had gone a moment after the commit.
func TestWriterStatementsOutliveCallerContext(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := s.WithTx(ctx, func(tx *ent.Tx) error {
		cancel()
		if err := tx.Setting.Create().SetID("after-cancel").SetValue(map[string]any{}).Exec(ctx); err != nil {
			return err
		}
		_, err := tx.Setting.Query().Where(setting.ID("after-cancel")).Only(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("body with a cancelled context: %v", err)
	}
	n, err := s.Reader.Setting.Query().Where(setting.ID("after-cancel")).Count(context.Background())
	if err != nil || n != 1 {
		t.Fatalf("%d rows committed (%v), want 1", n, err)
	}
}
