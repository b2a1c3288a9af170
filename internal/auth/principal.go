// Package auth authenticates callers: passwords, login sessions with
// rotating refresh tokens, EdDSA access tokens, and API keys for partner
// integrations. It turns credentials into a Principal and knows nothing of HTTP.
package auth

import (
	"context"
	"slices"

	"github.com/google/uuid"
)

// ActorType says what kind of caller a Principal is.
type ActorType string

// The kinds of caller.
const (
	ActorUser   ActorType = "user"
	ActorAPIKey ActorType = "apiKey"
	ActorSystem ActorType = "system"
)

// Roles of people.
const (
	RoleRep        = "rep"
	RoleSupervisor = "supervisor"
	RoleAuditor    = "auditor"
	RoleAdmin      = "admin"
)

// Principal is an authenticated caller.
type Principal struct {
	Type ActorType
	// ID is the user's id, or the API key's id.
	ID uuid.UUID
	// Name is the user's display name or the key's name.
	Name string
	// Role is the user's role; empty for API keys.
	Role string
	// TeamID and TeamPath place a user in the team tree.
	TeamID   *uuid.UUID
	TeamPath string
	// Scopes and PoolID restrict an API key.
	Scopes []string
	PoolID *uuid.UUID
	// CreatedBy is the user who created an API key.
	CreatedBy uuid.UUID
	// SessionID is the login session (refresh-token family) of a user's
	// access token; uuid.Nil when the token names none.
	SessionID uuid.UUID
}

// IsUser reports whether the principal is a person with the given role.
func (p *Principal) IsUser(role string) bool {
	return p != nil && p.Type == ActorUser && p.Role == role
}

// HasScope reports whether an API key principal was granted scope.
func (p *Principal) HasScope(scope string) bool {
	return p != nil && p.Type == ActorAPIKey && slices.Contains(p.Scopes, scope)
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal carried by ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
