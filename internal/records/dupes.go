package records

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/store"
)

// dupKey is one normalised value a record claims.
type dupKey struct {
	Type  string // name, phone, email
	Value string
}

// keysOf returns the normalised keys of a company/customer name, a phone
// and an email, skipping empty ones. Person names are not keys: two people
// called 王伟 are not a duplicate.
func keysOf(name, phone, email string) []dupKey {
	var keys []dupKey
	if v := dedupe.Name(name); v != "" {
		keys = append(keys, dupKey{dedupe.MatchedName, v})
	}
	if v := dedupe.Phone(phone); v != "" {
		keys = append(keys, dupKey{dedupe.MatchedPhone, v})
	}
	if v := dedupe.Email(email); v != "" {
		keys = append(keys, dupKey{dedupe.MatchedEmail, v})
	}
	return keys
}

// Match is one existing record a value matched, told only as far as the
// caller may know it.
type Match struct {
	Kind       string     `json:"kind"`
	ID         *uuid.UUID `json:"id,omitempty"`
	CustomerID *uuid.UUID `json:"customerId,omitempty"`
	OwnerName  *string    `json:"ownerName"`
	PoolName   *string    `json:"poolName"`
	MatchedOn  string     `json:"matchedOn"`
}

// duplicateError is the 409 that names what matched.
func duplicateError(m []Match) error {
	return &apperr.Error{Kind: apperr.Conflict, Code: "duplicate", Message: "a record with the same name, phone or email already exists",
		Extra: map[string]any{"matches": m}}
}

