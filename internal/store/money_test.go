package store

import (
	"context"
	"fmt"
	"testing"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// A database made before amounts were exact holds credit limits as
// floats in customers.credit_limit. Migrating it moves each into
// credit_limit_fen as the exact amount the client once sent, on both
// engines, once: running it again, or after a limit was cleared, changes
// nothing.
func TestMigrateMovesFloatCreditLimitsToFen(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// Turn the table back into what an older Shoal created.
		floatType := "REAL"
		if s.Dialect == dialect.Postgres {
			floatType = "DOUBLE PRECISION"
		}
		for _, stmt := range []string{
			"ALTER TABLE customers DROP COLUMN credit_limit_fen",
			"ALTER TABLE customers ADD COLUMN credit_limit " + floatType,
		} {
			if _, err := s.writeDB.ExecContext(ctx, stmt); err != nil {
				t.Fatal(err)
			}
		}
		cases := []struct {
			float   string // the SQL literal the old binary stored
			wantFen *int64
		}{
			{"1234.5", ptr(123450)},
			{"0.1", ptr(10)},
			{"0.29", ptr(29)},                // 0.28999999999999998 as a float
			{"0.30000000000000004", ptr(30)}, // what 0.1 + 0.2 made
			{"2.675", ptr(268)},              // 2.67499999… as a float; half away from zero
			{"80000.5", ptr(8000050)},
			{"1000000000000", ptr(1e14)}, // the old maximum
			{"0", ptr(0)},
			{"NULL", nil}, // no limit stays no limit
		}
		ids := make([]uuid.UUID, len(cases))
		for i, c := range cases {
			ids[i] = uuid.New()
			// Only the columns the old binary had: credit_limit_fen is gone.
			if err := s.Client.Customer.Create().SetID(ids[i]).SetName(fmt.Sprint("c", i)).SetPoolID(uuid.New()).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			q := "UPDATE customers SET credit_limit = " + c.float + " WHERE id = ?"
			if s.Dialect == dialect.Postgres {
				q = "UPDATE customers SET credit_limit = " + c.float + " WHERE id = $1"
			}
			if _, err := s.writeDB.ExecContext(ctx, q, ids[i]); err != nil {
				t.Fatal(err)
			}
		}

		check := func(when string) {
			t.Helper()
			for i, c := range cases {
				cu, err := s.Client.Customer.Get(ctx, ids[i])
				if err != nil {
					t.Fatal(err)
				}
				switch {
				case c.wantFen == nil && cu.CreditLimit != nil:
					t.Errorf("%s: %s became %v, want NULL", when, c.float, cu.CreditLimit)
				case c.wantFen != nil && (cu.CreditLimit == nil || cu.CreditLimit.Fen() != *c.wantFen):
					t.Errorf("%s: %s became %v, want %d fen", when, c.float, cu.CreditLimit, *c.wantFen)
				}
			}
			var left int
			if err := s.writeDB.QueryRowContext(ctx, "SELECT COUNT(*) FROM customers WHERE credit_limit IS NOT NULL").Scan(&left); err != nil {
				t.Fatal(err)
			}
			if left != 0 {
				t.Errorf("%s: %d floats left in the old column", when, left)
			}
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		check("first migration")
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		check("second migration")

		// A limit cleared after the upgrade stays cleared.
		if err := s.Client.Customer.UpdateOneID(ids[0]).ClearCreditLimit().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		cases[0].wantFen = nil
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		check("after clearing")
	})
}

// A database created by this version has no float column to move.
func TestMigrateMoneyFreshDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s, err := Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		for range 2 {
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if ok, err := s.hasColumn(ctx, "customers", "credit_limit"); err != nil || ok {
			t.Fatalf("credit_limit on a fresh database: %v, %v", ok, err)
		}
		if ok, err := s.hasColumn(ctx, "customers", "credit_limit_fen"); err != nil || !ok {
			t.Fatalf("credit_limit_fen missing: %v, %v", ok, err)
		}
	})
}

func ptr(n int64) *int64 { return &n }
