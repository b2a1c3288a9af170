package personaldata

import (
	"bytes"
	"context"
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

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
}

// redactTables redacts v in every row of the immutable tables whose free
// text holds it: follow-up contents, history and claim-request reasons,
// reclaim warnings and event payloads (whatever record they are of: a
// reason given on another record may name the person too).
func (e *eraser) redactTables(ctx context.Context, v Values) error {
	if v.Empty() {
		return nil
	}
	r := &e.out.Redacted
	for _, c := range []textColumn{
		{followup.Table, followup.FieldContent, false, maxContent, &r.FollowUps},
		{ownershipchange.Table, ownershipchange.FieldReason, false, maxReason, &r.History},
		{claimrequest.Table, claimrequest.FieldReason, false, maxReason, &r.ClaimRequests},
		{reclaimwarning.Table, reclaimwarning.FieldReason, false, maxReason, &r.ReclaimWarnings},
		{domainevent.Table, domainevent.FieldData, true, maxReason, &r.Events},
	} {
		if err := e.redactColumn(ctx, c, v); err != nil {
			return fmt.Errorf("redact %s.%s: %w", c.table, c.column, err)
		}
	}
	return nil
}

func (e *eraser) redactColumn(ctx context.Context, c textColumn, v Values) error {
	b := sql.Dialect(e.s.store.Dialect)
	t := sql.Table(c.table)
	q, args := b.Select(t.C("id"), t.C(c.column)).From(t).Where(likeAny(t.C(c.column), v.Patterns())).
		OrderBy(t.C("id")).Query()
	rows, err := e.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	type change struct {
		id  uuid.UUID
		val any
	}
	var changes []change
	for rows.Next() {
		var id uuid.UUID
		var text stdsql.NullString
		if err := rows.Scan(&id, &text); err != nil {
			_ = rows.Close()
			return err
		}
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
	if err := rows.Close(); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
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
