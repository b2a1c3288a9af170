package records

import (
	"context"
	"fmt"
	"time"

	entgo "entgo.io/ent"
	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/search"
	"github.com/shoalcrm/shoal/internal/store"
)

// Leads and customers are both owned records: placed by the pool engine,
// scoped and masked the same way, duplicate-keyed, versioned. owned holds
// create, get, list, update and view once; ownedKind is what one kind adds
// (its ent type, its input, which of its fields are keys and masked).

// View is an owned record as one caller sees it.
type View[R any] struct {
	Row       R
	OwnerName *string
	Masked    bool
	// Placement is set on create only.
	Placement string
}

// rowMeta is what every owned row has (PoolableMixin and the version).
type rowMeta struct {
	ID                      uuid.UUID
	OwnerID                 *uuid.UUID
	PoolID                  uuid.UUID
	Version                 int
	CreatedAt, UpdatedAt    time.Time
	OwnedAt, LastFollowUpAt *time.Time
	// MergedInto is the survivor of a merged record (status merged),
	// nil for every other.
	MergedInto *uuid.UUID
}

// dedupeFields are the values a record's duplicate keys are made of:
// from an input (nil: not given) or, normalised, as stored.
type dedupeFields struct {
	name, phone, email *string
}

// ownedKind is one kind's part of the owned-record service: R is its ent
// row, In its client-set fields.
type ownedKind[R, In any] struct {
	kind kinds.Kind
	// sorts declares the list's sort keys, keyset and cursor.
	sorts *listing.Spec[R]
	// lock takes the row's write lock in tx (PostgreSQL; SQLite has one
	// writer), so that what an update checks, If-Match above all, is the
	// version it overwrites.
	lock func(ctx context.Context, st *store.Store, tx *ent.Tx, id uuid.UUID) error
	// find reads the rows matching preds (limit 0: all of them).
	find  func(ctx context.Context, c *ent.Client, limit int, preds ...func(*sql.Selector)) ([]R, error)
	count func(ctx context.Context, c *ent.Client, preds ...func(*sql.Selector)) (int, error)
	meta  func(R) rowMeta
	// clone copies a row, so that masking never changes a shared one.
	clone func(R) R
	// masked points at the row's fields in the order of the kind's
	// Desc().Masked; tags are masked besides.
	masked func(R) ([]*string, *[]string)
	// validate checks what the contract cannot state (nil: nothing).
	validate func(In) error
	// keyed are the input's key values; stored the row's normalised ones.
	keyed  func(In) dedupeFields
	stored func(R) dedupeFields
	// insert creates the row with the input's fields; the shared
	// placement columns are set on m by placeRow.
	insert func(ctx context.Context, tx *ent.Tx, id uuid.UUID, in In, place func(placedMutation)) error
	// update starts the update of the row with the input's fields.
	update func(tx *ent.Tx, id uuid.UUID, in In) (versionedMutation, func(context.Context) error)
}

// placedMutation is what a new owned row's mutation sets from its
// placement.
type placedMutation interface {
	SetID(uuid.UUID)
	SetPoolID(uuid.UUID)
	SetOwnerID(uuid.UUID)
	SetOwnedAt(time.Time)
	SetCreatedAt(time.Time)
	SetUpdatedAt(time.Time)
}

// versionedMutation is an owned row's update.
type versionedMutation interface {
	entgo.Mutation
	AddVersion(int)
	SetUpdatedAt(time.Time)
}

// placeRow sets the id and placement columns of a new row.
func placeRow(m placedMutation, id, poolID uuid.UUID, owner *uuid.UUID, now time.Time) {
	m.SetID(id)
	m.SetPoolID(poolID)
	m.SetCreatedAt(now)
	m.SetUpdatedAt(now)
	if owner != nil {
		m.SetOwnerID(*owner)
		m.SetOwnedAt(now)
	}
}

func (f dedupeFields) keys() []dupKey {
	return keysOf(deref(f.name), deref(f.phone), deref(f.email))
}

// keyedIn is the input's key values of the key types the kind holds (the
// registry's DedupeFields); the others are no keys of this kind.
func (k *ownedKind[R, In]) keyedIn(in In) dedupeFields {
	return k.held(k.keyed(in))
}

// changed returns the key types whose value the input changes against
// what is stored, and the new keys.
func (f dedupeFields) changed(stored dedupeFields) ([]string, []dupKey) {
	var types []string
	var keys []dupKey
	for _, c := range []struct {
		typ     string
		in, was *string
		norm    func(string) string
		key     func(v string) []dupKey
	}{
		{dedupe.MatchedName, f.name, stored.name, dedupe.Name, func(v string) []dupKey { return keysOf(v, "", "") }},
		{dedupe.MatchedPhone, f.phone, stored.phone, dedupe.Phone, func(v string) []dupKey { return keysOf("", v, "") }},
		{dedupe.MatchedEmail, f.email, stored.email, dedupe.Email, func(v string) []dupKey { return keysOf("", "", v) }},
	} {
		if c.in != nil && (c.was == nil || c.norm(*c.in) != *c.was) {
			types = append(types, c.typ)
			keys = append(keys, c.key(*c.in)...)
		}
	}
	return types, keys
}

