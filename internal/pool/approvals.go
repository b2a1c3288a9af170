package pool

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/events"
)

// RuleClaimApproval names the pool rule that files a claim as a request:
// the pool's claimRequiresApproval.
const RuleClaimApproval = "claim_requires_approval"

// SetApprovals (called by NewService) puts claim requests on the one approval mechanism: each
// request is an approval request whose built-in flow is one step, a
// manager of the pool; deciding it (decideApproval, or the older
// approveClaimRequest and rejectClaimRequest) runs DecideClaim.
func (s *Service) SetApprovals(ap *approvals.Service) {
	s.approvals = ap
	ap.Register(approvals.SubjectClaimRequest, []schema.FlowRule{{Name: "default",
		Steps: []schema.ApprovalStep{{Approver: approvals.ApproverPoolManager}}}},
		func(ctx context.Context, p *auth.Principal, a *ent.Approval, d approvals.Decision) error {
			_, err := s.DecideClaim(ctx, p, a.SubjectID, d.Approve, d.Comment)
			return err
		})
	ap.SetPools(s.managedPools)
}

// managedPools are the pools p manages.
func (s *Service) managedPools(ctx context.Context, p *auth.Principal) ([]uuid.UUID, error) {
	pools, err := s.store.Reader.Pool.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	scoped := make([]authz.Pool, len(pools))
	for i, pl := range pools {
		scoped[i] = ScopePool(pl)
	}
	return authz.NewScope(p, scoped).ManagedPools(), nil
}

// openClaimApproval files the approval request of claim request r, asked
// by requester, in tx.
func (s *Service) openClaimApproval(ctx context.Context, tx *ent.Tx, requester *auth.Principal, r *ent.ClaimRequest) (*ent.Approval, error) {
	plan, err := s.approvals.Plan(ctx, tx, approvals.SubjectClaimRequest, approvals.Facts{}, RuleClaimApproval)
	if err != nil {
		return nil, err
	}
	a, err := s.approvals.Open(ctx, tx, approvals.Request{SubjectKind: approvals.SubjectClaimRequest, SubjectID: r.ID,
		Requester: requester, PoolID: &r.PoolID, Plan: plan, Data: claimSubject(r)})
	if err != nil {
		return nil, err
	}
	if err := tx.ClaimRequest.UpdateOne(r).SetApprovalID(a.ID).Exec(ctx); err != nil {
		return nil, fmt.Errorf("claim request approval: %w", err)
	}
	return a, nil
}

// claimApproval returns claim request r's approval request, filing one
// for a request made before approvals existed.
func (s *Service) claimApproval(ctx context.Context, tx *ent.Tx, r *ent.ClaimRequest) (*ent.Approval, error) {
	if r.ApprovalID != nil {
		a, err := tx.Approval.Get(ctx, *r.ApprovalID)
		if err != nil {
			return nil, fmt.Errorf("claim request approval: %w", err)
		}
		return a, nil
	}
	u, err := tx.User.Get(ctx, r.RequesterID)
	if err != nil {
		return nil, fmt.Errorf("claim requester: %w", err)
	}
	return s.openClaimApproval(ctx, tx, &auth.Principal{Type: auth.ActorUser, ID: u.ID, Role: string(u.Role), TeamPath: u.TeamPath}, r)
}

// stepClaim records p's decision on claim request r's approval; the
// answer is the request's status after it (pending while steps remain).
func (s *Service) stepClaim(ctx context.Context, o *op, p *auth.Principal, r *ent.ClaimRequest, approve bool, reason string) (string, error) {
	a, err := s.claimApproval(ctx, o.tx, r)
	if err != nil {
		return "", err
	}
	after, err := s.approvals.Step(ctx, o.tx, p, a.ID, approvals.Decision{Approve: approve, Comment: reason},
		approvals.StepInfo{ManagesPool: o.managesPool(p), Data: claimSubject(r)})
	switch {
	case errors.Is(err, approvals.ErrNotApprover):
		return "", errWrongPool
	case errors.Is(err, approvals.ErrNotPending):
		return "", errNotPending
	case err != nil:
		return "", err
	}
	return after.Status.String(), nil
}

func claimSubject(r *ent.ClaimRequest) events.ApprovalSubject {
	id := r.RecordID
	return events.ApprovalSubject{RecordKind: string(r.Kind), RecordID: &id}
}
