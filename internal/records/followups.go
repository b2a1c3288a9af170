package records

import (
	"context"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
)

// ClockSkew is how far in the future a follow-up's occurredAt may lie, to
// forgive clients whose clocks run a little ahead.
const ClockSkew = time.Minute

// FollowUpInput is a follow-up to log (跟进记录).
type FollowUpInput struct {
	SubjectType string // a kinds.Kind
	SubjectID   uuid.UUID
	Channel     string
	Content     string
	OccurredAt  time.Time
	NextAt      *time.Time
}

// checkFollowUpTimes decides whether a follow-up's times are acceptable at
// now: occurredAt not in the future (beyond ClockSkew), nextAt after
// occurredAt.
func checkFollowUpTimes(now, occurred time.Time, next *time.Time) error {
	if occurred.After(now.Add(ClockSkew)) {
		return apperr.Invalidf("body/occurredAt", "in_future", "occurredAt must not be in the future")
	}
	if next != nil && !next.After(occurred) {
		return apperr.Invalidf("body/nextAt", "not_after_occurred_at", "nextAt must be after occurredAt")
	}
	return nil
}

// timeOf is a time as both engines store it: UTC, to the microsecond.
func timeOf(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// CreateFollowUp logs a follow-up on a lead or customer p may see
// (NotFound otherwise) and may change: its owner, his supervisor or an
// admin (Forbidden not_record_owner otherwise, so a rep may not log on a
// pooled record). A follow-up in the future, or with nextAt not after
// occurredAt, is Invalid. When p is the record's current owner, its
// lastFollowUpAt moves to max(lastFollowUpAt, occurredAt) and its reclaim
// deadline is recomputed, in the same transaction.
func (s *Service) CreateFollowUp(ctx context.Context, p *auth.Principal, in FollowUpInput) (*ent.FollowUp, error) {
	occurred := timeOf(in.OccurredAt)
	var next *time.Time
	if in.NextAt != nil {
		t := timeOf(*in.NextAt)
		next = &t
	}
	if err := checkFollowUpTimes(s.clock.Now(), occurred, next); err != nil {
		return nil, err
	}
	content := strings.TrimSpace(in.Content)
	if content == "" {
		return nil, apperr.Invalidf("body/content", "required", "content must not be blank")
	}
	kind, err := kinds.Parse(in.SubjectType)
	if err != nil {
		return nil, err
	}
	if err := keyMay(p, kind, "write"); err != nil {
		return nil, err
	}
	id := uuid.Must(uuid.NewV7())
	var f *ent.FollowUp
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		owner, poolID, err := s.pools.Holder(ctx, tx, kind, in.SubjectID)
		if err != nil {
			return err
		}
		visible, err := s.visible(ctx, tx.Client(), p, in.SubjectType, in.SubjectID)
		if err != nil {
			return err
		}
		if !visible {
			return kind.NotFound()
		}
		ok, err := s.canEdit(ctx, tx, p, owner, poolID)
		if err != nil {
			return err
		}
		if !ok {
			return errNotEditable
		}
		err = tx.FollowUp.Create().SetID(id).
			SetSubjectType(followup.SubjectType(in.SubjectType)).SetSubjectID(in.SubjectID).
			SetAuthorID(p.ID).SetChannel(followup.Channel(in.Channel)).SetContent(content).
			SetOccurredAt(occurred).SetNillableNextAt(next).SetCreatedAt(s.clock.Now()).Exec(ctx)
		if err != nil {
			return fmt.Errorf("create follow-up: %w", err)
		}
		if err := s.emit(ctx, tx, p, events.FollowUpCreated, events.KindFollowUp, id,
			events.FollowUp{RecordKind: in.SubjectType, RecordID: in.SubjectID, OccurredAt: occurred}); err != nil {
			return err
		}
		if owner != nil && *owner == p.ID {
			if err := s.pools.FollowedUp(ctx, tx, kind, in.SubjectID, occurred); err != nil {
				return err
			}
		}
		// Read back in the transaction: a request holding it open for its
		// Idempotency-Key answer (store.Hold) has not committed yet.
		if f, err = tx.FollowUp.Get(ctx, id); err != nil {
			return fmt.Errorf("get follow-up: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// FollowUpFilter narrows a list of follow-ups. Pointers are optional.
type FollowUpFilter struct {
	SubjectType *string
	SubjectID   *uuid.UUID
	AuthorID    *uuid.UUID
	From, To    *time.Time
	After       *FollowUpCursor
	Limit       int
}

// FollowUpCursor is the keyset position after the last follow-up of a page
// (newest first: occurredAt, then id, both descending).
type FollowUpCursor = listing.Cursor

// followUpList orders follow-ups newest first; there is no sort parameter.
var followUpList = listing.New(followup.FieldID, func(f *ent.FollowUp) uuid.UUID { return f.ID }, "-occurredAt",
	map[string]listing.Key[*ent.FollowUp]{
		"occurredAt": {Column: followup.FieldOccurredAt, Value: func(f *ent.FollowUp) *time.Time { return &f.OccurredAt }},
	})

// ListFollowUps lists follow-ups newest first. With a subject, that record
// must be visible to p (NotFound otherwise); without one, only follow-ups
// on records p may see, and those he wrote himself. subjectId without
// subjectType is Invalid.
func (s *Service) ListFollowUps(ctx context.Context, p *auth.Principal, f FollowUpFilter) ([]*ent.FollowUp, *FollowUpCursor, error) {
	pg, err := followUpList.Page("", f.After, f.Limit)
	if err != nil {
		return nil, nil, err
	}
	c := s.store.Reader
	var ps []predicate.FollowUp
	switch {
	case f.SubjectID != nil && f.SubjectType == nil:
		return nil, nil, apperr.Invalidf("query.subjectType", "required", "subjectId requires subjectType")
	case f.SubjectID != nil:
		kind, err := kinds.Parse(*f.SubjectType)
		if err != nil {
			return nil, nil, err
		}
		if err := keyMay(p, kind, "read"); err != nil {
			return nil, nil, err
		}
		visible, err := s.visible(ctx, c, p, *f.SubjectType, *f.SubjectID)
		if err != nil {
			return nil, nil, err
		}
		if !visible {
			return nil, nil, apperr.NotFoundf(*f.SubjectType)
		}
		ps = append(ps, followup.SubjectTypeEQ(followup.SubjectType(*f.SubjectType)), followup.SubjectID(*f.SubjectID))
	default:
		if f.SubjectType != nil {
			ps = append(ps, followup.SubjectTypeEQ(followup.SubjectType(*f.SubjectType)))
		}
		sc, err := s.followUpScope(ctx, p)
		if err != nil {
			return nil, nil, err
		}
		ps = append(ps, sc)
	}
	if f.AuthorID != nil {
		ps = append(ps, followup.AuthorID(*f.AuthorID))
	}
	if f.From != nil {
		ps = append(ps, followup.OccurredAtGTE(f.From.UTC()))
	}
	if f.To != nil {
		ps = append(ps, followup.OccurredAtLT(f.To.UTC()))
	}
	ps = append(ps, predicate.FollowUp(pg.Apply))
	list, err := c.FollowUp.Query().Where(ps...).Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list follow-ups: %w", err)
	}
	next := pg.Next(list)
	list, err = s.maskFollowUps(ctx, c, p, list)
	if err != nil {
		return nil, nil, err
	}
	return list, next, nil
}

// maskFollowUps masks the content of follow-ups on pooled records whose
// pool does not list followUps in its visibleFields, for callers that
// see those records masked. The rows stay in the list (with their
// author, channel and times, which say that and when someone worked the
// record, not what was said), so pages and cursors keep their shape.
// What p wrote himself he may always read again.
func (s *Service) maskFollowUps(ctx context.Context, c *ent.Client, p *auth.Principal, list []*ent.FollowUp) ([]*ent.FollowUp, error) {
	ids := map[string][]uuid.UUID{}
	for _, fu := range list {
		if fu.AuthorID != p.ID || p.Type != auth.ActorUser {
			ids[string(fu.SubjectType)] = append(ids[string(fu.SubjectType)], fu.SubjectID)
		}
	}
	masked := map[uuid.UUID]bool{}
	for kind, subjects := range ids {
		a, err := s.access(ctx, p, kind)
		if err != nil {
			return nil, err
		}
		if len(a.sc.MaskedPools(FieldFollowUps)) == 0 {
			continue
		}
		k, err := ownedOf(kind)
		if err != nil {
			return nil, err
		}
		shows := func(sel *sql.Selector) { sel.Where(a.sc.Masked(sel, a.cols, FieldFollowUps)) }
		hits, err := k.metas(ctx, c, 0, sql.FieldIn("id", subjects...), shows)
		if err != nil {
			return nil, fmt.Errorf("find masked follow-up subjects: %w", err)
		}
		for _, h := range hits {
			masked[h.ID] = true
		}
	}
	if len(masked) == 0 {
		return list, nil
	}
	out := make([]*ent.FollowUp, len(list))
	for i, fu := range list {
		out[i] = fu
		if masked[fu.SubjectID] && (fu.AuthorID != p.ID || p.Type != auth.ActorUser) {
			cp := *fu
			cp.Content = maskText(cp.Content)
			out[i] = &cp
		}
	}
	return out, nil
}

// followUpScope is the predicate "follow-ups on records p may see, or
// written by p": nothing for admins and auditors, subqueries on the leads
// and customers p may see for everyone else.
func (s *Service) followUpScope(ctx context.Context, p *auth.Principal) (predicate.FollowUp, error) {
	scopes := make([]func(*sql.Selector), len(kinds.All))
	for i, k := range kinds.All {
		a, err := s.access(ctx, p, string(k))
		if err != nil {
			return nil, err
		}
		if a.sc.All() {
			return func(*sql.Selector) {}, nil
		}
		scopes[i] = a.scope
		if keyMay(p, k, "read") != nil {
			// A key sees follow-ups of the kinds it may read only.
			scopes[i] = func(sel *sql.Selector) { sel.Where(sql.False()) }
		}
	}
	me := principalUser(p)
	return func(sel *sql.Selector) {
		var or []*sql.Predicate
		for i, k := range kinds.All {
			// Every kind's table keys its rows by ent's "id" column.
			visible := sql.Select("id").From(sql.Table(k.Desc().Table))
			scopes[i](visible)
			or = append(or, sql.And(sql.EQ(sel.C(followup.FieldSubjectType), string(k)),
				sql.In(sel.C(followup.FieldSubjectID), visible)))
		}
		if me != uuid.Nil {
			or = append(or, sql.EQ(sel.C(followup.FieldAuthorID), me))
		}
		sel.Where(sql.Or(or...))
	}, nil
}

// keyMay checks an API key's scopes against the kind of record a
// follow-up is about: casbin let it call the operation for some kind
// (leads:write or customers:write may create follow-ups), this checks
// it is this one. A key holding the kind's other scope sees the record
// but lacks this one (403 insufficient_scope, naming it); a key holding
// neither does not see records of the kind at all (404). Users pass.
func keyMay(p *auth.Principal, kind kinds.Kind, access string) error {
	if p == nil || p.Type != auth.ActorAPIKey {
		return nil
	}
	need := authz.RecordScope(kind, access)
	if p.HasScope(need) {
		return nil
	}
	if p.HasScope(authz.RecordScope(kind, "read")) || p.HasScope(authz.RecordScope(kind, "write")) {
		return &apperr.Error{Kind: apperr.Forbidden, Code: "insufficient_scope",
			Message: "this API key lacks a scope the operation needs: " + need,
			Extra:   map[string]any{"scopes": []string{need}}}
	}
	return kind.NotFound()
}
