package pool

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// Every kind pools hold has a table, wired to that kind's own table, and
// that table has every column the engine's shared predicates name: a new
// kind without one, or whose table lacks a PoolableMixin column, fails
// here rather than in a claim.
func TestTablesCoverKinds(t *testing.T) {
	for _, k := range kinds.All {
		tb, ok := tables[k]
		if !ok {
			t.Errorf("kind %s has no table in tables.go", k)
			continue
		}
		if tb.name != k.Desc().Table {
			t.Errorf("kind %s: table %q, its kind's table is %q", k, tb.name, k.Desc().Table)
		}
		if tb.rows == nil || tb.update == nil || tb.count == nil || tb.sync == nil || tb.defaultCap == nil {
			t.Errorf("kind %s: table misses an operation", k)
		}
		for _, col := range slices.Concat(ownershipColumns, tb.judged) {
			if !slices.Contains(tb.columns, col) {
				t.Errorf("kind %s: table %s has no column %q", k, tb.name, col)
			}
		}
	}
	if len(tables) != len(kinds.All) {
		t.Errorf("%d tables for %d kinds", len(tables), len(kinds.All))
	}
}

// createPooled inserts a pooled record of kind in its default pool (test
// set-up only: the engine itself never names a kind's ent type outside
// tables.go).
func createPooled(ctx context.Context, t *testing.T, c *ent.Client, kind kinds.Kind) uuid.UUID {
	t.Helper()
	pool := DefaultPoolID(kind)
	switch kind {
	case kinds.Lead:
		l, err := c.Lead.Create().SetName("l").SetPoolID(pool).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return l.ID
	case kinds.Customer:
		cu, err := c.Customer.Create().SetName("c").SetPoolID(pool).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return cu.ID
	}
	t.Fatalf("no fixture for kind %s", kind)
	return uuid.Nil
}

// Through its table every kind loads (whole row, locked), saves only the
// ownership state and keeps the loaded row in step, counts, reads the
// judged columns only, and answers kind.NotFound() for a missing id: the
// same on both engines.
func TestTablesReadAndWrite(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := migratedService(t, url)
		u, err := s.store.Client.User.Create().SetEmail("t@x.test").SetName("t").SetRole(user.RoleRep).SetPasswordHash("x").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		for _, k := range kinds.All {
			id := createPooled(ctx, t, s.store.Client, k)
			err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
				r, err := s.load(ctx, tx, k, id)
				if err != nil {
					return err
				}
				if r.Kind != k || r.ID != id || r.row == nil || r.Status != "active" || r.OwnerID != nil {
					t.Fatalf("%s: loaded %+v", k, r)
				}
				pl, err := tx.Pool.Get(ctx, r.PoolID)
				if err != nil {
					return err
				}
				owner, until := u.ID, now.Add(time.Hour)
				r.OwnerID, r.OwnedAt, r.FrozenUntil = &owner, &now, &until
				if err := s.save(ctx, tx, r, pl, now); err != nil {
					return err
				}
				// The row kept on the record says what was saved.
				l, _ := r.row.(*ent.Lead)
				c, _ := r.row.(*ent.Customer)
				switch {
				case l != nil && (l.OwnerID == nil || *l.OwnerID != owner || l.Version != 2):
					t.Fatalf("%s: row after save %+v", k, l)
				case c != nil && (c.OwnerID == nil || *c.OwnerID != owner || c.Version != 2):
					t.Fatalf("%s: row after save %+v", k, c)
				case l == nil && c == nil:
					t.Fatalf("%s: row of type %T", k, r.row)
				}
				n, err := s.frozenCount(ctx, tx, owner, uuid.Nil, now)
				if err != nil {
					return err
				}
				if n != 1 {
					t.Fatalf("%s: %d frozen, want 1", k, n)
				}
				// Partial reads keep no row, and read the stored state.
				tb := tables[k]
				recs, err := s.rows(ctx, inTx(tx), k, selection{where: idIs(id), lock: lockSkipLocked, columns: tb.judged})
				if err != nil {
					return err
				}
				if len(recs) != 1 || recs[0].row != nil || recs[0].OwnerID == nil || *recs[0].OwnerID != owner ||
					recs[0].FrozenUntil == nil || !recs[0].FrozenUntil.Equal(until) {
					t.Fatalf("%s: judged read %+v", k, recs)
				}
				// Unfreeze it again, so the next kind's count starts at 0.
				r.FrozenUntil = nil
				return s.save(ctx, tx, r, pl, now)
			})
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			r, _, err := s.peek(ctx, k, id)
			if err != nil {
				t.Fatalf("%s: peek: %v", k, err)
			}
			if r.OwnerID == nil || *r.OwnerID != u.ID || r.FrozenUntil != nil {
				t.Fatalf("%s: stored %+v", k, r)
			}
			if _, _, err := s.peek(ctx, k, uuid.New()); !errors.Is(err, apperr.NotFoundf(k.Noun())) {
				t.Fatalf("%s: peek of a missing id: %v", k, err)
			}
		}
	})
}
