package pool

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
)

// StatusMerged is the status of a record merged into another. Like
// invalid, it is not active, so the record is never claimable, swept,
// auto-assigned nor counted against a cap (Counts, the sweep's and the
// claims' status checks); unlike invalid it never comes back.
const StatusMerged = "merged"

// mergedInto is the survivor of a merged record (nil unless merged).
func (r *Record) mergedInto() *uuid.UUID {
	if r.Status != StatusMerged {
		return nil
	}
	switch row := r.row.(type) {
	case *ent.Lead:
		return row.MergedIntoID
	case *ent.Customer:
		return row.MergedIntoID
	}
	return nil
}

// Merging is one record of a merge (the survivor or one merged into it),
// locked in the merge's transaction.
type Merging struct{ o *op }

// OpenMerge loads and locks a record for a merge in tx. A record p may not
// see is NotFound, one already merged is merged_into, and one p may not
// merge is Forbidden not_record_owner: merging takes an admin, a
// supervisor of the record's owner, or for a pooled record a manager of
// its pool (the owner himself may not: the merged records leave other
// people's work).
func (s *Service) OpenMerge(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, id uuid.UUID) (*Merging, error) {
	o, err := s.open(ctx, tx, kind, id, func(o *op) bool { return o.sees(p) })
	if err != nil {
		return nil, err
	}
	if !mayMerge(o.scope(p), o.row(), p) {
		return nil, errNotRecordOwner
	}
	return &Merging{o: o}, nil
}

// mayMerge is the merge rule for one record (see OpenMerge).
func mayMerge(sc authz.Scope, row authz.Row, p *auth.Principal) bool {
	if p.Type != auth.ActorUser || p.Role == auth.RoleAuditor {
		return false
	}
	if row.OwnerID == nil {
		return sc.ManagesPool(row.PoolID)
	}
	return sc.ManagesOwner(row)
}

// Status is the record's status.
func (m *Merging) Status() string { return m.o.r.Status }

// OwnerID is the record's owner (nil when pooled).
func (m *Merging) OwnerID() *uuid.UUID { return m.o.r.OwnerID }

// Lead is the locked row of a lead (nil for a customer).
func (m *Merging) Lead() *ent.Lead { l, _ := m.o.r.row.(*ent.Lead); return l }

// Customer is the locked row of a customer (nil for a lead).
func (m *Merging) Customer() *ent.Customer { c, _ := m.o.r.row.(*ent.Customer); return c }

// MergeAway takes the record out of circulation, merged into survivor, in
// the merge's transaction: its owner's counter drops if it counted (so the
// cap stays exact), its freeze ends, its status becomes merged with the
// pointer to the survivor, its version moves, and <kind>.merged is
// written. The owner stays on the row: he and those who saw the record
// still see its id answer merged_into.
func (s *Service) MergeAway(ctx context.Context, p *auth.Principal, m *Merging, survivor uuid.UUID) error {
	o := m.o
	if o.r.OwnerID != nil && o.r.Counts(o.st) {
		if err := adjust(ctx, o.tx, *o.r.OwnerID, o.r.Kind, -1); err != nil {
			return err
		}
	}
	o.r.Status, o.r.FrozenUntil = StatusMerged, nil
	if err := s.save(ctx, o.tx, o.r, o.pl, o.now); err != nil {
		return err
	}
	var err error
	switch row := o.r.row.(type) {
	case *ent.Lead:
		err = o.tx.Lead.Update().Where(lead.ID(o.r.ID)).SetMergedIntoID(survivor).Exec(ctx)
		row.MergedIntoID = &survivor
	case *ent.Customer:
		err = o.tx.Customer.Update().Where(customer.ID(o.r.ID)).SetMergedIntoID(survivor).Exec(ctx)
		row.MergedIntoID = &survivor
	default:
		err = fmt.Errorf("no row loaded for %s %s", o.r.Kind, o.r.ID)
	}
	if err != nil {
		return fmt.Errorf("mark %s merged: %w", o.r.Kind, err)
	}
	return events.Emit(ctx, o.tx, events.Event{Type: events.MergedType(string(o.r.Kind)), SubjectKind: string(o.r.Kind),
		SubjectID: o.r.ID, Actor: p.EventActor(), OccurredAt: o.now, Data: events.Merged{SurvivorID: survivor, OwnerID: o.r.OwnerID}})
}
