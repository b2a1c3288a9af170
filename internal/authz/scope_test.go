package authz_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
)

// The in-memory rules for acting on a record (domain.md): who may edit
// it, claim from its pool, manage the pool, and to whom he may hand it.
func TestScopeActRules(t *testing.T) {
	const east, eastOne, west = "/e/", "/e/e1/", "/w/"
	rep := user(auth.RoleRep, eastOne)
	colleague := &auth.Principal{Type: auth.ActorUser, ID: uuid.New(), Role: auth.RoleRep, TeamID: rep.TeamID, TeamPath: eastOne}
	westRep := user(auth.RoleRep, west)
	sup := user(auth.RoleSupervisor, east)
	admin := user(auth.RoleAdmin, "")
	auditor := user(auth.RoleAuditor, east)
	manager := user(auth.RoleRep, west)
	boundKey := key(auth.Scopes...)
	pl := authz.Pool{ID: uuid.New(), MemberTeamIDs: []uuid.UUID{uuid.MustParse("00000000-0000-0000-0000-0000000000e1")},
		ManagerIDs: []uuid.UUID{manager.ID}, VisibleFields: []string{"name"}}
	member := user(auth.RoleRep, "/e/00000000-0000-0000-0000-0000000000e1/")
	boundKey.PoolID = &pl.ID
	owned := func(p *auth.Principal) authz.Row {
		return authz.Row{OwnerID: &p.ID, OwnerTeamPath: p.TeamPath, PoolID: pl.ID}
	}
	pooled := authz.Row{PoolID: pl.ID}

	tests := []struct {
		name                        string
		p                           *auth.Principal
		row                         authz.Row
		sees, edits, claims, masked bool
	}{
		{"owner", rep, owned(rep), true, true, false, false},
		{"colleague", colleague, owned(rep), false, false, false, false},
		{"supervisor of the owner", sup, owned(rep), true, true, false, false},
		{"supervisor elsewhere", sup, owned(westRep), false, false, false, false},
		{"admin", admin, owned(westRep), true, true, true, false},
		{"auditor sees, never edits", auditor, owned(rep), true, false, false, false},
		{"member, pooled", member, pooled, true, false, true, true},
		{"non-member, pooled", rep, pooled, false, false, false, false},
		{"manager, pooled", manager, pooled, true, true, true, false},
		{"bound key, pooled", boundKey, pooled, true, true, false, false},
		{"bound key, owned in its pool", boundKey, owned(rep), true, true, false, false},
		{"bound key, another pool", boundKey, authz.Row{PoolID: uuid.New()}, false, false, false, false},
		{"unbound key", key(auth.Scopes...), owned(rep), true, true, false, false},
		{"nobody", nil, pooled, false, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := authz.NewScope(tt.p, []authz.Pool{pl})
			if got := sc.Sees(tt.row); got != tt.sees {
				t.Errorf("Sees = %v, want %v", got, tt.sees)
			}
			if got := sc.CanEdit(tt.row); got != tt.edits {
				t.Errorf("CanEdit = %v, want %v", got, tt.edits)
			}
			if got := sc.MayClaim(pl.ID); got != tt.claims {
				t.Errorf("MayClaim = %v, want %v", got, tt.claims)
			}
			if got := sc.Masks("phone", tt.row); got != tt.masked {
				t.Errorf("Masks(phone) = %v, want %v", got, tt.masked)
			}
			if sc.Masks("name", tt.row) {
				t.Error("Masks(name), a visible field")
			}
		})
	}

	hand := []struct {
		name      string
		p, target *auth.Principal
		asManager bool
		want      bool
	}{
		{"admin to anyone", admin, westRep, false, true},
		{"supervisor within his subtree", sup, rep, false, true},
		{"supervisor outside it", sup, westRep, false, false},
		{"rep to a colleague of his team", rep, colleague, false, true},
		{"rep to another team", rep, westRep, false, false},
		{"manager to a member", manager, member, true, true},
		{"manager, not acting as one", manager, member, false, false},
		{"manager to a non-member", manager, westRep, true, false},
		{"bound key to a non-member", boundKey, rep, false, false},
		{"bound key to a member", boundKey, member, false, true},
		{"bound key to the pool's manager", boundKey, manager, false, true},
		{"unbound key to a member", key(auth.Scopes...), member, false, false},
		{"bound key, no target", boundKey, nil, false, false},
	}
	other := authz.Pool{ID: uuid.New()}
	if authz.NewScope(boundKey, []authz.Pool{pl, other}).MayHandTo(member, other.ID, false) {
		t.Error("a key bound to one pool hands out records of another")
	}
	if sc := authz.NewScope(boundKey, nil); !sc.HandsOut(pl.ID) || sc.HandsOut(other.ID) || authz.NewScope(key(), nil).HandsOut(pl.ID) {
		t.Error("HandsOut: only a key bound to the pool")
	}

	for _, tt := range hand {
		t.Run("hand: "+tt.name, func(t *testing.T) {
			if got := authz.NewScope(tt.p, []authz.Pool{pl}).MayHandTo(tt.target, pl.ID, tt.asManager); got != tt.want {
				t.Errorf("MayHandTo = %v, want %v", got, tt.want)
			}
		})
	}
}
