package records

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/kinds"
)

// After is a record as an ownership operation's transaction left it, with
// its owner's name (exactly one of Lead and Customer is set): the engine
// hands it back (pool.After has the same fields) so that the record can be
// rendered without reading it again.
type After struct {
	Lead      *ent.Lead
	Customer  *ent.Customer
	OwnerName string
}

// Engine is what records needs of the pool engine, in records' terms, so
// that records does not import it (the engine's conversion and
// ownership operations build on records, not the other way round). The
// pool engine implements it; app wires it in.
type Engine interface {
	Clock() clock.Clock
	// Scope is p's authz scope over the records of kind (the pools whose
	// pooled records he sees, with their masking).
	Scope(ctx context.Context, p *auth.Principal, kind string) (authz.Scope, error)
	// PlaceNew places a new record in tx: insert writes its row where the
	// engine puts it; it returns how it was placed.
	PlaceNew(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, id uuid.UUID, requested *uuid.UUID,
		insert func(poolID uuid.UUID, owner *uuid.UUID, now time.Time) error) (string, error)
	// PlaceNewBatch places new records in tx at once, as PlaceNew would
	// one after the other in the order of ids: insert writes their rows
	// (owners[i] is ids[i]'s owner, nil when pooled); it returns each
	// one's placement.
	PlaceNewBatch(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, ids []uuid.UUID, requested *uuid.UUID,
		insert func(poolID uuid.UUID, owners []*uuid.UUID, now time.Time) error) ([]string, error)
	// Holder reads and locks a record's owner and pool in tx.
	Holder(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID) (*uuid.UUID, uuid.UUID, error)
	// SetDealt records a customer's deal status in tx.
	SetDealt(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID, dealt bool) error
	// FollowedUp moves the record's last follow-up to at in tx.
	FollowedUp(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID, at time.Time) error
}
