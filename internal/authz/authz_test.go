package authz_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/policies"
)

func user(role, teamPath string) *auth.Principal {
	team := uuid.New()
	return &auth.Principal{Type: auth.ActorUser, ID: uuid.New(), Role: role, TeamID: &team, TeamPath: teamPath}
}

func key(scopes ...string) *auth.Principal {
	return &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: scopes, CreatedBy: uuid.New()}
}

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		p    *auth.Principal
		want []string
	}{
		{"nobody", nil, nil},
		{"rep", user(auth.RoleRep, "/a/"), []string{"rep"}},
		{"supervisor", user(auth.RoleSupervisor, "/a/"), []string{"supervisor"}},
		{"auditor", user(auth.RoleAuditor, ""), []string{"auditor"}},
		{"admin", user(auth.RoleAdmin, ""), []string{"admin"}},
		{"key without scopes", key(), []string{}},
		{"key with scopes", key("leads:read", "leads:write"), []string{"scope:leads:read", "scope:leads:write"}},
		// A key never acts as a role, whatever its Role field says.
		{"key with a role", &auth.Principal{Type: auth.ActorAPIKey, Role: auth.RoleAdmin, Scopes: []string{"events:read"}}, []string{"scope:events:read"}},
		{"system", &auth.Principal{Type: auth.ActorSystem, Role: auth.RoleAdmin}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := authz.Subjects(tt.p)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Subjects = %q, want %q", got, tt.want)
			}
		})
	}
}

// testPolicy is a small policy in the shape of policies/policy.csv, so these
// tests do not change whenever the real policy does.
const testPolicy = `
# comment
g, rep, user
g, admin, user

p, user, getCurrentUser
p, admin, createUser
p, scope:leads:read, listLeads
p, scope:leads:write, listLeads
p, scope:leads:write, createLead
`

func TestAllowed(t *testing.T) {
	en := newEnforcer(t, testPolicy)
	tests := []struct {
		name string
		p    *auth.Principal
		op   string
		want bool
	}{
		{"rep inherits user", user(auth.RoleRep, "/a/"), "getCurrentUser", true},
		{"admin inherits user", user(auth.RoleAdmin, ""), "getCurrentUser", true},
		{"admin own rule", user(auth.RoleAdmin, ""), "createUser", true},
		{"rep is not admin", user(auth.RoleRep, "/a/"), "createUser", false},
		{"role not in the policy", user(auth.RoleAuditor, ""), "getCurrentUser", false},
		{"unknown operation", user(auth.RoleAdmin, ""), "dropDatabase", false},
		{"nobody", nil, "getCurrentUser", false},
		{"system", &auth.Principal{Type: auth.ActorSystem}, "getCurrentUser", false},
		{"key with the scope", key("leads:read"), "listLeads", true},
		{"key with another granting scope", key("leads:write"), "listLeads", true},
		{"key, one of several scopes grants", key("customers:read", "leads:write"), "createLead", true},
		{"key lacking the scope", key("leads:read"), "createLead", false},
		{"key without scopes", key(), "listLeads", false},
		{"key is not a user", key("leads:read", "leads:write"), "getCurrentUser", false},
		{"key with a role field", &auth.Principal{Type: auth.ActorAPIKey, Role: auth.RoleAdmin}, "createUser", false},
		{"key scope named like a role", key("admin"), "createUser", false},
	}
	// The second pass is answered from the enforcer's cache of decisions.
	for _, pass := range []string{"first", "cached"} {
		for _, tt := range tests {
			t.Run(pass+"/"+tt.name, func(t *testing.T) {
				if got := en.Allowed(tt.p, tt.op); got != tt.want {
					t.Errorf("Allowed(%s) = %v, want %v", tt.op, got, tt.want)
				}
			})
		}
	}
	if !en.SubjectAllowed("scope:leads:write", "createLead") || en.SubjectAllowed("user", "createUser") {
		t.Error("SubjectAllowed disagrees with the policy")
	}
	want := map[string]bool{"getCurrentUser": true, "createUser": true, "listLeads": true, "createLead": true}
	if got := en.Operations(); !mapsEqual(got, want) {
		t.Errorf("Operations = %v, want %v", got, want)
	}
}

func TestEmbeddedPolicyLoads(t *testing.T) {
	en, err := authz.NewEnforcer()
	if err != nil {
		t.Fatal(err)
	}
	if len(en.Operations()) == 0 {
		t.Fatal("the embedded policy grants nothing")
	}
	if !en.Allowed(user(auth.RoleAdmin, ""), "createUser") || en.Allowed(user(auth.RoleRep, "/a/"), "createUser") {
		t.Error("the embedded policy does not reserve createUser to admins")
	}
	all := key(auth.Scopes...)
	if en.Allowed(all, "createUser") || en.Allowed(all, "createApiKey") {
		t.Error("an API key may manage users or keys")
	}
}

