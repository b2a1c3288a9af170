package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/store"
)

// Pending is the audit entry of one request while the request runs. It is
// written exactly once: inside the first transaction of the request that
// commits (so a change can never be committed without its audit row, not
// even if the process dies right after the commit), or, when the request
// ends without committing anything, after the response through Record.
//
// Handlers often learn the target only after the commit (a create learns
// its id from the service's answer), so the row written inside the
// transaction is completed by a Resolver from what the transaction itself
// created (see Created).
type Pending struct {
	log     *Log
	resolve Resolver

	mu      sync.Mutex
	event   Event
	created []Created
	// changed are the field names each subject's update events named.
	changed []changedFields
	state   pendingState
}

// changedFields are the names of the fields an update changed on one
// subject, as its domain event (events.Changed) lists them: names only,
// never values, secrets under their public names.
type changedFields struct {
	kind   string
	id     uuid.UUID
	fields []string
}

type pendingState int

const (
	open     pendingState = iota // nothing written yet
	inflight                     // inserted into a transaction not yet ended
	written                      // committed with a change of the request
	closed                       // the request is over; Close decided
)

// Created is a record a request's transaction created.
type Created struct {
	Type string // the ent type: "Lead", "RefreshToken", …
	ID   uuid.UUID
	// UserID is the record's user_id field, if it has one (a login's
	// refresh token names the user who logged in).
	UserID *uuid.UUID
}

// Resolver completes ev inside the transaction, from ctx (the context the
// domain code passed to WithTx, which carries the principal) and from what
// the transaction created so far.
type Resolver func(ctx context.Context, ev *Event, created []Created)

type pendingKey struct{}

// Begin starts the audit entry of a request: base is what is known before
// the request runs, with the outcome and status it will have if a
// transaction of the request commits. The returned context carries the
// entry and makes every WithTx under it write the entry.
func (l *Log) Begin(ctx context.Context, base Event, resolve Resolver) (context.Context, *Pending) {
	p := &Pending{log: l, resolve: resolve, event: base}
	ctx = context.WithValue(ctx, pendingKey{}, p)
	return store.WithTxObserver(ctx, p), p
}

// PendingFrom returns the request's entry, or nil.
func PendingFrom(ctx context.Context) *Pending {
	p, _ := ctx.Value(pendingKey{}).(*Pending)
	return p
}

// Update changes the entry (handlers noting their target, detail, …).
// Changes made after the entry was written inside a transaction never
// reach the log, which is append-only; they only matter for an entry that
// Close hands back.
func (p *Pending) Update(f func(ev *Event)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(&p.event)
}

// Close ends the request's part: it reports whether the entry was written
// inside a transaction and, if not, returns the entry as noted so far for
// the caller to complete and Record. Transactions that start after Close
// no longer write it.
func (p *Pending) Close() (ev Event, done bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// inflight cannot happen for a handler whose WithTx calls all returned;
	// should a body have left work behind, its transaction will decide.
	done = p.state == written || p.state == inflight
	if !done {
		p.state = closed
	}
	return p.event, done
}

// BodyStarts implements store.TxObserver: what an earlier body created
// was rolled back with it (a failed body, or a try that PostgreSQL aborted
// and WithRetryTx runs again), so only what this body creates counts.
func (p *Pending) BodyStarts(context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == open {
		p.created = p.created[:0]
		p.changed = p.changed[:0]
	}
}

// BeforeCommit implements store.TxObserver: it inserts the entry into the
// transaction, unless an earlier transaction of the request already did.
func (p *Pending) BeforeCommit(ctx context.Context, tx *ent.Tx) (func(committed bool), error) {
	p.mu.Lock()
	if p.state != open {
		p.mu.Unlock()
		return nil, nil
	}
	ev := p.event
	if p.resolve != nil {
		p.resolve(ctx, &ev, append([]Created(nil), p.created...))
	}
	withChanged(&ev, p.changed)
	p.state = inflight
	p.mu.Unlock()

	if err := create(tx, Sanitize(ev)).Exec(ctx); err != nil {
		p.mu.Lock()
		p.state = open
		p.mu.Unlock()
		return nil, fmt.Errorf("write audit event: %w", err)
	}
	return func(committed bool) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.state != inflight {
			return
		}
		if committed {
			p.state = written
			return
		}
		// Rolled back with the change: the next transaction, or the
		// request's end, writes the entry.
		p.state = open
	}, nil
}

