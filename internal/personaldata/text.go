package personaldata

import (
	"bytes"
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/claimrequest"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/store"
)

// The lengths the API allows the free-text fields the erasure rewrites
// (notes have no limit): a redacted text must still fit.
const (
	maxShort   = 200
	maxReason  = 500
	maxContent = 5000
)

// likeAny is "col, as lower-case text, holds one of patterns" (already
// lower case), with LIKE's wildcards escaped, on both engines. The CAST
// lets it read a JSON column too.
func likeAny(col string, patterns []string) *sql.Predicate {
	if len(patterns) == 0 {
		return sql.False()
	}
	esc := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	preds := make([]*sql.Predicate, len(patterns))
	for i, p := range patterns {
		preds[i] = sql.P(func(b *sql.Builder) {
			b.WriteString("LOWER(CAST(").WriteString(col).WriteString(" AS TEXT)) LIKE ").
				Arg("%" + esc.Replace(p) + "%").WriteString(` ESCAPE '\'`)
		})
	}
	return sql.Or(preds...)
}

// textColumn is a free-text column of a table with no API to change it
// (follow-ups, history and claim requests are immutable records): the
// erasure rewrites it in place, keeping the row.
type textColumn struct {
	table, column string
	json          bool
	max           int // the longest text the API answers for it
	count         *int
	// appendOnly tables only ever gain rows (with time-ordered UUIDv7
	// ids): their candidates can be found before the transaction.
	appendOnly bool
}

func (e *eraser) columns() []textColumn {
	r := &e.out.Redacted
	return []textColumn{
		{followup.Table, followup.FieldContent, false, maxContent, &r.FollowUps, true},
		{ownershipchange.Table, ownershipchange.FieldReason, false, maxReason, &r.History, true},
		{claimrequest.Table, claimrequest.FieldReason, false, maxReason, &r.ClaimRequests, false},
		{reclaimwarning.Table, reclaimwarning.FieldReason, false, maxReason, &r.ReclaimWarnings, true},
		{domainevent.Table, domainevent.FieldData, true, maxReason, &r.Events, true},
	}
}

// prescan is what a scan of the append-only tables found before the
// erasure's transaction, on the readers: reading every row of the event
// feed inside the transaction would hold SQLite's one writer for as long.
// The transaction then reads only these candidates and the rows written
// since (ids from since on), for the same values.
type prescan struct {
	patterns string // the values' patterns it looked for
	since    uuid.UUID
	ids      map[string][]uuid.UUID // table → candidate ids
}

// scanMargin is how much earlier than the pre-scan a row's id may have
// been made and the row still not be committed when the pre-scan read.
const scanMargin = 10 * time.Minute

// LowestID is the smallest UUIDv7 made at t or later.
func LowestID(t time.Time) uuid.UUID {
	var id uuid.UUID
	ms := uint64(t.UnixMilli())
	for i := 0; i < 6; i++ {
		id[i] = byte(ms >> (40 - 8*i))
	}
	return id
}

// prescan finds, on the readers, the candidate rows of the append-only
// tables for the values of k's records as the readers see them.
func (s *Service) prescan(ctx context.Context, k Key) (*prescan, error) {
	since := LowestID(time.Now().Add(-scanMargin))
	m, err := s.match(ctx, s.store.Reader, k, false)
	if err != nil {
		return nil, err
	}
	v := personValues(k, m)
	pre := &prescan{patterns: strings.Join(v.Patterns(), "\x00"), since: since, ids: map[string][]uuid.UUID{}}
	if v.Empty() {
		return pre, nil
	}
	b := sql.Dialect(s.store.Dialect)
	for _, c := range (&eraser{out: &Erasure{}}).columns() {
		if !c.appendOnly {
			continue
		}
		t := b.Table(c.table)
		q, args := b.Select(t.C("id")).From(t).Where(likeAny(t.C(c.column), v.Patterns())).Query()
		var ids []uuid.UUID
		rows, err := s.store.Reader.QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("pre-scan %s: %w", c.table, err)
		}
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				_ = rows.Close()
				return nil, fmt.Errorf("pre-scan %s: %w", c.table, err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return nil, fmt.Errorf("pre-scan %s: %w", c.table, err)
		}
		pre.ids[c.table] = ids
	}
	return pre, nil
}

