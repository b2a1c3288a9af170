package pool

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// A server keeps the pools, settings and teams it read between claims.
// Another process writing the same database (`shoal user create`, `seed`,
// a second tool) does not go through the server's writer, and the server
// must still obey what it wrote from its next claim on: the caps and pool
// rules lowered elsewhere. Two stores opened on one database stand in for
// the two processes; on SQLite each has its own connections and its own
// rules generation. On PostgreSQL nothing is kept, and the same holds.
func TestClaimObeysRulesChangedByAnotherProcess(t *testing.T) {
	cases := []struct {
		name string
		// lower changes a rule through the other store so that one more
		// claim by u is no longer allowed as a plain claim.
		lower func(ctx context.Context, other *store.Store, pl *ent.Pool, tm *ent.Team) error
		// code is the refusal the next claim gets, or "" when it must
		// file a claim request instead of taking the record.
		code string
	}{
		{"team cap", func(ctx context.Context, other *store.Store, _ *ent.Pool, tm *ent.Team) error {
			return other.Client.Team.UpdateOneID(tm.ID).SetMaxOwnedLeads(1).Exec(ctx)
		}, "cap_exceeded"},
		{"global cap", func(ctx context.Context, other *store.Store, _ *ent.Pool, _ *ent.Team) error {
			return other.Client.Setting.Create().SetID(settingsKey).SetValue(map[string]any{"maxOwnedLeads": 1}).Exec(ctx)
		}, "cap_exceeded"},
		{"pool daily limit", func(ctx context.Context, other *store.Store, pl *ent.Pool, _ *ent.Team) error {
			return other.Client.Pool.UpdateOneID(pl.ID).SetDailyClaimLimit(1).Exec(ctx)
		}, "daily_limit_reached"},
		{"pool approval", func(ctx context.Context, other *store.Store, pl *ent.Pool, _ *ent.Team) error {
			return other.Client.Pool.UpdateOneID(pl.ID).SetClaimRequiresApproval(true).Exec(ctx)
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, url string) {
				ctx := context.Background()
				server := openStore(t, url)
				if err := server.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				other := openStore(t, url)
				s := NewService(server, clock.Real{}, nil)
				if err := s.EnsureDefaults(ctx); err != nil {
					t.Fatal(err)
				}
				pl, err := server.Client.Pool.Get(ctx, DefaultPoolID("lead"))
				if err != nil {
					t.Fatal(err)
				}
				teamID := uuid.New()
				tm, err := server.Client.Team.Create().SetID(teamID).SetName("east").SetPath("/" + teamID.String() + "/").Save(ctx)
				if err != nil {
					t.Fatal(err)
				}
				u, err := server.Client.User.Create().SetEmail("rep@example.com").SetName("Rep").SetRole("rep").
					SetTeamID(tm.ID).SetTeamPath(tm.Path).SetPasswordHash("x").Save(ctx)
				if err != nil {
					t.Fatal(err)
				}
				p := &auth.Principal{Type: auth.ActorUser, ID: u.ID, Name: u.Name, Role: u.Role.String(), TeamID: &tm.ID, TeamPath: tm.Path}
				var leads []uuid.UUID
				for i := range 3 {
					l, err := server.Client.Lead.Create().SetName(fmt.Sprintf("lead %d", i)).SetPoolID(pl.ID).Save(ctx)
					if err != nil {
						t.Fatal(err)
					}
					leads = append(leads, l.ID)
				}

				// Two claims warm whatever the server keeps: the pool, the
				// settings and the claimer's team.
				for _, id := range leads[:2] {
					if _, err := s.Claim(ctx, p, "lead", id); err != nil {
						t.Fatalf("claim before the change: %v", err)
					}
				}
				if err := tc.lower(ctx, other, pl, tm); err != nil {
					t.Fatal(err)
				}
				res, err := s.Claim(ctx, p, "lead", leads[2])
				if tc.code == "" {
					if err != nil || res.Request == nil {
						t.Fatalf("claim after the change: %+v, %v; want a claim request", res, err)
					}
					return
				}
				var ae *apperr.Error
				if !errors.As(err, &ae) || ae.Code != tc.code {
					t.Fatalf("claim after the change: %+v, %v; want %s", res, err, tc.code)
				}
			})
		})
	}
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}
