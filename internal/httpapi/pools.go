package httpapi

import (
	"context"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
)

// poolRulesIn reads the rule fields that createPool, updatePool and
// previewPoolRules share (the spec's PoolRules); null switches a rule off.
func poolRulesIn(idle, noDeal, notify, freeze, cooldown nullable.Nullable[api.Days], daily nullable.Nullable[int32],
	reclaimDealt, approval *bool, visible nullable.Nullable[[]api.VisibleField], byGrade *map[string]api.GradeRule,
	autoAssign *api.AutoAssignMode) pool.PoolInput {
	days := func(d int32) int { return int(d) }
	in := pool.PoolInput{
		IdleDays: fieldOf(idle, days), NoDealDays: fieldOf(noDeal, days), NotifyDaysBefore: fieldOf(notify, days),
		FreezeMaxDays: fieldOf(freeze, days), ClaimCooldownDays: fieldOf(cooldown, days), DailyClaimLimit: fieldOf(daily, days),
		ReclaimDealt: reclaimDealt, ClaimRequiresApproval: approval,
		VisibleFields: fieldOf(visible, func(fs []api.VisibleField) []string {
			out := make([]string, len(fs))
			for i, f := range fs {
				out[i] = string(f)
			}
			return out
		}),
	}
	if byGrade != nil {
		m := make(map[string]schema.GradeRule, len(*byGrade))
		for g, r := range *byGrade {
			m[g] = schema.GradeRule{IdleDays: patch.OrNil(fieldOf(r.IdleDays, days)), NoDealDays: patch.OrNil(fieldOf(r.NoDealDays, days))}
		}
		in.ByGrade = &m
	}
	if autoAssign != nil {
		a := string(*autoAssign)
		in.AutoAssign = &a
	}
	return in
}

func poolCreateIn(b *api.PoolCreate) pool.PoolInput {
	in := poolRulesIn(b.IdleDays, b.NoDealDays, b.NotifyDaysBefore, b.FreezeMaxDays, b.ClaimCooldownDays, b.DailyClaimLimit,
		b.ReclaimDealt, b.ClaimRequiresApproval, b.VisibleFields, b.ByGrade, b.AutoAssign)
	in.Kind, in.Name, in.IsDefault, in.MemberTeamIDs, in.ManagerIDs = string(b.Kind), &b.Name, b.IsDefault, b.MemberTeamIds, b.ManagerIds
	return in
}

func poolUpdateIn(b *api.PoolUpdate) pool.PoolInput {
	// byGrade: null clears every per-grade rule, as an empty object does.
	byGrade := patch.OrZero(fieldOf(b.ByGrade, same[map[string]api.GradeRule]))
	if byGrade != nil && *byGrade == nil {
		*byGrade = map[string]api.GradeRule{}
	}
	in := poolRulesIn(b.IdleDays, b.NoDealDays, b.NotifyDaysBefore, b.FreezeMaxDays, b.ClaimCooldownDays, b.DailyClaimLimit,
		b.ReclaimDealt, b.ClaimRequiresApproval, b.VisibleFields, byGrade, b.AutoAssign)
	in.Name, in.IsDefault, in.MemberTeamIDs, in.ManagerIDs = b.Name, b.IsDefault, b.MemberTeamIds, b.ManagerIds
	return in
}

// daysOut renders an optional number of days (null: the rule is off).
func daysOut(v *int) nullable.Nullable[api.Days] {
	if v == nil {
		return nullable.NewNullNullable[api.Days]()
	}
	return nullable.NewNullableWithValue(api.Days(*v))
}

// daysOmitted renders an optional per-grade number of days, absent when
// unset (as the stored rule omits it).
func daysOmitted(v *int) nullable.Nullable[api.Days] {
	if v == nil {
		return nullable.Nullable[api.Days]{}
	}
	return nullable.NewNullableWithValue(api.Days(*v))
}