// anyOwned is an owned kind's part seen without its ent type: the
// metadata of the rows matching some predicates (limit 0: all). Code that
// handles a record of whichever kind (duplicate matches, follow-ups)
// reaches the kind's table through it.
type anyOwned interface {
	metas(ctx context.Context, c *ent.Client, limit int, preds ...func(*sql.Selector)) ([]rowMeta, error)
}

func (k *ownedKind[R, In]) metas(ctx context.Context, c *ent.Client, limit int, preds ...func(*sql.Selector)) ([]rowMeta, error) {
	rows, err := k.find(ctx, c, limit, preds...)
	if err != nil {
		return nil, err
	}
	out := make([]rowMeta, len(rows))
	for i, r := range rows {
		out[i] = k.meta(r)
	}
	return out, nil
}

// ownedOf returns the part of the kind named kind (read from the database
// or the registry).
func ownedOf(kind string) (anyOwned, error) {
	switch kinds.Kind(kind) {
	case kinds.Lead:
		return leads, nil
	case kinds.Customer:
		return customers, nil
	}
	return nil, fmt.Errorf("%w: %q", kinds.ErrUnknown, kind)
}

// create creates a record placed by the pool engine (owned by its creator
// unless at cap; pooled when created into a pool). A duplicate is
// Conflict duplicate and nothing is written.
func (k *ownedKind[R, In]) create(ctx context.Context, s *Service, p *auth.Principal, in In, poolID *uuid.UUID) (*View[R], error) {
	if k.validate != nil {
		if err := k.validate(in); err != nil {
			return nil, err
		}
	}
	id := uuid.Must(uuid.NewV7())
	var place string
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		how, err := k.createIn(ctx, s, tx, p, id, in, poolID)
		place = how
		return err
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	v, err := k.view(ctx, s, s.store.Reader, p, id)
	if err != nil {
		return nil, err
	}
	v.Placement = place
	return v, nil
}

// createIn creates the record in tx (create's rule set, without its
// validation and transaction): placed by the pool engine, its duplicate
// keys claimed, indexed for search. It returns the placement.
func (k *ownedKind[R, In]) createIn(ctx context.Context, s *Service, tx *ent.Tx, p *auth.Principal, id uuid.UUID, in In, poolID *uuid.UUID) (string, error) {
	keys := k.keyedIn(in).keys()
	return s.pools.PlaceNew(ctx, tx, p, k.kind, id, poolID, func(poolID uuid.UUID, owner *uuid.UUID, now time.Time) error {
		if err := s.claimKeys(ctx, tx, p, string(k.kind), id, nil, keys); err != nil {
			return err
		}
		if err := k.insert(ctx, tx, id, in, func(m placedMutation) { placeRow(m, id, poolID, owner, now) }); err != nil {
			return fmt.Errorf("create %s: %w", k.kind, err)
		}
		return search.Reindex(ctx, tx, k.kind, id)
	})
}

// get loads a row p may see; NotFound otherwise.
func (k *ownedKind[R, In]) get(ctx context.Context, s *Service, c *ent.Client, p *auth.Principal, id uuid.UUID) (R, error) {
	var zero R
	sc, err := s.scope(ctx, p, string(k.kind))
	if err != nil {
		return zero, err
	}
	rows, err := k.find(ctx, c, 0, sql.FieldEQ("id", id), sc)
	if err != nil {
		return zero, fmt.Errorf("get %s: %w", k.kind, err)
	}
	if len(rows) == 0 {
		return zero, k.kind.NotFound()
	}
	// A merged record answers merged_into, naming the survivor, to whoever
	// sees it: every read and write addressed to it goes through here.
	if m := k.meta(rows[0]); m.MergedInto != nil {
		return zero, k.kind.MergedInto(*m.MergedInto)
	}
	return rows[0], nil
}

