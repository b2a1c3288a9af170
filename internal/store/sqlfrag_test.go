package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"entgo.io/ent/dialect"
	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/setting"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func openEach(t *testing.T, url string) *Store {
	t.Helper()
	ctx := context.Background()
	s, err := Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func makeUsers(t *testing.T, s *Store, n int) []*ent.User {
	t.Helper()
	var out []*ent.User
	for i := range n {
		u, err := s.Client.User.Create().SetEmail(fmt.Sprintf("u%d-%s@x.test", i, uuid.NewString()[:8])).SetName("u").
			SetRole(user.RoleRep).SetPasswordHash("x").Save(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// IDIn matches exactly the listed ids, whatever their number (none, one,
// many), on both engines.
func TestIDIn(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		s := openEach(t, url)
		ctx := context.Background()
		users := makeUsers(t, s, 5)
		for _, pick := range [][]int{{}, {2}, {0, 3, 4}, {0, 1, 2, 3, 4}} {
			var want []uuid.UUID
			for _, i := range pick {
				want = append(want, users[i].ID)
			}
			got, err := s.Reader.User.Query().Where(predicate.User(func(sel *entsql.Selector) {
				sel.Where(s.IDIn(sel.C(user.FieldID), append(want, uuid.New())))
			})).IDs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(got, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
			slices.SortFunc(want, func(a, b uuid.UUID) int { return slices.Compare(a[:], b[:]) })
			if !slices.Equal(got, want) {
				t.Fatalf("IDIn(%v) = %v", want, got)
			}
		}
	})
}

// AddReturning increments the counter and reads the row as changed in one
// statement; an unknown id reports false and changes nothing.
func TestAddReturning(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		s := openEach(t, url)
		ctx := context.Background()
		u := makeUsers(t, s, 1)[0]
		var name string
		var leads int
		var maxFrozen sql.NullInt64
		cols := []string{user.FieldName, user.FieldOwnedLeads, user.FieldMaxFrozen}
		err := s.WithTx(ctx, func(tx *ent.Tx) error {
			for want := 1; want <= 2; want++ {
				found, err := s.AddReturning(ctx, tx, user.Table, user.FieldID, u.ID, user.FieldOwnedLeads, 1, cols, &name, &leads, &maxFrozen)
				if err != nil || !found || leads != want || name != "u" || maxFrozen.Valid {
					return fmt.Errorf("found %v, leads %d, name %q, maxFrozen %v: %v", found, leads, name, maxFrozen, err)
				}
			}
			found, err := s.AddReturning(ctx, tx, user.Table, user.FieldID, uuid.New(), user.FieldOwnedLeads, 1, cols, &name, &leads, &maxFrozen)
			if err != nil || found {
				return fmt.Errorf("unknown id: found %v, %v", found, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := s.Reader.User.Get(ctx, u.ID); got.OwnedLeads != 2 {
			t.Fatalf("owned leads %d after commit, want 2", got.OwnedLeads)
		}
	})
}

// SetCount recounts a counter from the rows that refer to each user and
// match the condition; users with no such rows get zero.
func TestSetCount(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		s := openEach(t, url)
		ctx := context.Background()
		users := makeUsers(t, s, 3)
		pl, err := s.Client.Pool.Create().SetKind(entpool.KindCustomer).SetName("p").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// users[0]: 2 active (1 dealt) + 1 invalid; users[1]: 1 active dealt; users[2]: none.
		for _, c := range []struct {
			owner  int
			status customer.Status
			dealt  bool
		}{{0, customer.StatusActive, false}, {0, customer.StatusActive, true}, {0, customer.StatusInvalid, false}, {1, customer.StatusActive, true}} {
			if err := s.Client.Customer.Create().SetName("c").SetPoolID(pl.ID).SetOwnerID(users[c.owner].ID).
				SetStatus(c.status).SetDealStatus(c.dealt).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Client.User.Update().SetOwnedCustomers(7).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			dealt bool
			want  []int
		}{{true, []int{2, 1, 0}}, {false, []int{1, 0, 0}}} {
			err := s.WithTx(ctx, func(tx *ent.Tx) error {
				return s.SetCount(ctx, tx, user.Table, user.FieldID, user.FieldOwnedCustomers, customer.Table, customer.FieldOwnerID,
					func(sel *entsql.Selector) *entsql.Predicate {
						p := entsql.EQ(sel.C(customer.FieldStatus), customer.StatusActive.String())
						if !tc.dealt {
							p = entsql.And(p, entsql.EQ(sel.C(customer.FieldDealStatus), false))
						}
						return p
					})
			})
			if err != nil {
				t.Fatal(err)
			}
			for i, u := range users {
				got, err := s.Reader.User.Get(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.OwnedCustomers != tc.want[i] {
					t.Fatalf("dealt=%v: user %d owns %d, want %d", tc.dealt, i, got.OwnedCustomers, tc.want[i])
				}
			}
		}
	})
}

// IsConstraint recognises a violation from the driver's error code (as the
// statement cache sees it) and from ent, on both engines, and nothing
// else.
func TestIsConstraint(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		s := openEach(t, url)
		ctx := context.Background()
		u := makeUsers(t, s, 1)[0]
		_, dup := s.DB().ExecContext(ctx, "INSERT INTO settings (key, value) VALUES ('k', '{}'), ('k', '{}')")
		_, syntax := s.DB().ExecContext(ctx, "INSERT INTO no_such_table VALUES (1)")
		entDup := s.Client.User.Create().SetEmail(u.Email).SetName("v").SetRole(user.RoleRep).SetPasswordHash("x").Exec(ctx)
		for name, tc := range map[string]struct {
			err  error
			want bool
		}{
			"driver duplicate": {dup, true},
			"ent duplicate":    {entDup, true},
			"wrapped":          {fmt.Errorf("save: %w", dup), true},
			"no such table":    {syntax, false},
			"other":            {errors.New("constraint failed"), false},
			"nil":              {nil, false},
		} {
			if name != "nil" && name != "other" && tc.err == nil {
				t.Fatalf("%s: the statement did not fail", name)
			}
			if got := IsConstraint(tc.err); got != tc.want {
				t.Errorf("%s: IsConstraint(%v) = %v, want %v", name, tc.err, got, tc.want)
			}
		}
	})
}

// ForUpdateSkipLocked reads the rows no other transaction holds: on
// PostgreSQL a row locked elsewhere is skipped, not waited for; on SQLite
// (one writer at a time) the query is unchanged.
func TestForUpdateSkipLocked(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		s := openEach(t, url)
		ctx := context.Background()
		users := makeUsers(t, s, 2)
		if s.Dialect != dialect.Postgres {
			err := s.WithTx(ctx, func(tx *ent.Tx) error {
				n, err := ForUpdateSkipLocked(s, tx.User.Query()).Count(ctx)
				if err == nil && n != 2 {
					err = fmt.Errorf("%d users, want 2", n)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			return
		}
		holder, err := s.Client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = holder.Rollback() }()
		if _, err := holder.User.Query().Where(user.ID(users[0].ID)).ForUpdate().Only(ctx); err != nil {
			t.Fatal(err)
		}
		other, err := s.Client.Tx(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = other.Rollback() }()
		got, err := ForUpdateSkipLocked(s, other.User.Query()).IDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != users[1].ID {
			t.Fatalf("got %v, want only the unlocked user %s", got, users[1].ID)
		}
	})
}

// ScalarSubquery reads one value of another table beside a query's
// columns, and NULL when there is no such row.
func TestScalarSubquery(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		s := openEach(t, url)
		ctx := context.Background()
		if err := s.Client.Setting.Create().SetID("k").SetValue(map[string]any{"n": 1}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]sql.NullString{"k": {String: `{"n":1}`, Valid: true}, "missing": {}} {
			sel := entsql.Dialect(s.Dialect).Select(user.FieldID).From(entsql.Table(user.Table))
			sel.AppendSelectExprAs(ScalarSubquery(setting.FieldValue, setting.Table, setting.FieldID, key), "v")
			u := makeUsers(t, s, 1)[0]
			sel.Where(entsql.EQ(sel.C(user.FieldID), u.ID))
			query, args := sel.Query()
			var id uuid.UUID
			var got sql.NullString
			if err := s.DB().QueryRowContext(ctx, query, args...).Scan(&id, &got); err != nil {
				t.Fatalf("%s: %v", query, err)
			}
			if got.Valid != want.Valid || (want.Valid && strings.ReplaceAll(got.String, " ", "") != want.String) {
				t.Fatalf("%s: got %+v, want %+v", key, got, want)
			}
		}
	})
}
