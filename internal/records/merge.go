package records

import (
	"context"
	"fmt"
	"slices"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/search"
)

// What records does for a merge (internal/merge runs the use case): the
// read path answers merged_into for a merged id (get, visible), lists
// leave merged records out (listPredicates), and MergeLeadInto /
// MergeCustomerInto write the survivor's chosen fields and recompute the
// duplicate keys in the merge's transaction.

// statusMerged is the status of a record merged into another;
// pool.StatusMerged is the same value.
const statusMerged = "merged"

// mergedInto is a row's survivor when the row is merged, else nil.
func mergedInto(status string, survivor *uuid.UUID) *uuid.UUID {
	if status != statusMerged {
		return nil
	}
	return survivor
}

// MergeLeadInto writes in onto the survivor lead in tx (the merge's
// transaction, with every row already locked), and recomputes the
// duplicate keys: the merged leads' and the survivor's are released and
// the survivor's claimed again from its final values. It bumps the
// survivor's version and writes lead.updated. A value another record
// holds is Conflict duplicate; one claimed concurrently surfaces as an
// error that ReportRace turns into duplicate after the rollback.
func (s *Service) MergeLeadInto(ctx context.Context, tx *ent.Tx, p *auth.Principal, survivor uuid.UUID, merged []uuid.UUID, in LeadInput) error {
	return leads.mergeInto(ctx, s, tx, p, survivor, merged, in)
}

// MergeCustomerInto is MergeLeadInto for customers.
func (s *Service) MergeCustomerInto(ctx context.Context, tx *ent.Tx, p *auth.Principal, survivor uuid.UUID, merged []uuid.UUID, in CustomerInput) error {
	return customers.mergeInto(ctx, s, tx, p, survivor, merged, in)
}

// ReportRace turns a duplicate key claimed concurrently during a
// transaction (after it rolled back) into the duplicate error naming the
// winner; other errors pass through.
func (s *Service) ReportRace(ctx context.Context, p *auth.Principal, err error) error {
	return s.reportRace(ctx, p, err)
}

func (k *ownedKind[R, In]) mergeInto(ctx context.Context, s *Service, tx *ent.Tx, p *auth.Principal, survivor uuid.UUID, merged []uuid.UUID, in In) error {
	if k.validate != nil {
		if err := k.validate(in); err != nil {
			return err
		}
	}
	ids := append([]uuid.UUID{survivor}, merged...)
	if _, err := tx.DedupeKey.Delete().Where(dedupekey.RecordKindEQ(dedupekey.RecordKind(k.kind)), dedupekey.RecordIDIn(ids...)).
		Exec(ctx); err != nil {
		return fmt.Errorf("release duplicate keys: %w", err)
	}
	m, exec := k.update(tx, survivor, in)
	m.AddVersion(1)
	m.SetUpdatedAt(s.clock.Now())
	if err := s.emitUpdated(ctx, tx, p, string(k.kind), survivor, m); err != nil {
		return err
	}
	if err := exec(ctx); err != nil {
		return fmt.Errorf("merge into %s: %w", k.kind, err)
	}
	rows, err := k.find(ctx, tx.Client(), 1, sql.FieldEQ("id", survivor))
	if err != nil {
		return fmt.Errorf("reload %s: %w", k.kind, err)
	}
	if len(rows) == 0 {
		return fmt.Errorf("reload %s %s: no such record", k.kind, survivor)
	}
	if err := s.claimKeys(ctx, tx, p, string(k.kind), survivor, nil, k.held(k.stored(rows[0])).keys()); err != nil {
		return err
	}
	// The search index follows: the survivor's fields (and, for a
	// customer, the contacts that moved to it) are found under it, the
	// merged records no more.
	if err := search.Drop(ctx, tx, k.kind, merged...); err != nil {
		return err
	}
	return search.Reindex(ctx, tx, k.kind, survivor)
}

// held keeps the values of the key types the kind holds (the registry's
// DedupeFields); the others are no keys of this kind.
func (k *ownedKind[R, In]) held(f dedupeFields) dedupeFields {
	kept := k.kind.Desc().DedupeFields
	for _, c := range []struct {
		typ string
		v   **string
	}{{dedupe.MatchedName, &f.name}, {dedupe.MatchedPhone, &f.phone}, {dedupe.MatchedEmail, &f.email}} {
		if !slices.Contains(kept, c.typ) {
			*c.v = nil
		}
	}
	return f
}
