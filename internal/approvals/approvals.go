// Package approvals is Shoal's one approval mechanism (审批流): a subject
// (a quote, a pool's claim request; later orders, invoice requests and
// returns) that must be approved becomes an approval request with
// sequential steps, each decided by its approver.
//
// The subject's module owns its rules: it asks Plan whether its subject
// needs approval and by whom (the admin-configured flow of its kind, see
// flows.go), calls Open in the transaction that submits it, and registers
// a Decider. A decision goes to that Decider, which in one transaction
// locks its subject, calls Step (this package records the step, checks
// the approver and moves the request on), and applies the outcome,
// re-checking its own rules. So deciding can never approve a subject that
// no longer passes them, and the subject's lock comes before the
// request's, always in that order.
package approvals

import (
	"context"
	"fmt"
	"strings"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entapproval "github.com/shoalcrm/shoal/ent/approval"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/store"
)

// Subject kinds.
const (
	SubjectQuote        = "quote"
	SubjectClaimRequest = "claim_request"
)

// Approver kinds of a step.
const (
	// ApproverSupervisor is any supervisor whose team contains the
	// requester's (his own team or one above it).
	ApproverSupervisor = "supervisor"
	// ApproverAdmin is any admin.
	ApproverAdmin = "admin"
	// ApproverUser is one named user.
	ApproverUser = "user"
	// ApproverPoolManager is a manager of the subject's pool (claim
	// requests).
	ApproverPoolManager = "pool_manager"
)

// Statuses of a request and of its steps.
const (
	StatusPending   = "pending"
	StatusApproved  = "approved"
	StatusRejected  = "rejected"
	StatusCancelled = "cancelled"
)

var (
	errNotFound = apperr.NotFoundf("approval")
	// ErrNotApprover: the caller is not an approver of the current step.
	// Subjects may answer with their own, older code (claim requests:
	// wrong_pool).
	ErrNotApprover = apperr.New(apperr.Forbidden, "not_approver", "you are not an approver of this request's current step")
	// ErrNotPending: the request is decided already.
	ErrNotPending = apperr.New(apperr.Conflict, "approval_not_pending", "the approval request is decided already")
	errOwnRequest = apperr.New(apperr.Forbidden, "not_approver", "a requester does not decide his own request")
)

// Decision is an approver's answer to the current step.
type Decision struct {
	Approve bool
	Comment string
}

// Decider decides a request on a subject of its kind: in one transaction
// it locks its subject, calls Step and applies the outcome.
type Decider func(ctx context.Context, p *auth.Principal, a *ent.Approval, d Decision) error

// Pools tells which pools a user manages (the pool engine's scope), for
// pool_manager steps and their visibility.
type Pools func(ctx context.Context, p *auth.Principal) ([]uuid.UUID, error)

// Service runs approval requests and flows.
type Service struct {
	store    *store.Store
	clock    clock.Clock
	deciders map[string]Decider
	builtin  map[string][]schema.FlowRule
	pools    Pools
}

// NewService returns the service; subjects Register themselves.
func NewService(st *store.Store, clk clock.Clock) *Service {
	return &Service{store: st, clock: clk, deciders: map[string]Decider{}, builtin: map[string][]schema.FlowRule{}}
}

// Register makes kind a subject kind: its built-in flow (used until an
// admin changes it) and its decider.
func (s *Service) Register(kind string, builtin []schema.FlowRule, d Decider) {
	s.deciders[kind] = d
	s.builtin[kind] = builtin
}

// SetPools gives the service the pool engine's "pools p manages".
func (s *Service) SetPools(f Pools) { s.pools = f }

// Request is a subject asking for approval.
type Request struct {
	SubjectKind string
	SubjectID   uuid.UUID
	Requester   *auth.Principal
	PoolID      *uuid.UUID
	// Plan is what Plan answered.
	Plan Plan
	// Reasons are the subject's own reasons, kept with the request.
	Reasons []map[string]string
	// Data is the subject's part of the events' payloads.
	Data events.ApprovalSubject
}