// withChanged completes ev with the names of the fields the request's
// update changed on its target: "fields=name,phone" in the detail. With no
// target yet, a request that changed one subject names it.
func withChanged(ev *Event, changed []changedFields) {
	var hit *changedFields
	for i := range changed {
		c := &changed[i]
		id := c.id.String()
		if c.id == uuid.Nil {
			id = "" // a singleton (the settings) has no id
		}
		// An operation on a target of another type (a personal-data
		// erasure, target personalData) does not adopt the id of the one
		// record it happened to update.
		if ev.TargetID == "" && len(changed) == 1 && (ev.TargetType == "" || ev.TargetType == c.kind) {
			ev.TargetID = id
		}
		if id == ev.TargetID {
			hit = c
			break
		}
	}
	if hit == nil || len(hit.fields) == 0 {
		return
	}
	if ev.TargetType == "" {
		ev.TargetType = hit.kind
	}
	note := "fields=" + strings.Join(hit.fields, ",")
	if ev.Detail != "" {
		note = ev.Detail + " " + note
	}
	ev.Detail = note
}

// eventFields reads the changed field names off a domain event's payload
// ({"data": {"fields": [...]}}), nil when it names none.
func eventFields(m ent.Mutation) []string {
	data, ok := m.Field("data")
	if !ok {
		return nil
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil
	}
	var body struct {
		Data struct {
			Fields []string `json:"fields"`
		} `json:"data"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return nil
	}
	return body.Data.Fields
}

// noteChanged remembers the fields a domain event created under p says
// its subject's update changed.
func (p *Pending) noteChanged(m ent.Mutation) {
	typ, _ := m.Field("type")
	if s, _ := typ.(string); !strings.HasSuffix(s, ".updated") {
		return
	}
	fields := eventFields(m)
	if len(fields) == 0 {
		return
	}
	kind, _ := m.Field("subject_kind")
	id, _ := m.Field("subject_id")
	k, _ := kind.(string)
	sid, ok := id.(uuid.UUID)
	if !ok {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != open {
		return
	}
	for i := range p.changed {
		if p.changed[i].id == sid {
			p.changed[i].fields = mergeNames(p.changed[i].fields, fields)
			return
		}
	}
	p.changed = append(p.changed, changedFields{kind: k, id: sid, fields: mergeNames(nil, fields)})
}

// mergeNames is the sorted union of two name lists.
func mergeNames(a, b []string) []string {
	out := append(append([]string(nil), a...), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// createdHook tells the pending entry on a mutation's context of every
// record created under it, and of the fields each update event names.
func createdHook(next ent.Mutator) ent.Mutator {
	return ent.MutateFunc(func(ctx context.Context, m ent.Mutation) (ent.Value, error) {
		v, err := next.Mutate(ctx, m)
		p := PendingFrom(ctx)
		if err != nil || p == nil || !m.Op().Is(ent.OpCreate) || m.Type() == "AuditEvent" {
			return v, err
		}
		if m.Type() == "DomainEvent" {
			p.noteChanged(m)
		}
		withID, ok := m.(interface{ ID() (uuid.UUID, bool) })
		if !ok {
			return v, err
		}
		id, ok := withID.ID()
		if !ok {
			return v, err
		}
		c := Created{Type: m.Type(), ID: id}
		if u, ok := m.Field("user_id"); ok {
			if u, ok := u.(uuid.UUID); ok {
				c.UserID = &u
			}
		}
		p.mu.Lock()
		if p.state == open {
			p.created = append(p.created, c)
		}
		p.mu.Unlock()
		return v, err
	})
}