func TestNewEnforcerFromRejectsBadPolicy(t *testing.T) {
	for _, policy := range []string{
		"q, admin, createUser",
		"p",
		"p, admin createUser",
		"p, admin, createUser, extra",
		"g, admin",
	} {
		if _, err := authz.NewEnforcerFrom(policies.Model, policy); err == nil {
			t.Errorf("policy %q accepted", policy)
		}
	}
}

func TestReaches(t *testing.T) {
	const east, eastOne = "/e/", "/e/e1/"
	rep := user(auth.RoleRep, eastOne)
	sup := user(auth.RoleSupervisor, east)
	noTeamSup := &auth.Principal{Type: auth.ActorUser, ID: uuid.New(), Role: auth.RoleSupervisor}
	noTeamRep := &auth.Principal{Type: auth.ActorUser, ID: uuid.New(), Role: auth.RoleRep}
	all := authz.Reach{All: true}
	tests := []struct {
		name          string
		p             *auth.Principal
		record, users authz.Reach
	}{
		{"nobody", nil, authz.Reach{}, authz.Reach{}},
		{"admin", user(auth.RoleAdmin, ""), all, all},
		{"auditor", user(auth.RoleAuditor, east), all, all},
		{"supervisor", sup,
			authz.Reach{OwnerID: &sup.ID, TeamPathPrefix: east},
			authz.Reach{OwnerID: &sup.ID, TeamPathPrefix: east}},
		{"supervisor without a team", noTeamSup,
			authz.Reach{OwnerID: &noTeamSup.ID},
			authz.Reach{OwnerID: &noTeamSup.ID}},
		{"rep", rep,
			authz.Reach{OwnerID: &rep.ID},
			authz.Reach{OwnerID: &rep.ID, TeamID: rep.TeamID}},
		{"rep without a team", noTeamRep,
			authz.Reach{OwnerID: &noTeamRep.ID},
			authz.Reach{OwnerID: &noTeamRep.ID}},
		{"api key", key(auth.Scopes...), authz.Reach{}, authz.Reach{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authz.RecordReach(tt.p); !scopeEqual(got, tt.record) {
				t.Errorf("RecordReach = %s, want %s", show(got), show(tt.record))
			}
			if got := authz.UserReach(tt.p); !scopeEqual(got, tt.users) {
				t.Errorf("UserReach = %s, want %s", show(got), show(tt.users))
			}
		})
	}
	if !(authz.Reach{}).None() || (authz.Reach{All: true}).None() || (authz.Reach{OwnerID: &rep.ID}).None() ||
		(authz.Reach{TeamPathPrefix: east}).None() || (authz.Reach{TeamID: rep.TeamID}).None() {
		t.Error("Reach.None is wrong")
	}
}

func TestSupervises(t *testing.T) {
	const east, eastOne, west = "/e/", "/e/e1/", "/w/"
	tests := []struct {
		name     string
		p        *auth.Principal
		userPath string
		want     bool
	}{
		{"admin, anyone", user(auth.RoleAdmin, ""), west, true},
		{"admin, user without team", user(auth.RoleAdmin, ""), "", true},
		{"supervisor, own team", user(auth.RoleSupervisor, east), east, true},
		{"supervisor, sub-team", user(auth.RoleSupervisor, east), eastOne, true},
		{"supervisor, other team", user(auth.RoleSupervisor, east), west, false},
		{"supervisor, parent team", user(auth.RoleSupervisor, eastOne), east, false},
		{"supervisor, sibling sharing a prefix", user(auth.RoleSupervisor, "/e1/"), "/e10/", false},
		{"supervisor, user without team", user(auth.RoleSupervisor, east), "", false},
		{"supervisor without team", user(auth.RoleSupervisor, ""), east, false},
		{"supervisor without team, user without team", user(auth.RoleSupervisor, ""), "", false},
		{"rep, own team", user(auth.RoleRep, east), east, false},
		{"auditor", user(auth.RoleAuditor, east), east, false},
		{"api key", key(auth.Scopes...), east, false},
		{"system", &auth.Principal{Type: auth.ActorSystem, Role: auth.RoleAdmin}, east, false},
		{"nobody", nil, east, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := authz.Supervises(tt.p, tt.userPath); got != tt.want {
				t.Errorf("Supervises(%q) = %v, want %v", tt.userPath, got, tt.want)
			}
		})
	}
}

func scopeEqual(a, b authz.Reach) bool {
	eq := func(x, y *uuid.UUID) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.All == b.All && a.TeamPathPrefix == b.TeamPathPrefix && eq(a.OwnerID, b.OwnerID) && eq(a.TeamID, b.TeamID)
}

func show(s authz.Reach) string {
	str := func(id *uuid.UUID) string {
		if id == nil {
			return "nil"
		}
		return id.String()
	}
	return fmt.Sprintf("{All:%v OwnerID:%s TeamPathPrefix:%q TeamID:%s}", s.All, str(s.OwnerID), s.TeamPathPrefix, str(s.TeamID))
}

func newEnforcer(t *testing.T, policy string) *authz.Enforcer {
	t.Helper()
	en, err := authz.NewEnforcerFrom(policies.Model, policy)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