// Open files an approval request in tx, the transaction of the change
// that needs it.
func (s *Service) Open(ctx context.Context, tx *ent.Tx, r Request) (*ent.Approval, error) {
	if len(r.Plan.Steps) == 0 {
		return nil, fmt.Errorf("approval for %s %s: no steps", r.SubjectKind, r.SubjectID)
	}
	steps := make([]schema.ApprovalStep, len(r.Plan.Steps))
	for i, st := range r.Plan.Steps {
		steps[i] = schema.ApprovalStep{Approver: st.Approver, UserID: st.UserID, Status: StatusPending}
	}
	now := s.now()
	reasons := r.Reasons
	if reasons == nil {
		reasons = []map[string]string{}
	}
	a, err := tx.Approval.Create().SetSubjectKind(r.SubjectKind).SetSubjectID(r.SubjectID).SetRule(r.Plan.Rule).
		SetRequesterID(r.Requester.ID).SetRequesterTeamPath(r.Requester.TeamPath).SetNillablePoolID(r.PoolID).
		SetSteps(steps).SetCurrentStep(0).SetCurrentApprover(steps[0].Approver).SetNillableCurrentUserID(steps[0].UserID).
		SetReasons(reasons).SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("open approval: %w", err)
	}
	return a, s.emit(ctx, tx, r.Requester, events.ApprovalRequested, a, r.Data, nil)
}

// StepInfo is what the subject knows about the decider that this package
// cannot: whether he manages the subject's pool.
type StepInfo struct {
	ManagesPool bool
	// Data is the subject's part of the events' payloads.
	Data events.ApprovalSubject
}

// Step records p's decision on the current step of request id, locked in
// tx: the request is approved when its last step is, rejected when any
// step is. The subject's Decider calls it after locking its subject.
func (s *Service) Step(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID, d Decision, info StepInfo) (*ent.Approval, error) {
	a, err := store.ForUpdate(s.store, tx.Approval.Query().Where(entapproval.ID(id))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("lock approval: %w", err)
	}
	if a.Status != StatusPending {
		return nil, ErrNotPending
	}
	if err := mayDecide(p, a, info); err != nil {
		return nil, err
	}
	now := s.now()
	at := now.Format(time.RFC3339Nano)
	steps := append([]schema.ApprovalStep(nil), a.Steps...)
	cur := a.CurrentStep
	decider := p.ID
	steps[cur].DeciderID, steps[cur].DecidedAt, steps[cur].Comment = &decider, &at, d.Comment
	m := tx.Approval.UpdateOne(a).AddVersion(1).SetUpdatedAt(now)
	final := ""
	switch {
	case !d.Approve:
		steps[cur].Status = StatusRejected
		for i := cur + 1; i < len(steps); i++ {
			steps[i].Status = "skipped"
		}
		final = StatusRejected
	case cur == len(steps)-1:
		steps[cur].Status = StatusApproved
		final = StatusApproved
	default:
		steps[cur].Status = StatusApproved
		next := steps[cur+1]
		m.SetCurrentStep(cur + 1).SetCurrentApprover(next.Approver)
		if next.UserID != nil {
			m.SetCurrentUserID(*next.UserID)
		} else {
			m.ClearCurrentUserID()
		}
	}
	m.SetSteps(steps)
	if final != "" {
		m.SetStatus(entapproval.Status(final)).SetDecidedAt(now).SetCurrentApprover("").ClearCurrentUserID()
	}
	out, err := m.Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("decide approval: %w", err)
	}
	step := cur
	if err := s.emit(ctx, tx, p, events.ApprovalStepDecided, out, info.Data, &stepOf{step, d.Approve}); err != nil {
		return nil, err
	}
	switch final {
	case StatusApproved:
		err = s.emit(ctx, tx, p, events.ApprovalApproved, out, info.Data, nil)
	case StatusRejected:
		err = s.emit(ctx, tx, p, events.ApprovalRejected, out, info.Data, nil)
	}
	return out, err
}

