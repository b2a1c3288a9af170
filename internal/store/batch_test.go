package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/setting"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// Callers that share a transaction keep their own outcome: a failing or
// panicking caller leaves no trace, the others commit, and read-modify-write
// sequences of concurrent callers never lose an update.
func TestWithTxGroupsCallersAndIsolatesThem(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	if err := s.WithTx(ctx, func(tx *ent.Tx) error {
		return tx.Setting.Create().SetID("counter").SetValue(map[string]any{"n": 0}).Exec(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	errOdd := errors.New("odd callers fail after writing")
	const callers = 64
	var wg sync.WaitGroup
	errs := make([]error, callers)
	panics := make([]any, callers)
	for i := range callers {
		wg.Go(func() {
			defer func() { panics[i] = recover() }()
			errs[i] = s.WithTx(ctx, func(tx *ent.Tx) error {
				c, err := tx.Setting.Get(ctx, "counter")
				if err != nil {
					return err
				}
				n := int(c.Value["n"].(float64))
				if err := tx.Setting.UpdateOneID("counter").SetValue(map[string]any{"n": n + 1}).Exec(ctx); err != nil {
					return err
				}
				if err := tx.Setting.Create().SetID(fmt.Sprintf("k%02d", i)).SetValue(map[string]any{}).Exec(ctx); err != nil {
					return err
				}
				switch {
				case i%10 == 9:
					panic("boom")
				case i%2 == 1:
					return errOdd
				}
				return nil
			})
		})
	}
	wg.Wait()

	want := 0
	for i := range callers {
		switch {
		case i%10 == 9:
			if panics[i] != "boom" {
				t.Errorf("caller %d: panic %v, want boom", i, panics[i])
			}
		case i%2 == 1:
			if !errors.Is(errs[i], errOdd) {
				t.Errorf("caller %d: %v, want its own error", i, errs[i])
			}
		default:
			want++
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("caller %d: %v / %v, want success", i, errs[i], panics[i])
			}
		}
	}
	keys, err := s.Reader.Setting.Query().Where(setting.IDGTE("k"), setting.IDLT("l")).IDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != want {
		t.Fatalf("%d rows committed, want %d (only the successful callers')", len(keys), want)
	}
	c, err := s.Reader.Setting.Get(ctx, "counter")
	if err != nil {
		t.Fatal(err)
	}
	if n := int(c.Value["n"].(float64)); n != want {
		t.Fatalf("counter %d, want %d: an increment was lost or a failed one kept", n, want)
	}
}

// A caller whose context is done before its turn does nothing.
func TestWithTxCancelledCaller(t *testing.T) {
	s := openTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ran := false
	err := s.WithTx(ctx, func(tx *ent.Tx) error { ran = true; return nil })
	if !errors.Is(err, context.Canceled) || ran {
		t.Fatalf("err %v, ran %v", err, ran)
	}
}

// A caller alone in its transaction (no savepoint) keeps the same outcome:
// a failure or a panic leaves no trace, and a later caller still commits.
func TestWithTxLoneCaller(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	errFail := errors.New("fails after writing")
	tests := []struct {
		key     string
		fail    bool
		panics  bool
		kept    bool
		wantErr error
	}{
		{key: "fail", fail: true, wantErr: errFail},
		{key: "panic", panics: true},
		{key: "ok", kept: true},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			var pan any
			err := func() (err error) {
				defer func() { pan = recover() }()
				return s.WithTx(ctx, func(tx *ent.Tx) error {
					if err := tx.Setting.Create().SetID(tt.key).SetValue(map[string]any{}).Exec(ctx); err != nil {
						return err
					}
					if tt.panics {
						panic("boom")
					}
					if tt.fail {
						return errFail
					}
					return nil
				})
			}()
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if tt.panics != (pan == "boom") {
				t.Fatalf("panic %v", pan)
			}
			n, err := s.Reader.Setting.Query().Where(setting.ID(tt.key)).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if (n == 1) != tt.kept {
				t.Fatalf("%d rows for %q, kept should be %v", n, tt.key, tt.kept)
			}
		})
	}
}

// WritesAsked counts every write transaction asked for, including those
// that fail, so that a long writer can tell that others wanted the writer.
func TestWritesAsked(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	before, ok := s.WritesAsked()
	if !ok {
		t.Fatal("WritesAsked not kept on SQLite")
	}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_ = s.WithTx(ctx, func(tx *ent.Tx) error {
				if i%2 == 0 {
					return errors.New("fails")
				}
				return tx.Setting.Create().SetID(fmt.Sprintf("w%d", i)).SetValue(map[string]any{}).Exec(ctx)
			})
		})
	}
	wg.Wait()
	if after, _ := s.WritesAsked(); after-before != 10 {
		t.Fatalf("WritesAsked grew by %d, want 10", after-before)
	}
}
