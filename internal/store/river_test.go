package store

import (
	"context"
	"errors"
	"sync"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// SQLTx is the transaction the body runs in: what is written through it
// commits and rolls back with the body's work (on SQLite also when the
// transaction is shared, in the caller's savepoint), and it is forgotten
// once the transaction ends.
func TestSQLTx(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.DB().ExecContext(ctx, "CREATE TABLE raw_probe (v INTEGER)"); err != nil {
			t.Fatal(err)
		}
		ph := "?"
		if st.Dialect == dialect.Postgres {
			ph = "$1"
		}
		insert := func(v int) func(tx *ent.Tx) error {
			return func(tx *ent.Tx) error {
				stx, ok := st.SQLTx(tx)
				if !ok {
					return errors.New("no *sql.Tx for the body's transaction")
				}
				_, err := stx.ExecContext(ctx, "INSERT INTO raw_probe (v) VALUES ("+ph+")", v)
				return err
			}
		}
		errFail := errors.New("fail")
		var kept *ent.Tx
		// Concurrent callers, so that on SQLite some share a transaction.
		var wg sync.WaitGroup
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := st.WithTx(ctx, func(tx *ent.Tx) error {
					if err := insert(i)(tx); err != nil {
						return err
					}
					if i%2 == 1 {
						return errFail
					}
					return nil
				})
				if i%2 == 1 && !errors.Is(err, errFail) || i%2 == 0 && err != nil {
					t.Errorf("caller %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if err := st.WithTx(ctx, func(tx *ent.Tx) error { kept = tx; return nil }); err != nil {
			t.Fatal(err)
		}
		if _, ok := st.SQLTx(kept); ok {
			t.Error("SQLTx still knows a transaction that ended")
		}
		rows, err := st.DB().QueryContext(ctx, "SELECT v FROM raw_probe")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			if v%2 == 1 {
				t.Errorf("row %d of a rolled-back caller was kept", v)
			}
			n++
		}
		if n != 10 {
			t.Errorf("%d rows kept, want the 10 of the callers that succeeded", n)
		}
	})
}

// Replicas starting at once on one PostgreSQL database all apply River's
// migrations without tripping over each other (rivermigrate takes no lock
// of its own).
func TestRiverMigrateConcurrent(t *testing.T) {
	url := testdb.Postgres(t)
	ctx := context.Background()
	var stores []*Store
	for range 4 {
		st, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		stores = append(stores, st)
	}
	var wg sync.WaitGroup
	for _, st := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.migrateRiver(ctx); err != nil {
				t.Errorf("migrate: %v", err)
			}
		}()
	}
	wg.Wait()
	var n int
	if err := stores[0].DB().QueryRowContext(ctx, "SELECT count(*) FROM river_migration").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no River migration recorded")
	}
	// And again, as on every start: nothing to do.
	if err := stores[0].migrateRiver(ctx); err != nil {
		t.Fatal(err)
	}
}