func poolOut(pl *ent.Pool) api.Pool {
	byGrade := make(map[string]api.GradeRule, len(pl.ByGrade))
	for g, r := range pl.ByGrade {
		byGrade[g] = api.GradeRule{IdleDays: daysOmitted(r.IdleDays), NoDealDays: daysOmitted(r.NoDealDays)}
	}
	visible := nullable.NewNullNullable[[]api.VisibleField]()
	if pl.VisibleFields != nil {
		fs := make([]api.VisibleField, len(pl.VisibleFields))
		for i, f := range pl.VisibleFields {
			fs[i] = api.VisibleField(f)
		}
		visible = nullable.NewNullableWithValue(fs)
	}
	autoAssign := api.AutoAssignMode(pl.AutoAssign)
	reclaimDealt, approval := pl.ReclaimDealt, pl.ClaimRequiresApproval
	return api.Pool{
		Id: pl.ID, Kind: api.SubjectType(pl.Kind), Name: pl.Name, IsDefault: pl.IsDefault,
		MemberTeamIds: nonNilIDs(pl.MemberTeamIds), ManagerIds: nonNilIDs(pl.ManagerIds), RuleVersion: int32(pl.RuleVersion),
		IdleDays: daysOut(pl.IdleDays), NoDealDays: daysOut(pl.NoDealDays), NotifyDaysBefore: daysOut(pl.NotifyDaysBefore),
		FreezeMaxDays: daysOut(pl.FreezeMaxDays), ReclaimDealt: &reclaimDealt, ClaimCooldownDays: daysOut(pl.ClaimCooldownDays),
		DailyClaimLimit: daysOut(pl.DailyClaimLimit), ClaimRequiresApproval: &approval,
		VisibleFields: visible, ByGrade: &byGrade, AutoAssign: &autoAssign,
		CreatedAt: pl.CreatedAt.UTC(), UpdatedAt: pl.UpdatedAt.UTC(),
	}
}

func nonNilIDs(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// CreatePool creates a pool.
func (s *Server) CreatePool(ctx context.Context, req api.CreatePoolRequestObject) (api.CreatePoolResponseObject, error) {
	pl, err := s.pools.CreatePool(ctx, auth.FromContext(ctx), poolCreateIn(req.Body))
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "pool", pl.ID.String())
	return api.CreatePool201JSONResponse{Body: poolOut(pl), Headers: api.CreatePool201ResponseHeaders{ETag: etag.Ptr(pl.Version), Location: location("pools", pl.ID)}}, nil
}

// GetPool returns a pool.
func (s *Server) GetPool(ctx context.Context, req api.GetPoolRequestObject) (api.GetPoolResponseObject, error) {
	pl, err := s.pools.Get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetPool200JSONResponse{Body: poolOut(pl), Headers: api.GetPool200ResponseHeaders{ETag: etag.Ptr(pl.Version)}}, nil
}

// UpdatePool patches a pool.
func (s *Server) UpdatePool(ctx context.Context, req api.UpdatePoolRequestObject) (api.UpdatePoolResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	pl, err := s.pools.UpdatePool(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, poolUpdateIn(b))
	if err != nil {
		return nil, err
	}
	return api.UpdatePool200JSONResponse{Body: poolOut(pl), Headers: api.UpdatePool200ResponseHeaders{ETag: etag.Ptr(pl.Version)}}, nil
}