// redactTables redacts v in every row of the immutable tables whose free
// text holds it: follow-up contents, history and claim-request reasons,
// reclaim warnings and event payloads (whatever record they are of: a
// reason given on another record may name the person too). pre, when it
// looked for the same values, narrows the append-only tables.
func (e *eraser) redactTables(ctx context.Context, v Values, pre *prescan) error {
	if v.Empty() {
		return nil
	}
	if pre != nil && pre.patterns != strings.Join(v.Patterns(), "\x00") {
		pre = nil // the records changed meanwhile: scan everything
	}
	for _, c := range e.columns() {
		if err := e.redactColumn(ctx, c, v, pre); err != nil {
			return fmt.Errorf("redact %s.%s: %w", c.table, c.column, err)
		}
	}
	return nil
}

func (e *eraser) redactColumn(ctx context.Context, c textColumn, v Values, pre *prescan) error {
	b := sql.Dialect(e.s.store.Dialect)
	// A table quotes its columns in its dialect's way only once it has
	// one: the predicates are built before the selects.
	t := b.Table(c.table)
	var wheres []*sql.Predicate
	if pre == nil || !c.appendOnly {
		wheres = append(wheres, likeAny(t.C(c.column), v.Patterns()))
	} else {
		// The candidates, a chunk at a time (SQLite takes at most 32766
		// parameters a statement), then the rows written since.
		ids := pre.ids[c.table]
		for len(ids) > 0 {
			n := min(1000, len(ids))
			in := make([]any, n)
			for i, id := range ids[:n] {
				in[i] = id
			}
			wheres = append(wheres, sql.And(sql.In(t.C("id"), in...), likeAny(t.C(c.column), v.Patterns())))
			ids = ids[n:]
		}
		wheres = append(wheres, sql.And(sql.GTE(t.C("id"), pre.since), likeAny(t.C(c.column), v.Patterns())))
	}
	type change struct {
		id  uuid.UUID
		val any
	}
	var changes []change
	seen := map[uuid.UUID]bool{}
	for _, where := range wheres {
		q, args := b.Select(t.C("id"), t.C(c.column)).From(t).Where(where).OrderBy(t.C("id")).Query()
		rows, err := e.tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id uuid.UUID
			var text stdsql.NullString
			if err := rows.Scan(&id, &text); err != nil {
				_ = rows.Close()
				return err
			}
			if seen[id] {
				continue
			}
			seen[id] = true
			if c.json {
				if out, hit, err := redactJSON([]byte(text.String), v, c.max); err != nil {
					_ = rows.Close()
					return err
				} else if hit {
					changes = append(changes, change{id, out})
				}
				continue
			}
			if out, hit := v.RedactWithin(text.String, c.max); hit {
				changes = append(changes, change{id, out})
			}
		}
		if err := errors.Join(rows.Close(), rows.Err()); err != nil {
			return err
		}
	}
	for _, ch := range changes {
		q, args := b.Update(c.table).Set(c.column, ch.val).Where(sql.EQ("id", ch.id)).Query()
		if _, err := e.tx.ExecContext(ctx, q, args...); err != nil {
			return err
		}
	}
	*c.count += len(changes)
	return nil
}

// redactJSON redacts v in every string of a JSON document (keys are field
// names and stay).
func redactJSON(raw []byte, v Values, max int) ([]byte, bool, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, false, fmt.Errorf("read JSON: %w", err)
	}
	hit := false
	var walk func(x any) any
	walk = func(x any) any {
		switch t := x.(type) {
		case string:
			if s, ok := v.RedactWithin(t, max); ok {
				hit = true
				return s
			}
		case map[string]any:
			for k, val := range t {
				t[k] = walk(val)
			}
		case []any:
			for i, val := range t {
				t[i] = walk(val)
			}
		}
		return x
	}
	doc = walk(doc)
	if !hit {
		return nil, false, nil
	}
	out, err := json.Marshal(doc)
	return out, true, err
}

