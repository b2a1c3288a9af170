package tags

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"entgo.io/ent/dialect/sql/sqljson"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/tag"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/store"
)

var (
	errExists   = apperr.New(apperr.Conflict, "tag_exists", "a tag with this name exists")
	errNotFound = apperr.NotFoundf("tag")
)

// Service manages the tag vocabulary. Tags have no data scope: everyone
// logged in reads them, and casbin lets only admins change them (a rename
// changes records outside any supervisor's scope).
type Service struct {
	store *store.Store
	clock clock.Clock
}

// NewService returns the tag service.
func NewService(st *store.Store, clk clock.Clock) *Service { return &Service{store: st, clock: clk} }

// Input is a new tag.
type Input struct {
	Name        string
	Color       *string
	Description *string
}

// Patch changes a tag with merge-patch semantics (null clears color and
// description; name cannot be cleared).
type Patch struct {
	Name        *string
	Color       patch.Field[string]
	Description patch.Field[string]
}

// Create registers a tag. It returns Conflict tag_exists, Invalid.
func (s *Service) Create(ctx context.Context, in Input) (*ent.Tag, error) {
	name, err := Normalize("body/name", in.Name)
	if err != nil {
		return nil, err
	}
	if in.Color != nil {
		if err := CheckColor("body/color", *in.Color); err != nil {
			return nil, err
		}
	}
	var out *ent.Tag
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		now := s.clock.Now()
		t, err := tx.Tag.Create().SetName(name).SetNillableColor(in.Color).SetNillableDescription(in.Description).
			SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
			return errExists
		}
		if err != nil {
			return fmt.Errorf("create tag: %w", err)
		}
		out = t
		return s.emit(ctx, tx, events.TagCreated, t.ID, events.Tag{Name: t.Name})
	})
	return out, err
}

// Get returns a tag; NotFound when there is none.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*ent.Tag, error) {
	t, err := s.store.Reader.Tag.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	return t, err
}

// list declares the tags' sort keys. listing.Key is for time keys, so a
// list by name is left for when listing grows string keys.
var list = listing.New(tag.FieldID, func(t *ent.Tag) uuid.UUID { return t.ID }, "-createdAt",
	map[string]listing.Key[*ent.Tag]{
		"createdAt": {Column: tag.FieldCreatedAt, Value: func(t *ent.Tag) *time.Time { return &t.CreatedAt }},
	})

// List returns a page of tags, optionally those whose name starts with
// prefix.
func (s *Service) List(ctx context.Context, sort string, prefix *string, cursor *listing.Cursor, limit int) ([]*ent.Tag, *listing.Cursor, error) {
	pg, err := list.Page(sort, cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.Tag.Query().Where(predicate.Tag(pg.Apply))
	if prefix != nil {
		if p := strings.TrimSpace(*prefix); p != "" {
			q = q.Where(tag.NameHasPrefix(p))
		}
	}
	rows, err := q.Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list tags: %w", err)
	}
	return rows, pg.Next(rows), nil
}

// Update applies a patch. A new name renames the tag on every lead and
// customer carrying it, in the same transaction. ifMatch must name the
// tag's current version (etag.Check). It returns NotFound, Conflict
// tag_exists, Invalid, PreconditionRequired, PreconditionFailed.
func (s *Service) Update(ctx context.Context, id uuid.UUID, ifMatch *string, in Patch) (*ent.Tag, error) {
	var name string
	if in.Name != nil {
		var err error
		if name, err = Normalize("body/name", *in.Name); err != nil {
			return nil, err
		}
	}
	if in.Color.Set && in.Color.Value != nil {
		if err := CheckColor("body/color", *in.Color.Value); err != nil {
			return nil, err
		}
	}
	var out *ent.Tag
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		t, err := s.lock(ctx, tx, id, ifMatch)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		m := tx.Tag.UpdateOne(t)
		if in.Name != nil {
			m.SetName(name)
		}
		patch.ApplyTo(in.Color, m.SetColor, m.ClearColor)
		patch.ApplyTo(in.Description, m.SetDescription, m.ClearDescription)
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = t // nothing changes: no new version, no event
			return nil
		}
		change := events.TagChanged{Fields: fields}
		if name != "" && name != t.Name {
			taken, err := tx.Tag.Query().Where(tag.Name(name), tag.IDNEQ(id)).Exist(ctx)
			if err != nil {
				return fmt.Errorf("tag name taken: %w", err)
			}
			if taken {
				return errExists
			}
			n, err := s.rewrite(ctx, tx, t.Name, now, func(tags []string) ([]string, bool) { return renameIn(tags, t.Name, name) })
			if err != nil {
				return err
			}
			change.From, change.To, change.Records = t.Name, name, n
		}
		out, err = m.AddVersion(1).SetUpdatedAt(now).Save(ctx)
		if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
			return errExists
		}
		if err != nil {
			return fmt.Errorf("update tag: %w", err)
		}
		return s.emit(ctx, tx, events.TagUpdated, id, change)
	})
	return out, err
}

