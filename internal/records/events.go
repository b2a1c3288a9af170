package records

import (
	"context"

	entgo "entgo.io/ent"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
)

// emit writes an event by p about a record of this package in tx, at the
// injected clock's now.
func (s *Service) emit(ctx context.Context, tx *ent.Tx, p *auth.Principal, typ events.Type, kind string, id uuid.UUID, data any) error {
	return events.Emit(ctx, tx, events.Event{Type: typ, SubjectKind: kind, SubjectID: id,
		Actor: p.EventActor(), OccurredAt: s.clock.Now(), Data: data})
}

// emitUpdated writes <kind>.updated with the names of the fields m
// changes. It runs before m executes (it compares with the stored row), in
// the same transaction, so the event and the change commit together.
func (s *Service) emitUpdated(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind string, id uuid.UUID, m entgo.Mutation) error {
	fields, err := events.ChangedFields(ctx, m)
	if err != nil {
		return err
	}
	return s.emit(ctx, tx, p, events.Updated(kind), kind, id, events.Changed{Fields: fields})
}
