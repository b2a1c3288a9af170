package authz

import (
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/auth"
)

// Scope is the set of rows a principal may see, in terms any query can
// apply: everything, or rows owned by one user, or rows owned by anyone
// whose team path starts with a prefix (a supervisor's subtree).
type Scope struct {
	// All means no restriction (admins, auditors).
	All bool
	// OwnerID, when set, admits rows owned by this user.
	OwnerID *uuid.UUID
	// TeamPathPrefix, when set, admits rows owned by anyone in that subtree.
	TeamPathPrefix string
	// TeamID, when set, admits users of exactly this team (a rep's
	// colleagues, for the directory only).
	TeamID *uuid.UUID
}

// None reports whether the scope admits nothing.
func (s Scope) None() bool {
	return !s.All && s.OwnerID == nil && s.TeamPathPrefix == "" && s.TeamID == nil
}

// RecordScope is the set of owned records p may see and act on: a rep his
// own, a supervisor those owned by anyone in his team's subtree (and his
// own), auditors and admins everything. API keys see no owned records
// through ownership; their scopes grant reads where the records package
// says so. Pooled records are governed by pool membership, not by this.
func RecordScope(p *auth.Principal) Scope {
	if p == nil {
		return Scope{}
	}
	if p.Type == auth.ActorAPIKey {
		return Scope{}
	}
	id := p.ID
	switch p.Role {
	case auth.RoleAdmin, auth.RoleAuditor:
		return Scope{All: true}
	case auth.RoleSupervisor:
		return Scope{OwnerID: &id, TeamPathPrefix: p.TeamPath}
	default:
		return Scope{OwnerID: &id}
	}
}

// UserScope is the set of users p may look up in the directory: admins and
// auditors everyone, supervisors their subtree (and themselves), reps
// themselves and the members of their own team (to hand records over).
func UserScope(p *auth.Principal) Scope {
	if p == nil || p.Type != auth.ActorUser {
		return Scope{}
	}
	id := p.ID
	switch p.Role {
	case auth.RoleAdmin, auth.RoleAuditor:
		return Scope{All: true}
	case auth.RoleSupervisor:
		return Scope{OwnerID: &id, TeamPathPrefix: p.TeamPath}
	default:
		return Scope{OwnerID: &id, TeamID: p.TeamID}
	}
}

// Supervises reports whether p (a supervisor or admin) may manage records
// owned by a user with the given team path: admins everyone, supervisors
// their subtree.
func Supervises(p *auth.Principal, userTeamPath string) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	switch p.Role {
	case auth.RoleAdmin:
		return true
	case auth.RoleSupervisor:
		return p.TeamPath != "" && len(userTeamPath) >= len(p.TeamPath) && userTeamPath[:len(p.TeamPath)] == p.TeamPath
	}
	return false
}
