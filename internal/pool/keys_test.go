package pool

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// The engine's rules for an API key with pools:assign (casbin lets it call
// assign and transfer; the engine decides which record and target): a key
// bound to the record's pool hands it to the pool's members, and the
// history names the key; an unbound key hands out nothing; a target
// outside the pool and a record of another pool are refused.
func TestKeyAssignsWithinItsPool(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openStore(t, url)
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		s := NewService(st, clock.Real{}, nil)
		if err := s.EnsureDefaults(ctx); err != nil {
			t.Fatal(err)
		}
		team := func(name string) *ent.Team {
			id := uuid.New()
			tm, err := st.Client.Team.Create().SetID(id).SetName(name).SetPath("/" + id.String() + "/").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return tm
		}
		east, west := team("east"), team("west")
		user := func(email string, tm *ent.Team) *ent.User {
			u, err := st.Client.User.Create().SetEmail(email).SetName(email).SetRole("rep").
				SetTeamID(tm.ID).SetTeamPath(tm.Path).SetPasswordHash("x").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		member, member2, stranger := user("m1@example.com", east), user("m2@example.com", east), user("s@example.com", west)
		pl, err := st.Client.Pool.UpdateOneID(DefaultPoolID("lead")).SetMemberTeamIds([]uuid.UUID{east.ID}).Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lead := func() uuid.UUID {
			l, err := st.Client.Lead.Create().SetName("pooled").SetPoolID(pl.ID).Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return l.ID
		}
		bound := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"pools:assign"}, PoolID: &pl.ID}
		elsewhere := uuid.New()
		otherKey := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"pools:assign"}, PoolID: &elsewhere}
		unbound := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"pools:assign"}}
		code := func(err error) string {
			if e, ok := apperr.As(err); ok {
				return e.Code
			}
			return ""
		}

		id := lead()
		if _, err := s.Assign(ctx, unbound, kinds.Lead, id, member.ID, ""); code(err) != "api_key_not_bound" {
			t.Errorf("unbound key assigns: %v, want api_key_not_bound", err)
		}
		if _, err := s.Assign(ctx, otherKey, kinds.Lead, id, member.ID, ""); code(err) != "not_found" {
			t.Errorf("key of another pool assigns: %v, want not_found", err)
		}
		if _, err := s.Assign(ctx, bound, kinds.Lead, id, stranger.ID, ""); code(err) != "target_out_of_scope" {
			t.Errorf("assign to a non-member: %v, want target_out_of_scope", err)
		}
		after, err := s.Assign(ctx, bound, kinds.Lead, id, member.ID, "partner routing")
		if err != nil || after.Lead.OwnerID == nil || *after.Lead.OwnerID != member.ID {
			t.Fatalf("assign to a member: %v, %+v", err, after)
		}
		if _, err := s.Transfer(ctx, unbound, kinds.Lead, id, member2.ID, "", false); code(err) != "api_key_not_bound" {
			t.Errorf("unbound key transfers: %v, want api_key_not_bound", err)
		}
		if _, err := s.Transfer(ctx, bound, kinds.Lead, id, stranger.ID, "", false); code(err) != "target_out_of_scope" {
			t.Errorf("transfer to a non-member: %v, want target_out_of_scope", err)
		}
		if after, err = s.Transfer(ctx, bound, kinds.Lead, id, member2.ID, "", false); err != nil || *after.Lead.OwnerID != member2.ID {
			t.Fatalf("transfer to a member: %v", err)
		}
		if _, err := s.Transfer(ctx, bound, kinds.Lead, lead(), member.ID, "", false); code(err) != "not_owned" {
			t.Errorf("transfer of a pooled lead: %v, want not_owned", err)
		}
		hist, err := st.Client.OwnershipChange.Query().Where(ownershipchange.RecordID(id)).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(hist) != 2 {
			t.Fatalf("%d history rows, want assign and transfer", len(hist))
		}
		for _, h := range hist {
			if h.ActorType != ownershipchange.ActorTypeApiKey || h.ActorID == nil || *h.ActorID != bound.ID {
				t.Errorf("%s by %s %v, want the key", h.Operation, h.ActorType, h.ActorID)
			}
		}
	})
}