// findMatches looks the keys up (one unique-index probe each) and
// describes each match for p. self is excluded (an update keeping its own
// values).
func (s *Service) findMatches(ctx context.Context, c *ent.Client, p *auth.Principal, keys []dupKey, self *uuid.UUID) ([]Match, error) {
	var out []Match
	for _, k := range keys {
		row, err := c.DedupeKey.Query().Where(dedupekey.KeyTypeEQ(dedupekey.KeyType(k.Type)), dedupekey.Value(k.Value)).Only(ctx)
		if ent.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("duplicate look-up: %w", err)
		}
		if self != nil && row.RecordID == *self {
			continue
		}
		m, err := s.describe(ctx, c, p, row, k.Type)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// describe names the owner and pool of a matched record, and its id only
// when p may see it and sees the matched value unmasked: naming the pooled
// record whose masked phone is the one just checked would undo the mask
// (one look-up per candidate number). The match itself is still reported,
// as for records p cannot see, so a duplicate is still refused.
func (s *Service) describe(ctx context.Context, c *ent.Client, p *auth.Principal, row *ent.DedupeKey, matchedOn string) (Match, error) {
	m := Match{Kind: string(row.RecordKind), MatchedOn: matchedOn}
	kind, id := string(row.RecordKind), row.RecordID
	if row.RecordKind == dedupekey.RecordKindContact && row.CustomerID != nil {
		kind, id = string(kinds.Customer), *row.CustomerID
	}
	k, err := ownedOf(kind)
	if err != nil {
		return m, err
	}
	rows, err := k.metas(ctx, c, 1, sql.FieldEQ("id", id))
	if err != nil {
		return m, fmt.Errorf("load matched %s: %w", kind, err)
	}
	if len(rows) == 0 {
		// The key's record is gone: keys are dropped with their record,
		// so this is a bug, not a client's mistake.
		return m, fmt.Errorf("load matched %s %s: no such record", kind, id)
	}
	owner, poolID := rows[0].OwnerID, rows[0].PoolID
	if owner != nil {
		if u, err := c.User.Get(ctx, *owner); err == nil {
			m.OwnerName = &u.Name
		}
	}
	if pl, err := c.Pool.Get(ctx, poolID); err == nil {
		m.PoolName = &pl.Name
	}
	a, err := s.access(ctx, p, kind)
	if err != nil {
		return m, err
	}
	visible, err := visibleIn(ctx, c, a, kind, id)
	if err != nil {
		return m, err
	}
	if visible && !a.masks(maskedField(row.RecordKind, matchedOn), owner, poolID) {
		if row.RecordKind == dedupekey.RecordKindContact {
			rid, cid := row.RecordID, id
			m.ID, m.CustomerID = &rid, &cid
		} else {
			m.ID = &id
		}
	}
	return m, nil
}

// maskedField is the maskable field a duplicate key of a record kind
// stands for: a lead's name key is its company.
func maskedField(kind dedupekey.RecordKind, matchedOn string) string {
	if kind == dedupekey.RecordKindLead && matchedOn == dedupe.MatchedName {
		return "company"
	}
	return matchedOn
}

// visible reports whether p may see the record.
func (s *Service) visible(ctx context.Context, c *ent.Client, p *auth.Principal, kind string, id uuid.UUID) (bool, error) {
	a, err := s.access(ctx, p, kind)
	if err != nil {
		return false, err
	}
	k, err := ownedOf(kind)
	if err != nil {
		return false, err
	}
	rows, err := k.metas(ctx, c, 1, sql.FieldEQ("id", id), a.scope)
	if err != nil || len(rows) == 0 {
		return false, err
	}
	// A merged record answers merged_into to whoever sees it (follow-ups
	// neither land on it nor list under it).
	if rows[0].MergedInto != nil {
		return false, kinds.Kind(kind).MergedInto(*rows[0].MergedInto)
	}
	return true, nil
}

// visibleIn reports whether the record is within a's scope.
func visibleIn(ctx context.Context, c *ent.Client, a access, kind string, id uuid.UUID) (bool, error) {
	k, err := ownedOf(kind)
	if err != nil {
		return false, err
	}
	rows, err := k.metas(ctx, c, 1, sql.FieldEQ("id", id), a.scope)
	return len(rows) > 0, err
}

// claimKeys reserves keys for a record in tx. Matches found first are
// reported in full; a concurrent transaction that claims the same value
// between the look-up and the insert is caught by the unique index, and
// the caller reports that with reportRace after rolling back.
func (s *Service) claimKeys(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind string, id uuid.UUID, customerID *uuid.UUID, keys []dupKey) error {
	if len(keys) == 0 {
		return nil
	}
	m, err := s.findMatches(ctx, tx.Client(), p, keys, &id)
	if err != nil {
		return err
	}
	if len(m) > 0 {
		return duplicateError(m)
	}
	builders := make([]*ent.DedupeKeyCreate, len(keys))
	for i, k := range keys {
		builders[i] = tx.DedupeKey.Create().SetKeyType(dedupekey.KeyType(k.Type)).SetValue(k.Value).
			SetRecordKind(dedupekey.RecordKind(kind)).SetRecordID(id).SetNillableCustomerID(customerID)
	}
	if err := tx.DedupeKey.CreateBulk(builders...).Exec(ctx); err != nil {
		if store.IsUniqueViolation(err) {
			return errRaced{keys: keys}
		}
		return fmt.Errorf("claim duplicate keys: %w", err)
	}
	return nil
}

// errRaced means another transaction claimed one of the keys first.
type errRaced struct{ keys []dupKey }

func (errRaced) Error() string { return "duplicate key claimed concurrently" }

// reportRace turns errRaced (after the transaction rolled back) into the
// duplicate error naming the winner.
func (s *Service) reportRace(ctx context.Context, p *auth.Principal, err error) error {
	r, ok := err.(errRaced)
	if !ok {
		return err
	}
	m, ferr := s.findMatches(ctx, s.store.Reader, p, r.keys, nil)
	if ferr != nil {
		return ferr
	}
	return duplicateError(m)
}

// releaseKeys drops the keys a record holds of the given types.
func releaseKeys(ctx context.Context, tx *ent.Tx, id uuid.UUID, types ...string) error {
	kt := make([]dedupekey.KeyType, len(types))
	for i, t := range types {
		kt[i] = dedupekey.KeyType(t)
	}
	_, err := tx.DedupeKey.Delete().Where(dedupekey.RecordID(id), dedupekey.KeyTypeIn(kt...)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("release duplicate keys: %w", err)
	}
	return nil
}

// moveLeadKeys hands a converted lead's duplicate keys over: its name key
// to the customer (a name typed on convert replaces the company's; a name
// another record holds stays that record's), its phone and email keys to
// the contact made of its person.
func moveLeadKeys(ctx context.Context, tx *ent.Tx, leadID, customerID, contactID uuid.UUID, name string) error {
	if err := releaseKeys(ctx, tx, leadID, dedupe.MatchedName); err != nil {
		return err
	}
	if v := dedupe.Name(name); v != "" {
		err := tx.DedupeKey.Create().SetKeyType(dedupekey.KeyTypeName).SetValue(v).SetRecordKind(dedupekey.RecordKind(kinds.Customer)).
			SetRecordID(customerID).OnConflictColumns(dedupekey.FieldKeyType, dedupekey.FieldValue).DoNothing().Exec(ctx)
		// An upsert that did nothing returns no row to read the id from.
		if err != nil && !errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("move keys: %w", err)
		}
	}
	if _, err := tx.DedupeKey.Update().Where(dedupekey.RecordID(leadID)).
		SetRecordKind(dedupekey.RecordKindContact).SetRecordID(contactID).SetCustomerID(customerID).Save(ctx); err != nil {
		return fmt.Errorf("move keys: %w", err)
	}
	return nil
}

// CheckDuplicates answers "who already has this?" for any caller.
func (s *Service) CheckDuplicates(ctx context.Context, p *auth.Principal, name, phone, email string) ([]Match, error) {
	keys := keysOf(name, phone, email)
	if len(keys) == 0 {
		return nil, apperr.Invalidf("query", "required", "give a name, phone or email that is not empty after normalisation")
	}
	return s.findMatches(ctx, s.store.Reader, p, keys, nil)
}
