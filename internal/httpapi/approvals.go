package httpapi

import (
	"context"
	"time"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/page"
)

func approvalOut(a *ent.Approval) api.Approval {
	out := api.Approval{Id: a.ID, SubjectKind: api.ApprovalSubjectKind(a.SubjectKind), SubjectId: a.SubjectID, Rule: a.Rule,
		RequesterId: a.RequesterID, PoolId: a.PoolID, Status: api.ApprovalStatus(a.Status), CurrentStep: int32(a.CurrentStep),
		Steps: make([]api.ApprovalStep, len(a.Steps)), Reasons: make([]api.BlockingLine, 0, len(a.Reasons)),
		DecidedAt: utcPtr(a.DecidedAt), Version: int32(a.Version), CreatedAt: a.CreatedAt.UTC(), UpdatedAt: a.UpdatedAt.UTC()}
	for i, st := range a.Steps {
		o := api.ApprovalStep{Approver: api.Approver(st.Approver), UserId: st.UserID, Status: api.ApprovalStepStatus(st.Status),
			DeciderId: st.DeciderID, Comment: strOrNil(st.Comment)}
		if st.DecidedAt != nil {
			if t, err := time.Parse(time.RFC3339Nano, *st.DecidedAt); err == nil {
				t = t.UTC()
				o.DecidedAt = &t
			}
		}
		out.Steps[i] = o
	}
	for _, r := range a.Reasons {
		out.Reasons = append(out.Reasons, api.BlockingLine{LineId: r["lineId"], Reason: api.BlockingLineReason(r["reason"])})
	}
	return out
}

// ListApprovals lists the approval requests the caller sees.
func (s *Server) ListApprovals(ctx context.Context, req api.ListApprovalsRequestObject) (api.ListApprovalsResponseObject, error) {
	prm := req.Params
	f := approvals.Filter{SubjectID: prm.SubjectId}
	if prm.Mine != nil {
		m := string(*prm.Mine)
		f.Mine = &m
	}
	if prm.Status != nil {
		st := string(*prm.Status)
		f.Status = &st
	}
	if prm.SubjectKind != nil {
		k := string(*prm.SubjectKind)
		f.SubjectKind = &k
	}
	cursor, err := s.cursorIn(ctx, prm.Cursor)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.approvals.List(ctx, auth.FromContext(ctx), f, cursor, page.Size(prm.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ApprovalList{Items: outAll(rows, approvalOut)}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListApprovals200JSONResponse{Body: out}, nil
}

// GetApproval returns an approval request the caller sees.
func (s *Server) GetApproval(ctx context.Context, req api.GetApprovalRequestObject) (api.GetApprovalResponseObject, error) {
	a, err := s.approvals.Get(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetApproval200JSONResponse{Body: approvalOut(a), Headers: api.GetApproval200ResponseHeaders{ETag: etag.Ptr(a.Version)}}, nil
}

// DecideApproval decides the current step of an approval request.
func (s *Server) DecideApproval(ctx context.Context, req api.DecideApprovalRequestObject) (api.DecideApprovalResponseObject, error) {
	noteTarget(ctx, "approval", req.Id.String())
	d := approvals.Decision{Approve: req.Body.Decision == api.Approve}
	if req.Body.Comment != nil {
		d.Comment = *req.Body.Comment
	}
	a, err := s.approvals.Decide(ctx, auth.FromContext(ctx), req.Id, d)
	if err != nil {
		return nil, err
	}
	return api.DecideApproval200JSONResponse{Body: approvalOut(a)}, nil
}

func flowOut(f approvals.Flow) api.ApprovalFlow {
	out := api.ApprovalFlow{SubjectKind: api.ApprovalSubjectKind(f.SubjectKind), IsDefault: f.IsDefault,
		Version: int32(f.Version), Rules: make([]api.FlowRule, len(f.Rules))}
	if f.Row != nil {
		t := f.Row.UpdatedAt.UTC()
		out.UpdatedAt = &t
	}
	for i, r := range f.Rules {
		o := api.FlowRule{Name: r.Name, Steps: make([]api.FlowStep, len(r.Steps))}
		if r.When != nil {
			o.When = &api.FlowCondition{DiscountPercentAbove: r.When.DiscountPercentAbove, TotalAbove: r.When.TotalAbove,
				MarginPercentBelow: r.When.MarginPercentBelow}
		}
		for j, st := range r.Steps {
			o.Steps[j] = api.FlowStep{Approver: api.Approver(st.Approver), UserId: st.UserID}
		}
		out.Rules[i] = o
	}
	return out
}

// ListApprovalFlows lists every subject kind's approval flow.
func (s *Server) ListApprovalFlows(ctx context.Context, _ api.ListApprovalFlowsRequestObject) (api.ListApprovalFlowsResponseObject, error) {
	flows, err := s.approvals.Flows(ctx)
	if err != nil {
		return nil, err
	}
	out := api.ApprovalFlowList{Items: make([]api.ApprovalFlow, len(flows))}
	for i, f := range flows {
		out.Items[i] = flowOut(f)
	}
	return api.ListApprovalFlows200JSONResponse{Body: out}, nil
}

// GetApprovalFlow returns one subject kind's flow.
func (s *Server) GetApprovalFlow(ctx context.Context, req api.GetApprovalFlowRequestObject) (api.GetApprovalFlowResponseObject, error) {
	f, err := s.approvals.GetFlow(ctx, string(req.SubjectKind))
	if err != nil {
		return nil, err
	}
	return api.GetApprovalFlow200JSONResponse{Body: flowOut(f), Headers: api.GetApprovalFlow200ResponseHeaders{ETag: etag.Ptr(f.Version)}}, nil
}

// UpdateApprovalFlow replaces a subject kind's flow.
func (s *Server) UpdateApprovalFlow(ctx context.Context, req api.UpdateApprovalFlowRequestObject) (api.UpdateApprovalFlowResponseObject, error) {
	// Flows are keyed by kind: the audit row names the id derived from it
	// (as the event does) and the kind.
	noteTarget(ctx, "approvalFlow", approvals.FlowSubjectID(string(req.SubjectKind)).String())
	noteDetail(ctx, "kind="+string(req.SubjectKind))
	rules := make([]schema.FlowRule, len(req.Body.Rules))
	for i, r := range req.Body.Rules {
		o := schema.FlowRule{Name: r.Name, Steps: make([]schema.ApprovalStep, len(r.Steps))}
		if r.When != nil {
			o.When = &schema.FlowCondition{DiscountPercentAbove: r.When.DiscountPercentAbove, TotalAbove: r.When.TotalAbove,
				MarginPercentBelow: r.When.MarginPercentBelow}
		}
		for j, st := range r.Steps {
			o.Steps[j] = schema.ApprovalStep{Approver: string(st.Approver), UserID: st.UserId}
		}
		rules[i] = o
	}
	f, err := s.approvals.UpdateFlow(ctx, auth.FromContext(ctx), string(req.SubjectKind), req.Params.IfMatch, rules)
	if err != nil {
		return nil, err
	}
	return api.UpdateApprovalFlow200JSONResponse{Body: flowOut(f), Headers: api.UpdateApprovalFlow200ResponseHeaders{ETag: etag.Ptr(f.Version)}}, nil
}