// view returns a record p may see, as he sees it; NotFound otherwise.
func (k *ownedKind[R, In]) view(ctx context.Context, s *Service, c *ent.Client, p *auth.Principal, id uuid.UUID) (*View[R], error) {
	row, err := k.get(ctx, s, c, p, id)
	if err != nil {
		return nil, err
	}
	views, err := k.views(ctx, c, p, []R{row})
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

// views adds owner names and applies masking, with one query for the
// owners and one for the pools of the page.
func (k *ownedKind[R, In]) views(ctx context.Context, c *ent.Client, p *auth.Principal, rows []R) ([]*View[R], error) {
	owners, pools, err := lookups(ctx, c, len(rows), func(i int) (*uuid.UUID, uuid.UUID) {
		m := k.meta(rows[i])
		return m.OwnerID, m.PoolID
	})
	if err != nil {
		return nil, err
	}
	out := make([]*View[R], len(rows))
	for i, row := range rows {
		v := &View[R]{Row: row}
		m := k.meta(row)
		if m.OwnerID != nil {
			if name, ok := owners[*m.OwnerID]; ok {
				v.OwnerName = &name
			}
		} else {
			v.Row, v.Masked = k.mask(maskerFor(p, pools[m.PoolID]), row)
		}
		out[i] = v
	}
	return out, nil
}

// mask returns a copy of row with what m hides masked.
func (k *ownedKind[R, In]) mask(m masker, row R) (R, bool) {
	cp := k.clone(row)
	fields, tags := k.masked(cp)
	masked := false
	for i, name := range k.kind.Desc().Masked {
		masked = m.str(name, fields[i]) || masked
	}
	masked = m.tags(tags) || masked
	return cp, masked
}

// editable loads a row p may see and change, in tx.
func (k *ownedKind[R, In]) editable(ctx context.Context, s *Service, tx *ent.Tx, p *auth.Principal, id uuid.UUID) (R, error) {
	var zero R
	// Lock first, then read: the row read is the one this change
	// overwrites. Locking a row the caller may not see reveals nothing;
	// the read below answers 404 for it.
	if err := k.lock(ctx, s.store, tx, id); err != nil {
		return zero, fmt.Errorf("lock %s: %w", k.kind, err)
	}
	row, err := k.get(ctx, s, tx.Client(), p, id)
	if err != nil {
		return zero, err
	}
	m := k.meta(row)
	ok, err := s.canEdit(ctx, tx, p, m.OwnerID, m.PoolID)
	if err != nil {
		return zero, err
	}
	if !ok {
		return zero, errNotEditable
	}
	return row, nil
}

// updateFields changes a record's fields (never its owner, pool or
// status). It needs the caller's If-Match; a changed key value that
// duplicates another record is Conflict duplicate.
func (k *ownedKind[R, In]) updateFields(ctx context.Context, s *Service, p *auth.Principal, id uuid.UUID, ifMatch *string, in In) (*View[R], error) {
	if k.validate != nil {
		if err := k.validate(in); err != nil {
			return nil, err
		}
	}
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		row, err := k.editable(ctx, s, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, k.meta(row).Version); err != nil {
			return err
		}
		// Re-key whatever duplicate-relevant field changed.
		if changed, keys := k.keyedIn(in).changed(k.stored(row)); len(changed) > 0 {
			if err := releaseKeys(ctx, tx, id, changed...); err != nil {
				return err
			}
			if err := s.claimKeys(ctx, tx, p, string(k.kind), id, nil, keys); err != nil {
				return err
			}
		}
		m, exec := k.update(tx, id, in)
		m.AddVersion(1)
		m.SetUpdatedAt(s.clock.Now())
		if err := s.emitUpdated(ctx, tx, p, string(k.kind), id, m); err != nil {
			return err
		}
		if err := exec(ctx); err != nil {
			return err
		}
		return search.Reindex(ctx, tx, k.kind, id)
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	return k.view(ctx, s, s.store.Reader, p, id)
}

// list lists the records p may see, filtered, keyset-paginated. The total
// is counted only when asked for.
func (k *ownedKind[R, In]) list(ctx context.Context, s *Service, p *auth.Principal, f Filter) ([]*View[R], *int, *Cursor, error) {
	sc, fp, err := s.listPredicates(ctx, p, string(k.kind), f)
	if err != nil {
		return nil, nil, nil, err
	}
	pg, err := k.sorts.Page(f.Sort, f.Cursor, f.Limit)
	if err != nil {
		return nil, nil, nil, err
	}
	c := s.store.Reader
	var total *int
	if f.IncludeTotal {
		n, err := k.count(ctx, c, sc, fp)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("count %ss: %w", k.kind, err)
		}
		total = &n
	}
	rows, err := k.find(ctx, c, pg.Limit, sc, fp, pg.Apply)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list %ss: %w", k.kind, err)
	}
	views, err := k.views(ctx, c, p, rows)
	return views, total, pg.Next(rows), err
}

// after renders a record after p changed it. An owned record is never
// masked, so its view is the same whoever asks and needs no scope check
// (the common case: after a claim, assign or transfer); done, the row as
// the operation's transaction left it (when has), spares
// reading it again. A caller who can no longer see the record (a rep
// returning a lead to a pool he is not a member of) saw it a moment ago,
// so he is shown the result as the system sees it.
func (k *ownedKind[R, In]) after(ctx context.Context, s *Service, p *auth.Principal, id uuid.UUID, done R, has bool, ownerName string) (*View[R], error) {
	if has && k.meta(done).OwnerID != nil {
		return &View[R]{Row: done, OwnerName: &ownerName}, nil
	}
	rows, err := k.find(ctx, s.store.Reader, 0, sql.FieldEQ("id", id))
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", k.kind, err)
	}
	if len(rows) == 0 {
		return nil, k.kind.NotFound()
	}
	if k.meta(rows[0]).OwnerID != nil {
		views, err := k.views(ctx, s.store.Reader, p, rows)
		if err != nil {
			return nil, err
		}
		return views[0], nil
	}
	v, err := k.view(ctx, s, s.store.Reader, p, id)
	if apperr.HasCode(err, "not_found") {
		return k.view(ctx, s, s.store.Reader, system, id)
	}
	return v, err
}
