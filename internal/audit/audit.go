// Package audit keeps the append-only audit log: who did what to which
// target, from where, and how it ended. Rows are only ever inserted.
package audit

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/auditevent"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/listing"
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

	mu       sync.Mutex
	pending  []*queued
	draining bool
}

// queued is an event waiting for the next batch, and where its writer
// hears how the batch ended.
type queued struct {
	event Event
	done  chan error
}

func create(tx *ent.Tx, e Event) *ent.AuditEventCreate {
	return tx.AuditEvent.Create().
		SetActorType(auditevent.ActorType(e.ActorType)).
		SetNillableActorID(e.ActorID).
		SetOperation(e.Operation).
		SetTargetType(e.TargetType).
		SetTargetID(e.TargetID).
		SetRequestID(e.RequestID).
		SetClientAddress(e.ClientAddress).
		SetOutcome(auditevent.Outcome(e.Outcome)).
		SetStatus(e.Status).
		SetDetail(e.Detail)
}

// maxBatch bounds one multi-row insert (12 columns per row, well under
// SQLite's parameter limit).
const maxBatch = 64

// New returns the audit log. It hooks the store's write client so that a
// request's audit entry learns which records the request created inside
// its transaction (see Pending).
func New(st *store.Store) *Log {
	l := &Log{store: st}
	st.Client.Use(createdHook)
	return l
}

// Record appends an event and returns once it is committed. Concurrent
// callers share one insert (group commit): under load every request still
// waits for its own row to be durable, but the database sees one write
// transaction per batch rather than one per request, which on SQLite's
// single writer is the difference that matters. The event is sanitised
// first, and a batch that fails is retried a row at a time, so no event can
// make another one's row fail.
func (l *Log) Record(ctx context.Context, e Event) error {
	q := &queued{done: make(chan error, 1), event: Sanitize(e)}
	l.mu.Lock()
	l.pending = append(l.pending, q)
	if !l.draining {
		l.draining = true
		go l.drain(unobserved(context.WithoutCancel(ctx)))
	}
	l.mu.Unlock()
	select {
	case err := <-q.done:
		if err != nil {
			return fmt.Errorf("record audit event: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// unobserved strips a request's pending entry from ctx: the log's own
// inserts must not be taken for the request's change.
func unobserved(ctx context.Context) context.Context {
	return context.WithValue(store.WithTxObserver(ctx, nil), pendingKey{}, (*Pending)(nil))
}

// Field bounds, in bytes. Everything but the detail is an identifier of
// some kind; nothing legitimate comes near them.
const (
	maxDetail = 500
	maxField  = 200
)

// Sanitize makes e safe to store on either engine and to show: valid UTF-8
// (PostgreSQL refuses anything else), no NUL or other control characters
// (PostgreSQL refuses NUL in text; the rest forge log lines), and bounded
// lengths. A target id that is not a UUID is dropped: it came from a path
// the server could not make sense of, and the log must only name records
// that can exist.
func Sanitize(e Event) Event {
	e.ActorType = clean(e.ActorType, maxField)
	e.Operation = clean(e.Operation, maxField)
	e.TargetType = clean(e.TargetType, maxField)
	e.TargetID = TargetID(e.TargetID)
	e.RequestID = clean(e.RequestID, maxField)
	e.ClientAddress = clean(e.ClientAddress, maxField)
	e.Detail = clean(e.Detail, maxDetail)
	return e
}

// TargetID is raw in canonical form if it is a UUID, else "".
func TargetID(raw string) string {
	id, err := uuid.Parse(raw)
	if err != nil || len(raw) > 64 {
		return ""
	}
	return id.String()
}

// clean replaces invalid UTF-8 and control characters with U+FFFD and cuts
// the result to at most n bytes.
func clean(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return utf8.RuneError
		}
		return r
	}, s)
	return truncate(s, n)
}

// truncate cuts s to at most n bytes without splitting a character
// (PostgreSQL refuses invalid UTF-8, which would fail a whole batch).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// drain writes what is queued, a batch at a time, until nothing is; events
// queued while a batch is written go into the next one.
func (l *Log) drain(ctx context.Context) {
	for {
		l.mu.Lock()
		n := min(len(l.pending), maxBatch)
		if n == 0 {
			l.draining = false
			l.mu.Unlock()
			return
		}
		batch := l.pending[:n:n]
		l.pending = l.pending[n:]
		l.mu.Unlock()

		// Through WithTx, so that on SQLite the batch joins whatever
		// transaction the writer runs next rather than committing alone.
		err := l.store.WithTx(ctx, func(tx *ent.Tx) error {
			creates := make([]*ent.AuditEventCreate, len(batch))
			for i, q := range batch {
				creates[i] = create(tx, q.event)
			}
			return tx.AuditEvent.CreateBulk(creates...).Exec(ctx)
		})
		if err != nil && len(batch) > 1 {
			// One bad row fails the whole insert: find it by writing
			// each row alone, so that it fails alone.
			for _, q := range batch {
				q.done <- l.store.WithTx(ctx, func(tx *ent.Tx) error {
					return create(tx, q.event).Exec(ctx)
				})
			}
			continue
		}
		for _, q := range batch {
			q.done <- err
		}
	}
}

// Filter narrows List.
type Filter struct {
	ActorID    *uuid.UUID
	TargetType *string
	TargetID   *string
	Operation  *string
	Since      *time.Time
	Until      *time.Time
	// Cursor is the position after the last event of the previous page.
	Cursor *listing.Cursor
	Limit  int
}

// eventList orders events by id, newest first (ids are time-ordered
// UUIDv7s).
var eventList = listing.ByID(auditevent.FieldID, func(e *ent.AuditEvent) uuid.UUID { return e.ID }, true)

// List returns events newest first and the cursor of the next page.
func (l *Log) List(ctx context.Context, f Filter) ([]*ent.AuditEvent, *listing.Cursor, error) {
	pg, err := eventList.Page("", f.Cursor, f.Limit)
	if err != nil {
		return nil, nil, err
	}
	filters := listing.Where(
		listing.Eq(auditevent.FieldActorID, f.ActorID),
		listing.Eq(auditevent.FieldTargetType, f.TargetType),
		listing.Eq(auditevent.FieldTargetID, f.TargetID),
		listing.Eq(auditevent.FieldOperation, f.Operation),
		listing.Range(auditevent.FieldAt, f.Since, f.Until),
	)
	events, err := l.store.Reader.AuditEvent.Query().Where(predicate.AuditEvent(filters), predicate.AuditEvent(pg.Apply)).
		Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list audit events: %w", err)
	}
	return events, pg.Next(events), nil
}