// Delete deletes a tag and removes it from every lead and customer
// carrying it, in one transaction. ifMatch must name the tag's current
// version. It returns NotFound, PreconditionRequired, PreconditionFailed.
func (s *Service) Delete(ctx context.Context, id uuid.UUID, ifMatch *string) error {
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		t, err := s.lock(ctx, tx, id, ifMatch)
		if err != nil {
			return err
		}
		n, err := s.rewrite(ctx, tx, t.Name, s.clock.Now(), func(tags []string) ([]string, bool) { return removeFrom(tags, t.Name) })
		if err != nil {
			return err
		}
		if err := tx.Tag.DeleteOne(t).Exec(ctx); err != nil {
			return fmt.Errorf("delete tag: %w", err)
		}
		return s.emit(ctx, tx, events.TagDeleted, id, events.TagDeletion{Name: t.Name, Records: n})
	})
}

// lock reads the tag with its write lock and checks If-Match against the
// version it will change.
func (s *Service) lock(ctx context.Context, tx *ent.Tx, id uuid.UUID, ifMatch *string) (*ent.Tag, error) {
	t, err := store.ForUpdate(s.store, tx.Tag.Query().Where(tag.ID(id))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load tag: %w", err)
	}
	if err := etag.Check(ifMatch, t.Version); err != nil {
		return nil, err
	}
	return t, nil
}

// tagged is a record carrying a tag, as rewrite needs it.
type tagged struct {
	id   uuid.UUID
	tags []string
}

// recordTags is how one record kind's tags are found and rewritten; the
// rest of rewrite is the same for every kind of the registry.
type recordTags struct {
	// carrying reads, locked, the records whose tags contain name.
	carrying func(ctx context.Context, s *store.Store, tx *ent.Tx, name string) ([]tagged, error)
	// set stores new tags and moves the record's version and updated_at.
	set func(ctx context.Context, tx *ent.Tx, id uuid.UUID, tags []string, now time.Time) error
}

// hasTag is the predicate records' tag filter uses.
func hasTag(column, name string) func(*sql.Selector) {
	return func(s *sql.Selector) { s.Where(sqljson.ValueContains(s.C(column), name)) }
}

var byKind = map[kinds.Kind]recordTags{
	kinds.Lead: {
		carrying: func(ctx context.Context, s *store.Store, tx *ent.Tx, name string) ([]tagged, error) {
			rows, err := store.ForUpdate(s, tx.Lead.Query().Where(predicate.Lead(hasTag(lead.FieldTags, name))).
				Order(lead.ByID())).Select(lead.FieldID, lead.FieldTags).All(ctx)
			out := make([]tagged, len(rows))
			for i, r := range rows {
				out[i] = tagged{r.ID, r.Tags}
			}
			return out, err
		},
		set: func(ctx context.Context, tx *ent.Tx, id uuid.UUID, tags []string, now time.Time) error {
			return tx.Lead.UpdateOneID(id).SetTags(tags).AddVersion(1).SetUpdatedAt(now).Exec(ctx)
		},
	},
	kinds.Customer: {
		carrying: func(ctx context.Context, s *store.Store, tx *ent.Tx, name string) ([]tagged, error) {
			rows, err := store.ForUpdate(s, tx.Customer.Query().Where(predicate.Customer(hasTag(customer.FieldTags, name))).
				Order(customer.ByID())).Select(customer.FieldID, customer.FieldTags).All(ctx)
			out := make([]tagged, len(rows))
			for i, r := range rows {
				out[i] = tagged{r.ID, r.Tags}
			}
			return out, err
		},
		set: func(ctx context.Context, tx *ent.Tx, id uuid.UUID, tags []string, now time.Time) error {
			return tx.Customer.UpdateOneID(id).SetTags(tags).AddVersion(1).SetUpdatedAt(now).Exec(ctx)
		},
	},
}

// rewrite applies change to the tags of every record of every kind that
// carries name, moving each changed record's version (so a client's stale
// If-Match on it is refused) and writing <kind>.updated with the field
// "tags" for it, the payload every record update has. It returns how many
// records changed.
func (s *Service) rewrite(ctx context.Context, tx *ent.Tx, name string, now time.Time, change func([]string) ([]string, bool)) (int, error) {
	var evs []events.Event
	actor := auth.ContextActor(ctx)
	for _, k := range kinds.All {
		rk, ok := byKind[k]
		if !ok {
			return 0, fmt.Errorf("tags: record kind %s has no tag rewrite", k)
		}
		rows, err := rk.carrying(ctx, s.store, tx, name)
		if err != nil {
			return 0, fmt.Errorf("find %ss tagged %q: %w", k, name, err)
		}
		for _, r := range rows {
			tags, changed := change(r.tags)
			if !changed || slices.Equal(tags, r.tags) {
				continue
			}
			if err := rk.set(ctx, tx, r.id, tags, now); err != nil {
				return 0, fmt.Errorf("retag %s %s: %w", k, r.id, err)
			}
			evs = append(evs, events.Event{Type: events.Updated(k.String()), SubjectKind: k.String(), SubjectID: r.id,
				Actor: actor, OccurredAt: now, Data: events.Changed{Fields: []string{"tags"}}})
		}
	}
	return len(evs), events.EmitAll(ctx, tx, evs)
}

// emit writes a tag event in tx at the clock's now.
func (s *Service) emit(ctx context.Context, tx *ent.Tx, typ events.Type, id uuid.UUID, data any) error {
	return events.Emit(ctx, tx, events.Event{Type: typ, SubjectKind: events.KindTag, SubjectID: id,
		Actor: auth.ContextActor(ctx), OccurredAt: s.clock.Now(), Data: data})
}