// ListPools lists pools.
func (s *Server) ListPools(ctx context.Context, req api.ListPoolsRequestObject) (api.ListPoolsResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	pools, next, err := s.pools.ListPools(ctx, (*string)(req.Params.Kind), cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.PoolList{Items: make([]api.Pool, len(pools))}
	for i, pl := range pools {
		out.Items[i] = poolOut(pl)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListPools200JSONResponse{Body: out}, nil
}

func settingsOut(st pool.Settings) api.Settings {
	out := api.Settings{CapCountsDealt: st.CapCountsDealt, MaxOwnedLeads: capOut(st.MaxOwnedLeads),
		MaxOwnedCustomers: capOut(st.MaxOwnedCustomers), MaxFrozen: capOut(st.MaxFrozen),
		MinQuoteMarginPercent: st.MinQuoteMarginPercent}
	if len(st.MinQuoteMarginPercentByCategory) > 0 {
		m := api.MarginByCategory(st.MinQuoteMarginPercentByCategory)
		out.MinQuoteMarginPercentByCategory = &m
	}
	return out
}

// GetSettings returns the global settings.
func (s *Server) GetSettings(ctx context.Context, _ api.GetSettingsRequestObject) (api.GetSettingsResponseObject, error) {
	st, err := s.pools.Settings(ctx)
	if err != nil {
		return nil, err
	}
	return api.GetSettings200JSONResponse{Body: settingsOut(st), Headers: api.GetSettings200ResponseHeaders{ETag: etag.Ptr(st.Version)}}, nil
}

// UpdateSettings patches the global settings.
func (s *Server) UpdateSettings(ctx context.Context, req api.UpdateSettingsRequestObject) (api.UpdateSettingsResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	st, err := s.pools.UpdateSettings(ctx, req.Params.IfMatch, pool.SettingsPatch{
		MaxOwnedLeads: fieldOf(b.MaxOwnedLeads, capIn), MaxOwnedCustomers: fieldOf(b.MaxOwnedCustomers, capIn),
		MaxFrozen: fieldOf(b.MaxFrozen, capIn), CapCountsDealt: b.CapCountsDealt,
		MinQuoteMarginPercent:           fieldOf(b.MinQuoteMarginPercent, same[string]),
		MinQuoteMarginPercentByCategory: fieldOf(b.MinQuoteMarginPercentByCategory, func(m api.MarginByCategory) map[string]string { return m }),
	})
	if err != nil {
		return nil, err
	}
	return api.UpdateSettings200JSONResponse{Body: settingsOut(st), Headers: api.UpdateSettings200ResponseHeaders{ETag: etag.Ptr(st.Version)}}, nil
}

func historyOut(rows []*ent.OwnershipChange) []api.HistoryEntry {
	out := make([]api.HistoryEntry, len(rows))
	for i, h := range rows {
		v := int32(h.RuleVersion)
		reason := nullable.NewNullNullable[string]()
		if h.Reason != "" {
			reason = nullable.NewNullableWithValue(h.Reason)
		}
		out[i] = api.HistoryEntry{Id: h.ID, Operation: api.HistoryEntryOperation(h.Operation), FromOwnerId: nullOf(h.FromOwnerID),
			ToOwnerId: nullOf(h.ToOwnerID), ActorId: nullOf(h.ActorID), ActorType: api.HistoryEntryActorType(h.ActorType),
			Reason: reason, RuleVersion: &v, At: h.At.UTC()}
	}
	return out
}

func (s *Server) history(ctx context.Context, kind kinds.Kind, id uuid.UUID, limit *int32, cursor *string) (api.HistoryList, error) {
	c, err := s.cursorIn(ctx, cursor)
	if err != nil {
		return api.HistoryList{}, err
	}
	rows, next, err := s.pools.History(ctx, auth.FromContext(ctx), kind, id, c, page.Size(limit))
	if err != nil {
		return api.HistoryList{}, err
	}
	return api.HistoryList{Items: historyOut(rows), NextCursor: s.cursorOut(ctx, next)}, nil
}

// ListLeadHistory lists a lead's ownership history.
func (s *Server) ListLeadHistory(ctx context.Context, req api.ListLeadHistoryRequestObject) (api.ListLeadHistoryResponseObject, error) {
	out, err := s.history(ctx, kinds.Lead, req.Id, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListLeadHistory200JSONResponse{Body: out}, nil
}

// ListCustomerHistory lists a customer's ownership history.
func (s *Server) ListCustomerHistory(ctx context.Context, req api.ListCustomerHistoryRequestObject) (api.ListCustomerHistoryResponseObject, error) {
	out, err := s.history(ctx, kinds.Customer, req.Id, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListCustomerHistory200JSONResponse{Body: out}, nil
}

func claimRequestOut(r *ent.ClaimRequest) api.ClaimRequest {
	reason := nullable.NewNullNullable[string]()
	if r.Reason != "" {
		reason = nullable.NewNullableWithValue(r.Reason)
	}
	return api.ClaimRequest{Id: r.ID, Kind: api.SubjectType(r.Kind), RecordId: r.RecordID, PoolId: r.PoolID,
		RequesterId: r.RequesterID, Status: api.ClaimRequestStatus(r.Status), DeciderId: nullOf(r.DeciderID),
		Reason: reason, FailureCode: nullable.NewNullNullable[string](), CreatedAt: r.CreatedAt.UTC(), DecidedAt: nullTime(r.DecidedAt)}
}

// ListClaimRequests lists claim requests.
func (s *Server) ListClaimRequests(ctx context.Context, req api.ListClaimRequestsRequestObject) (api.ListClaimRequestsResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	status := "pending"
	if req.Params.Status != nil {
		status = string(*req.Params.Status)
	}
	reqs, next, err := s.pools.ListClaimRequests(ctx, auth.FromContext(ctx), status, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ClaimRequestList{Items: make([]api.ClaimRequest, len(reqs))}
	for i, r := range reqs {
		out.Items[i] = claimRequestOut(r)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListClaimRequests200JSONResponse{Body: out}, nil
}

func reasonOf(r *api.ReasonOptional) string {
	if r == nil || r.Reason == nil {
		return ""
	}
	return *r.Reason
}

// ApproveClaimRequest approves a claim request.
func (s *Server) ApproveClaimRequest(ctx context.Context, req api.ApproveClaimRequestRequestObject) (api.ApproveClaimRequestResponseObject, error) {
	r, err := s.pools.DecideClaim(ctx, auth.FromContext(ctx), req.Id, true, reasonOf(req.Body))
	if err != nil {
		return nil, err
	}
	return api.ApproveClaimRequest200JSONResponse{Body: claimRequestOut(r)}, nil
}

// RejectClaimRequest rejects a claim request.
func (s *Server) RejectClaimRequest(ctx context.Context, req api.RejectClaimRequestRequestObject) (api.RejectClaimRequestResponseObject, error) {
	r, err := s.pools.DecideClaim(ctx, auth.FromContext(ctx), req.Id, false, reasonOf(req.Body))
	if err != nil {
		return nil, err
	}
	return api.RejectClaimRequest200JSONResponse{Body: claimRequestOut(r)}, nil
}