// mayDecide: the current step's approver, or an admin (who may decide any
// step, so that no request is stranded when its team has no supervisor);
// never the requester himself.
func mayDecide(p *auth.Principal, a *ent.Approval, info StepInfo) error {
	if p == nil || p.Type != auth.ActorUser {
		return ErrNotApprover
	}
	if p.ID == a.RequesterID {
		return errOwnRequest
	}
	if p.Role == auth.RoleAdmin {
		return nil
	}
	st := a.Steps[a.CurrentStep]
	switch st.Approver {
	case ApproverSupervisor:
		if p.Role == auth.RoleSupervisor && strings.HasPrefix(a.RequesterTeamPath, p.TeamPath) && p.TeamPath != "" {
			return nil
		}
	case ApproverUser:
		if st.UserID != nil && *st.UserID == p.ID {
			return nil
		}
	case ApproverPoolManager:
		if info.ManagesPool {
			return nil
		}
	}
	return ErrNotApprover
}

// Decide has p decide request id: its subject's Decider runs the decision
// in one transaction. It returns the request as it now is.
func (s *Service) Decide(ctx context.Context, p *auth.Principal, id uuid.UUID, d Decision) (*ent.Approval, error) {
	a, err := s.Get(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if a.Status != StatusPending {
		return nil, ErrNotPending
	}
	dec, ok := s.deciders[a.SubjectKind]
	if !ok {
		return nil, fmt.Errorf("approval %s: no decider for %s", a.ID, a.SubjectKind)
	}
	if err := dec(ctx, p, a, d); err != nil {
		return nil, err
	}
	out, err := s.store.Client.Approval.Get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("reload approval: %w", err)
	}
	return out, nil
}

// OfSubject returns the latest request on a subject, nil when none.
func OfSubject(ctx context.Context, tx *ent.Tx, kind string, id uuid.UUID) (*ent.Approval, error) {
	a, err := tx.Approval.Query().Where(entapproval.SubjectKind(kind), entapproval.SubjectID(id)).
		Order(ent.Desc(entapproval.FieldCreatedAt), ent.Desc(entapproval.FieldID)).First(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("approval of %s: %w", kind, err)
	}
	return a, nil
}

// visible is "requests p sees": everything for admins and auditors; his
// own; those his team subtree asked for (supervisors); those naming him
// as an approver; those on pools he manages.
func (s *Service) visible(ctx context.Context, p *auth.Principal) (predicate.Approval, error) {
	if p != nil && p.Type == auth.ActorUser && (p.Role == auth.RoleAdmin || p.Role == auth.RoleAuditor) {
		return func(*entsql.Selector) {}, nil
	}
	if p == nil || p.Type != auth.ActorUser {
		return func(sel *entsql.Selector) { sel.Where(entsql.False()) }, nil
	}
	managed, err := s.managed(ctx, p)
	if err != nil {
		return nil, err
	}
	return func(sel *entsql.Selector) {
		preds := []*entsql.Predicate{
			entsql.EQ(sel.C(entapproval.FieldRequesterID), p.ID),
			entsql.EQ(sel.C(entapproval.FieldCurrentUserID), p.ID),
		}
		if p.Role == auth.RoleSupervisor && p.TeamPath != "" {
			preds = append(preds, entsql.HasPrefix(sel.C(entapproval.FieldRequesterTeamPath), p.TeamPath))
		}
		if len(managed) > 0 {
			preds = append(preds, s.store.IDIn(sel.C(entapproval.FieldPoolID), managed))
		}
		sel.Where(entsql.Or(preds...))
	}, nil
}

func (s *Service) managed(ctx context.Context, p *auth.Principal) ([]uuid.UUID, error) {
	if s.pools == nil || p.Role != auth.RoleSupervisor {
		return nil, nil
	}
	return s.pools(ctx, p)
}

// Get returns a request p sees.
func (s *Service) Get(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ent.Approval, error) {
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, err
	}
	a, err := s.store.Reader.Approval.Query().Where(entapproval.ID(id), vis).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get approval: %w", err)
	}
	return a, nil
}

