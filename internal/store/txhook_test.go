package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/setting"
)

// testObserver writes a setting of its own inside the caller's
// transaction, or fails, and remembers how the transaction ended.
type testObserver struct {
	key     string
	fail    error
	started int
	ended   []bool
}

func (o *testObserver) BodyStarts(context.Context) { o.started++ }

func (o *testObserver) BeforeCommit(ctx context.Context, tx *ent.Tx) (func(bool), error) {
	if err := tx.Setting.Create().SetID(o.key).SetValue(map[string]any{}).Exec(ctx); err != nil {
		return nil, err
	}
	if o.fail != nil {
		return nil, o.fail
	}
	return func(committed bool) { o.ended = append(o.ended, committed) }, nil
}

// The observer runs in the caller's transaction, after the body and in its
// savepoint: when it fails, the caller's work is undone with its own and
// the caller gets its error, while the callers sharing the SQLite
// transaction commit, observer rows and all. A body that fails never
// reaches the observer.
func TestTxObserverSharesTheCallersFate(t *testing.T) {
	s := openTemp(t)
	ctx := context.Background()
	errObserver := errors.New("observer refuses")
	errBody := errors.New("body fails")
	const callers = 24
	obs := make([]*testObserver, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		obs[i] = &testObserver{key: fmt.Sprintf("obs%02d", i)}
		if i%3 == 1 {
			obs[i].fail = errObserver
		}
		wg.Go(func() {
			errs[i] = s.WithTx(WithTxObserver(ctx, obs[i]), func(tx *ent.Tx) error {
				if err := tx.Setting.Create().SetID(fmt.Sprintf("body%02d", i)).SetValue(map[string]any{}).Exec(ctx); err != nil {
					return err
				}
				if i%3 == 2 {
					return errBody
				}
				return nil
			})
		})
	}
	wg.Wait()
	exists := func(id string) bool {
		n, err := s.Reader.Setting.Query().Where(setting.ID(id)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	for i := range callers {
		body, own := exists(fmt.Sprintf("body%02d", i)), exists(obs[i].key)
		switch i % 3 {
		case 0:
			if errs[i] != nil || !body || !own || len(obs[i].ended) != 1 || !obs[i].ended[0] {
				t.Errorf("caller %d: err %v, body row %v, observer row %v, ended %v; want all committed", i, errs[i], body, own, obs[i].ended)
			}
		case 1:
			if !errors.Is(errs[i], errObserver) || body || own || len(obs[i].ended) != 0 {
				t.Errorf("caller %d: err %v, body row %v, observer row %v, ended %v; want the observer's error and nothing", i, errs[i], body, own, obs[i].ended)
			}
		case 2:
			if !errors.Is(errs[i], errBody) || body || own || len(obs[i].ended) != 0 {
				t.Errorf("caller %d: err %v, body row %v, observer row %v; want the body's error, observer never run", i, errs[i], body, own)
			}
		}
		if obs[i].started != 1 {
			t.Errorf("caller %d: body started %d times", i, obs[i].started)
		}
	}

	// Without an observer, or with it removed, WithTx is what it was.
	o := &testObserver{key: "removed"}
	if err := s.WithTx(WithTxObserver(WithTxObserver(ctx, o), nil), func(*ent.Tx) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if o.started != 0 || exists("removed") {
		t.Error("a removed observer ran")
	}
}
