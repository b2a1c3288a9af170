package httpapi

import (
	"context"
	"time"

	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

func sweepItems(items []pool.SweepItem) []api.SweepItem {
	out := make([]api.SweepItem, len(items))
	for i, it := range items {
		out[i] = api.SweepItem{Id: it.ID, Kind: api.SubjectType(it.Kind), PreviousOwnerId: it.PreviousOwnerID, OwnerId: it.OwnerID}
		if it.Reason != "" {
			r := api.SweepItemReason(it.Reason)
			out[i].Reason = &r
		}
		if it.ReclaimAt != nil {
			t := it.ReclaimAt.UTC()
			out[i].ReclaimAt = &t
		}
	}
	return out
}

// RunSweep runs (or previews) the reclaim sweep.
func (s *Server) RunSweep(ctx context.Context, req api.RunSweepRequestObject) (api.RunSweepResponseObject, error) {
	res, err := s.pools.Sweep(ctx, req.Body.AsOf, req.Body.DryRun)
	if err != nil {
		return nil, err
	}
	return api.RunSweep200JSONResponse{Body: api.SweepResult{
		Reclaimed: sweepItems(res.Reclaimed), Released: sweepItems(res.Released), Warned: sweepItems(res.Warned),
	}}, nil
}

// ListReclaimWarnings lists warnings for the caller's records (and his
// subtree's, for supervisors).
func (s *Server) ListReclaimWarnings(ctx context.Context, req api.ListReclaimWarningsRequestObject) (api.ListReclaimWarningsResponseObject, error) {
	p := auth.FromContext(ctx)
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	ws, next, err := s.pools.Warnings(ctx, p, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ReclaimWarningList{Items: make([]api.ReclaimWarning, len(ws))}
	for i, w := range ws {
		out.Items[i] = api.ReclaimWarning{Id: w.ID, Kind: api.SubjectType(w.Kind), RecordId: w.RecordID, OwnerId: w.OwnerID,
			ReclaimAt: w.ReclaimAt.UTC(), Reason: api.ReclaimWarningReason(w.Reason), CreatedAt: w.CreatedAt.UTC()}
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListReclaimWarnings200JSONResponse{Body: out}, nil
}

// AdvanceTestClock moves the test clock; without SHOAL_TEST_CLOCK=1 the
// operation does not exist.
func (s *Server) AdvanceTestClock(_ context.Context, req api.AdvanceTestClockRequestObject) (api.AdvanceTestClockResponseObject, error) {
	if s.testClock == nil {
		return nil, apperr.New(apperr.NotFound, "route_not_found", "the test clock is not enabled (SHOAL_TEST_CLOCK=1)")
	}
	now := s.testClock.Advance(time.Duration(req.Body.Seconds) * time.Second)
	return api.AdvanceTestClock200JSONResponse{Body: api.ClockTime{Now: now}}, nil
}

// PreviewPoolRules compares deadlines under proposed rules with the
// current ones, saving nothing.
func (s *Server) PreviewPoolRules(ctx context.Context, req api.PreviewPoolRulesRequestObject) (api.PreviewPoolRulesResponseObject, error) {
	var in pool.PoolInput
	if b := req.Body; b != nil {
		in = poolRulesIn(b.IdleDays, b.NoDealDays, b.NotifyDaysBefore, b.FreezeMaxDays, b.ClaimCooldownDays, b.DailyClaimLimit,
			b.ReclaimDealt, b.ClaimRequiresApproval, b.VisibleFields, b.ByGrade, b.AutoAssign)
	}
	items, scanned, err := s.pools.Preview(ctx, auth.FromContext(ctx), req.Id, in, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.RulePreview{Scanned: int64(scanned), Items: make([]previewItem, 0, len(items))}
	clockOut := func(c poolrulesClock) (nullable.Nullable[api.NullableTimestamp], nullable.Nullable[api.ReclaimReason]) {
		return nullTime(c.ReclaimAt), reasonOut(c.Reason)
	}
	for _, it := range items {
		ca, cr := clockOut(it.Current)
		pa, pr := clockOut(it.Proposed)
		out.Items = append(out.Items, previewItem{CurrentReason: cr, CurrentReclaimAt: ca, Id: it.ID, Kind: api.SubjectType(it.Kind), OwnerId: it.OwnerID, ProposedReason: pr, ProposedReclaimAt: pa})
	}
	return api.PreviewPoolRules200JSONResponse{Body: out}, nil
}

type poolrulesClock = poolrules.Clock

// previewItem is the generated (anonymous) item type of api.RulePreview.
type previewItem = struct {
	CurrentReason     nullable.Nullable[api.ReclaimReason]     `json:"currentReason,omitempty"`
	CurrentReclaimAt  nullable.Nullable[api.NullableTimestamp] `json:"currentReclaimAt,omitempty"`
	Id                api.Id                                   `json:"id"`
	Kind              api.SubjectType                          `json:"kind"`
	OwnerId           *api.Id                                  `json:"ownerId,omitempty"`
	ProposedReason    nullable.Nullable[api.ReclaimReason]     `json:"proposedReason,omitempty"`
	ProposedReclaimAt nullable.Nullable[api.NullableTimestamp] `json:"proposedReclaimAt,omitempty"`
}