// Filter narrows a list. Mine is "to_decide" (pending, its current step
// is his to decide) or "submitted" (he asked).
type Filter struct {
	Mine        *string
	Status      *string
	SubjectKind *string
	SubjectID   *uuid.UUID
}

var list = listing.ByID(entapproval.FieldID, func(a *ent.Approval) uuid.UUID { return a.ID }, true)

// List returns a page of the requests p sees, newest first.
func (s *Service) List(ctx context.Context, p *auth.Principal, f Filter, cursor *listing.Cursor, limit int) ([]*ent.Approval, *listing.Cursor, error) {
	pg, err := list.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.Approval.Query().Where(vis, predicate.Approval(pg.Apply))
	if f.Status != nil {
		q = q.Where(entapproval.StatusEQ(entapproval.Status(*f.Status)))
	}
	if f.SubjectKind != nil {
		q = q.Where(entapproval.SubjectKind(*f.SubjectKind))
	}
	if f.SubjectID != nil {
		q = q.Where(entapproval.SubjectID(*f.SubjectID))
	}
	if f.Mine != nil {
		switch *f.Mine {
		case "submitted":
			q = q.Where(entapproval.RequesterID(p.ID))
		case "to_decide":
			pred, err := s.toDecide(ctx, p)
			if err != nil {
				return nil, nil, err
			}
			q = q.Where(entapproval.StatusEQ(entapproval.StatusPending), entapproval.RequesterIDNEQ(p.ID), pred)
		}
	}
	rows, err := q.Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list approvals: %w", err)
	}
	return rows, pg.Next(rows), nil
}

// toDecide is "the current step is p's": mayDecide as a query.
func (s *Service) toDecide(ctx context.Context, p *auth.Principal) (predicate.Approval, error) {
	if p.Type != auth.ActorUser {
		return func(sel *entsql.Selector) { sel.Where(entsql.False()) }, nil
	}
	if p.Role == auth.RoleAdmin {
		return func(*entsql.Selector) {}, nil
	}
	managed, err := s.managed(ctx, p)
	if err != nil {
		return nil, err
	}
	return func(sel *entsql.Selector) {
		preds := []*entsql.Predicate{entsql.And(
			entsql.EQ(sel.C(entapproval.FieldCurrentApprover), ApproverUser),
			entsql.EQ(sel.C(entapproval.FieldCurrentUserID), p.ID))}
		if p.Role == auth.RoleSupervisor && p.TeamPath != "" {
			preds = append(preds, entsql.And(
				entsql.EQ(sel.C(entapproval.FieldCurrentApprover), ApproverSupervisor),
				entsql.HasPrefix(sel.C(entapproval.FieldRequesterTeamPath), p.TeamPath)))
		}
		if len(managed) > 0 {
			preds = append(preds, entsql.And(
				entsql.EQ(sel.C(entapproval.FieldCurrentApprover), ApproverPoolManager),
				s.store.IDIn(sel.C(entapproval.FieldPoolID), managed)))
		}
		sel.Where(entsql.Or(preds...))
	}, nil
}

type stepOf struct {
	step     int
	approved bool
}

func (s *Service) emit(ctx context.Context, tx *ent.Tx, p *auth.Principal, t events.Type, a *ent.Approval, subj events.ApprovalSubject, st *stepOf) error {
	data := events.Approval{CustomerID: subj.CustomerID, RecordKind: subj.RecordKind, RecordID: subj.RecordID, SubjectKind: a.SubjectKind, SubjectID: a.SubjectID, Rule: a.Rule,
		Status: string(a.Status), RequesterID: a.RequesterID}
	if st != nil {
		n, dec := st.step, "reject"
		if st.approved {
			dec = "approve"
		}
		data.Step, data.Decision = &n, dec
	}
	return events.Emit(ctx, tx, events.Event{Type: t, SubjectKind: events.KindApproval, SubjectID: a.ID,
		Actor: p.EventActor(), OccurredAt: s.now(), Data: data})
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