// redactOthers redacts v in the notes of leads and contacts, and the
// addresses of customers, that are not the person's own records but
// mention him. Each changed record moves its version and gets its
// <kind>.updated naming the field.
func (e *eraser) redactOthers(ctx context.Context, v Values, mine map[uuid.UUID]bool) error {
	if v.Empty() {
		return nil
	}
	pats := v.Patterns()
	leads, err := store.ForUpdate(e.s.store, e.tx.Lead.Query().Where(predicate.Lead(func(s *sql.Selector) {
		s.Where(likeAny(s.C(lead.FieldNotes), pats))
	})).Order(ent.Asc(lead.FieldID))).Select(lead.FieldNotes).All(ctx)
	if err != nil {
		return fmt.Errorf("find leads mentioning: %w", err)
	}
	for _, l := range leads {
		s, hit := v.Redact(l.Notes)
		if mine[l.ID] || !hit {
			continue
		}
		upd := e.tx.Lead.UpdateOneID(l.ID).SetNotes(s)
		if err := e.updated(ctx, events.KindLead, l.ID, upd.Mutation(), nil, func() error {
			return upd.AddVersion(1).SetUpdatedAt(e.now).Exec(ctx)
		}); err != nil {
			return err
		}
	}
	contacts, err := store.ForUpdate(e.s.store, e.tx.Contact.Query().Where(predicate.Contact(func(s *sql.Selector) {
		s.Where(sql.Or(likeAny(s.C(contact.FieldNotes), pats), likeAny(s.C(contact.FieldTitle), pats)))
	})).Order(ent.Asc(contact.FieldID))).Select(contact.FieldCustomerID, contact.FieldNotes, contact.FieldTitle).All(ctx)
	if err != nil {
		return fmt.Errorf("find contacts mentioning: %w", err)
	}
	for _, ct := range contacts {
		if mine[ct.ID] {
			continue
		}
		upd := e.tx.Contact.UpdateOneID(ct.ID)
		notes, hitN := v.Redact(ct.Notes)
		title, hitT := v.RedactWithin(ct.Title, maxShort)
		if !hitN && !hitT {
			continue
		}
		if hitN {
			upd.SetNotes(notes)
		}
		if hitT {
			upd.SetTitle(title)
		}
		cid := ct.CustomerID
		if err := e.updated(ctx, events.KindContact, ct.ID, upd.Mutation(), &cid, func() error {
			return upd.AddVersion(1).SetUpdatedAt(e.now).Exec(ctx)
		}); err != nil {
			return err
		}
	}
	customers, err := store.ForUpdate(e.s.store, e.tx.Customer.Query().Where(predicate.Customer(func(s *sql.Selector) {
		s.Where(likeAny(s.C(customer.FieldAddress), pats))
	})).Order(ent.Asc(customer.FieldID))).Select(customer.FieldAddress).All(ctx)
	if err != nil {
		return fmt.Errorf("find customers mentioning: %w", err)
	}
	for _, cu := range customers {
		s, hit := v.RedactWithin(cu.Address, maxShort)
		if mine[cu.ID] || !hit {
			continue
		}
		upd := e.tx.Customer.UpdateOneID(cu.ID).SetAddress(s)
		if err := e.updated(ctx, events.KindCustomer, cu.ID, upd.Mutation(), nil, func() error {
			return upd.AddVersion(1).SetUpdatedAt(e.now).Exec(ctx)
		}); err != nil {
			return err
		}
	}
	return nil
}

// updated writes the <kind>.updated of a record whose text the erasure
// redacted (a contact's payload names its customer), then runs exec.
func (e *eraser) updated(ctx context.Context, kind string, id uuid.UUID, m ent.Mutation, customerID *uuid.UUID, exec func() error) error {
	fields, err := events.ChangedFields(ctx, m)
	if err != nil {
		return err
	}
	var data any = events.Changed{Fields: fields}
	if customerID != nil {
		data = events.Contact{CustomerID: *customerID, Fields: fields}
	}
	if err := e.emit(ctx, events.Updated(kind), kind, id, data); err != nil {
		return err
	}
	if err := exec(); err != nil {
		return fmt.Errorf("redact %s: %w", kind, err)
	}
	e.changed(kind, id, false, fields)
	return nil
}
