package auth

import (
	"context"

	"github.com/shoalcrm/shoal/internal/events"
)

// EventActor is the principal as the event feed names it; a nil principal
// is the system.
func (p *Principal) EventActor() events.Actor {
	if p == nil || p.Type == ActorSystem {
		return events.System
	}
	id := p.ID
	return events.Actor{Type: string(p.Type), ID: &id}
}

// ContextActor is the actor of the principal ctx carries (the system when
// it carries none), for services that are not handed the principal.
func ContextActor(ctx context.Context) events.Actor {
	return FromContext(ctx).EventActor()
}
