package authz

import (
	"slices"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/auth"
)

// ManagesPool reports whether p manages a pool with these managers: its
// managers and every admin do. Both the pool engine (decisions on pooled
// records) and records (editing and masking pooled records) ask it, so it
// lives below both.
func ManagesPool(p *auth.Principal, managerIDs []uuid.UUID) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	return p.Role == auth.RoleAdmin || slices.Contains(managerIDs, p.ID)
}
