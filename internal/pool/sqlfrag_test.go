package pool

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// star is If-Match: * (these tests are about the recount, not versions).
var star = "*"

func migratedService(t *testing.T, url string) *Service {
	t.Helper()
	st := openStore(t, url)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := NewService(st, clock.Real{}, nil)
	if err := s.EnsureDefaults(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

// An upsert that did nothing is recognised by its error value, not its
// text: EnsureDefaults runs again without error, a second warning for the
// same deadline is skipped, and an error that only reads like "no rows"
// is not taken for one.
func TestIsNoRows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := migratedService(t, url)
		if err := s.EnsureDefaults(ctx); err != nil {
			t.Fatalf("second EnsureDefaults: %v", err)
		}
		u, err := s.store.Client.User.Create().SetEmail("w@x.test").SetName("w").SetRole(user.RoleRep).SetPasswordHash("x").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Date(2026, 3, 4, 0, 0, 0, 0, time.UTC)
		rec := uuid.New()
		for i := range 2 {
			_, err := s.store.Client.ReclaimWarning.Create().SetKind(reclaimwarning.KindLead).SetRecordID(rec).SetOwnerID(u.ID).
				SetReclaimAt(at).SetReason("idle").SetCreatedAt(at).
				OnConflictColumns(reclaimwarning.FieldRecordID, reclaimwarning.FieldReclaimAt).DoNothing().ID(ctx)
			if err != nil && !isNoRows(err) {
				t.Fatalf("warning %d: %v", i, err)
			}
		}
		if n, _ := s.store.Client.ReclaimWarning.Query().Count(ctx); n != 1 {
			t.Fatalf("%d warnings, want 1", n)
		}
	})
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{stdsql.ErrNoRows, true},
		{fmt.Errorf("upsert: %w", stdsql.ErrNoRows), true},
		{errors.New("sql: no rows in result set"), false},
		{nil, false},
	} {
		if got := isNoRows(tc.err); got != tc.want {
			t.Errorf("isNoRows(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// Flipping capCountsDealt recounts every user's customer counter from his
// active customers, dealt ones included only when they count.
func TestUpdateSettingsRecountsOwnedCustomers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		s := migratedService(t, url)
		var users []*ent.User
		for i := range 3 {
			u, err := s.store.Client.User.Create().SetEmail(fmt.Sprintf("r%d@x.test", i)).SetName("r").SetRole(user.RoleRep).
				SetPasswordHash("x").SetOwnedCustomers(9).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		pool := DefaultPoolID("customer")
		for _, c := range []struct {
			owner  int
			status customer.Status
			dealt  bool
		}{{0, customer.StatusActive, false}, {0, customer.StatusActive, true}, {0, customer.StatusInvalid, true}, {1, customer.StatusActive, true}} {
			if err := s.store.Client.Customer.Create().SetName("c").SetPoolID(pool).SetOwnerID(users[c.owner].ID).
				SetStatus(c.status).SetDealStatus(c.dealt).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			countDealt bool
			want       []int
		}{{true, []int{2, 1, 0}}, {false, []int{1, 0, 0}}, {true, []int{2, 1, 0}}} {
			if _, err := s.UpdateSettings(ctx, &star, SettingsPatch{CapCountsDealt: &tc.countDealt}); err != nil {
				t.Fatal(err)
			}
			for i, u := range users {
				got, err := s.store.Reader.User.Get(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				if got.OwnedCustomers != tc.want[i] {
					t.Fatalf("capCountsDealt=%v: user %d counts %d customers, want %d", tc.countDealt, i, got.OwnedCustomers, tc.want[i])
				}
			}
		}
	})
}
