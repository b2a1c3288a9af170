package pool

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// The pools and settings an operation reads are kept between transactions
// on SQLite only while nothing may have changed them: a committed change
// is seen by the next transaction, a rolled-back one never is (even after
// a transaction read it before the rollback), and on PostgreSQL nothing is
// kept.
func TestRulesSeeEveryCommittedChange(t *testing.T) {
	engines := []struct {
		name string
		url  func(t *testing.T) string
		keep bool
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "r.db") }, true},
		{"postgres", func(t *testing.T) string { return testdb.Postgres(t) }, false},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := store.Open(ctx, e.url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = st.Close() })
			if err := st.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			s := NewService(st, clock.Real{}, nil)
			pl, err := st.Client.Pool.Create().SetKind("lead").SetName("before").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			read := func() (*ent.Pool, Settings) {
				t.Helper()
				var got *ent.Pool
				var set Settings
				err := st.WithTx(ctx, func(tx *ent.Tx) error {
					var err error
					got, set, err = s.rules(ctx, tx, pl.ID)
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
				return got, set
			}
			first, _ := read()
			if again, _ := read(); (again == first) != e.keep {
				t.Fatalf("second read kept the first one: %v, want %v", again == first, e.keep)
			}

			if err := st.WithTx(ctx, func(tx *ent.Tx) error {
				return tx.Pool.UpdateOneID(pl.ID).SetName("committed").Exec(ctx)
			}); err != nil {
				t.Fatal(err)
			}
			if got, _ := read(); got.Name != "committed" {
				t.Fatalf("after a committed rename: %q", got.Name)
			}

			errUndo := errors.New("undo")
			err = st.WithTx(ctx, func(tx *ent.Tx) error {
				if err := tx.Pool.UpdateOneID(pl.ID).SetName("rolled back").Exec(ctx); err != nil {
					return err
				}
				got, _, err := s.rules(ctx, tx, pl.ID)
				if err != nil {
					return err
				}
				if got.Name != "rolled back" {
					t.Errorf("inside the renaming transaction: %q", got.Name)
				}
				return errUndo
			})
			if !errors.Is(err, errUndo) {
				t.Fatal(err)
			}
			if got, _ := read(); got.Name != "committed" {
				t.Fatalf("after a rolled-back rename: %q", got.Name)
			}

			limit := 3
			if err := st.WithTx(ctx, func(tx *ent.Tx) error {
				return tx.Setting.Create().SetID(settingsKey).SetValue(map[string]any{"maxOwnedLeads": limit}).Exec(ctx)
			}); err != nil {
				t.Fatal(err)
			}
			if _, set := read(); set.MaxOwnedLeads == nil || *set.MaxOwnedLeads != limit {
				t.Fatalf("after a settings change: %v", set.MaxOwnedLeads)
			}

			tm, err := st.Client.Team.Create().SetName("east").SetPath("/east/").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			teams := func() []*ent.Team {
				t.Helper()
				var got []*ent.Team
				if err := st.WithTx(ctx, func(tx *ent.Tx) error {
					var err error
					got, err = s.teams(ctx, tx, []uuid.UUID{tm.ID, uuid.New()})
					return err
				}); err != nil {
					t.Fatal(err)
				}
				return got
			}
			if got := teams(); len(got) != 1 || got[0].MaxOwnedLeads != nil {
				t.Fatalf("teams before the cap: %v", got)
			}
			if err := st.WithTx(ctx, func(tx *ent.Tx) error {
				return tx.Team.UpdateOneID(tm.ID).SetMaxOwnedLeads(limit).Exec(ctx)
			}); err != nil {
				t.Fatal(err)
			}
			if got := teams(); len(got) != 1 || got[0].MaxOwnedLeads == nil || *got[0].MaxOwnedLeads != limit {
				t.Fatalf("teams after a committed cap: %v", got)
			}
		})
	}
}
