// Package audit keeps the append-only audit log: who did what to which
// target, from where, and how it ended. Rows are only ever inserted.
package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/auditevent"
	"github.com/shoalcrm/shoal/internal/store"
)

// Outcomes of an audited operation.
const (
	Success = "success"
	Failure = "failure"
	Denied  = "denied"
)

// Event is one audit entry.
type Event struct {
	ActorType     string // user, apiKey, system, anonymous
	ActorID       *uuid.UUID
	Operation     string
	TargetType    string
	TargetID      string
	RequestID     string
	ClientAddress string
	Outcome       string
	Status        int
	Detail        string
}

// Log writes and reads audit events.
type Log struct {
	store *store.Store
}

// New returns the audit log.
func New(st *store.Store) *Log { return &Log{store: st} }

// Record appends an event.
func (l *Log) Record(ctx context.Context, e Event) error {
	detail := e.Detail
	if len(detail) > 500 {
		detail = detail[:500]
	}
	err := l.store.Client.AuditEvent.Create().
		SetActorType(auditevent.ActorType(e.ActorType)).
		SetNillableActorID(e.ActorID).
		SetOperation(e.Operation).
		SetTargetType(e.TargetType).
		SetTargetID(e.TargetID).
		SetRequestID(e.RequestID).
		SetClientAddress(e.ClientAddress).
		SetOutcome(auditevent.Outcome(e.Outcome)).
		SetStatus(e.Status).
		SetDetail(detail).
		Exec(ctx)
	if err != nil {
		return fmt.Errorf("record audit event: %w", err)
	}
	return nil
}

// Filter narrows List.
type Filter struct {
	ActorID    *uuid.UUID
	TargetType *string
	TargetID   *string
	Operation  *string
	Since      *time.Time
	Until      *time.Time
	// Before is the id of the last event of the previous page.
	Before *uuid.UUID
	Limit  int
}

// List returns events newest first (ids are time-ordered UUIDv7s).
func (l *Log) List(ctx context.Context, f Filter) ([]*ent.AuditEvent, error) {
	q := l.store.Reader.AuditEvent.Query().Order(ent.Desc(auditevent.FieldID)).Limit(f.Limit)
	if f.ActorID != nil {
		q = q.Where(auditevent.ActorID(*f.ActorID))
	}
	if f.TargetType != nil {
		q = q.Where(auditevent.TargetType(*f.TargetType))
	}
	if f.TargetID != nil {
		q = q.Where(auditevent.TargetID(*f.TargetID))
	}
	if f.Operation != nil {
		q = q.Where(auditevent.Operation(*f.Operation))
	}
	if f.Since != nil {
		q = q.Where(auditevent.AtGTE(f.Since.UTC()))
	}
	if f.Until != nil {
		q = q.Where(auditevent.AtLT(f.Until.UTC()))
	}
	if f.Before != nil {
		q = q.Where(auditevent.IDLT(*f.Before))
	}
	events, err := q.All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return events, nil
}
