package authz

import (
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/auth"
)

func TestManagesPool(t *testing.T) {
	mgr, other := uuid.New(), uuid.New()
	managers := []uuid.UUID{mgr}
	cases := []struct {
		name string
		p    *auth.Principal
		want bool
	}{
		{"nobody", nil, false},
		{"manager", &auth.Principal{Type: auth.ActorUser, ID: mgr, Role: auth.RoleRep}, true},
		{"admin", &auth.Principal{Type: auth.ActorUser, ID: other, Role: auth.RoleAdmin}, true},
		{"supervisor not listed", &auth.Principal{Type: auth.ActorUser, ID: other, Role: auth.RoleSupervisor}, false},
		{"auditor", &auth.Principal{Type: auth.ActorUser, ID: other, Role: auth.RoleAuditor}, false},
		{"api key with a manager's id", &auth.Principal{Type: auth.ActorAPIKey, ID: mgr, Role: auth.RoleAdmin}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ManagesPool(tc.p, managers); got != tc.want {
				t.Fatalf("ManagesPool = %v, want %v", got, tc.want)
			}
		})
	}
}
