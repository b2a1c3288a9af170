package httpapi

import (
	"context"
	"encoding/json"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
)

// poolBody is the union of createPool and updatePool bodies, decoded with
// merge-patch semantics (the generated types differ only in enum names).
type poolBody struct {
	Kind                  *string                                        `json:"kind"`
	Name                  *string                                        `json:"name"`
	IsDefault             *bool                                          `json:"isDefault"`
	MemberTeamIds         *[]uuid.UUID                                   `json:"memberTeamIds"`
	ManagerIds            *[]uuid.UUID                                   `json:"managerIds"`
	IdleDays              nullable.Nullable[int]                         `json:"idleDays"`
	NoDealDays            nullable.Nullable[int]                         `json:"noDealDays"`
	NotifyDaysBefore      nullable.Nullable[int]                         `json:"notifyDaysBefore"`
	FreezeMaxDays         nullable.Nullable[int]                         `json:"freezeMaxDays"`
	ReclaimDealt          *bool                                          `json:"reclaimDealt"`
	ClaimCooldownDays     nullable.Nullable[int]                         `json:"claimCooldownDays"`
	DailyClaimLimit       nullable.Nullable[int]                         `json:"dailyClaimLimit"`
	ClaimRequiresApproval *bool                                          `json:"claimRequiresApproval"`
	VisibleFields         nullable.Nullable[[]string]                    `json:"visibleFields"`
	ByGrade               nullable.Nullable[map[string]schema.GradeRule] `json:"byGrade"`
	AutoAssign            *string                                        `json:"autoAssign"`
}

func poolInput(body any) (pool.PoolInput, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return pool.PoolInput{}, err
	}
	var b poolBody
	if err := json.Unmarshal(raw, &b); err != nil {
		return pool.PoolInput{}, err
	}
	in := pool.PoolInput{
		Name: b.Name, IsDefault: b.IsDefault, MemberTeamIDs: b.MemberTeamIds, ManagerIDs: b.ManagerIds,
		IdleDays: fieldOf(b.IdleDays, same[int]), NoDealDays: fieldOf(b.NoDealDays, same[int]),
		NotifyDaysBefore: fieldOf(b.NotifyDaysBefore, same[int]), FreezeMaxDays: fieldOf(b.FreezeMaxDays, same[int]),
		ReclaimDealt: b.ReclaimDealt, ClaimCooldownDays: fieldOf(b.ClaimCooldownDays, same[int]),
		DailyClaimLimit: fieldOf(b.DailyClaimLimit, same[int]), ClaimRequiresApproval: b.ClaimRequiresApproval,
		VisibleFields: fieldOf(b.VisibleFields, same[[]string]), ByGrade: patch.OrZero(fieldOf(b.ByGrade, same[map[string]schema.GradeRule])),
		AutoAssign: b.AutoAssign,
	}
	if b.Kind != nil {
		in.Kind = *b.Kind
	}
	return in, nil
}

func poolOut(pl *ent.Pool) (api.Pool, error) {
	m := map[string]any{
		"id": pl.ID, "kind": pl.Kind, "name": pl.Name, "isDefault": pl.IsDefault,
		"memberTeamIds": nonNilIDs(pl.MemberTeamIds), "managerIds": nonNilIDs(pl.ManagerIds), "ruleVersion": pl.RuleVersion,
		"idleDays": pl.IdleDays, "noDealDays": pl.NoDealDays, "notifyDaysBefore": pl.NotifyDaysBefore,
		"freezeMaxDays": pl.FreezeMaxDays, "reclaimDealt": pl.ReclaimDealt, "claimCooldownDays": pl.ClaimCooldownDays,
		"dailyClaimLimit": pl.DailyClaimLimit, "claimRequiresApproval": pl.ClaimRequiresApproval,
		"visibleFields": pl.VisibleFields, "byGrade": pl.ByGrade, "autoAssign": pl.AutoAssign,
		"createdAt": pl.CreatedAt.UTC(), "updatedAt": pl.UpdatedAt.UTC(),
	}
	if pl.ByGrade == nil {
		m["byGrade"] = map[string]any{}
	}
	var out api.Pool
	raw, err := json.Marshal(m)
	if err != nil {
		return out, err
	}
	return out, json.Unmarshal(raw, &out)
}

func nonNilIDs(ids []uuid.UUID) []uuid.UUID {
	if ids == nil {
		return []uuid.UUID{}
	}
	return ids
}

// CreatePool creates a pool.
func (s *Server) CreatePool(ctx context.Context, req api.CreatePoolRequestObject) (api.CreatePoolResponseObject, error) {
	in, err := poolInput(req.Body)
	if err != nil {
		return nil, err
	}
	pl, err := s.pools.CreatePool(ctx, auth.FromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "pool", pl.ID.String())
	out, err := poolOut(pl)
	if err != nil {
		return nil, err
	}
	return api.CreatePool201JSONResponse{Body: out, Headers: api.CreatePool201ResponseHeaders{ETag: etag.Ptr(pl.Version), Location: location("pools", pl.ID)}}, nil
}

// GetPool returns a pool.
func (s *Server) GetPool(ctx context.Context, req api.GetPoolRequestObject) (api.GetPoolResponseObject, error) {
	pl, err := s.pools.Get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	out, err := poolOut(pl)
	if err != nil {
		return nil, err
	}
	return api.GetPool200JSONResponse{Body: out, Headers: api.GetPool200ResponseHeaders{ETag: etag.Ptr(pl.Version)}}, nil
}

// UpdatePool patches a pool.
func (s *Server) UpdatePool(ctx context.Context, req api.UpdatePoolRequestObject) (api.UpdatePoolResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in, err := poolInput(b)
	if err != nil {
		return nil, err
	}
	pl, err := s.pools.UpdatePool(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	out, err := poolOut(pl)
	if err != nil {
		return nil, err
	}
	return api.UpdatePool200JSONResponse{Body: out, Headers: api.UpdatePool200ResponseHeaders{ETag: etag.Ptr(pl.Version)}}, nil
}

// ListPools lists pools.
func (s *Server) ListPools(ctx context.Context, req api.ListPoolsRequestObject) (api.ListPoolsResponseObject, error) {
	after, err := s.afterID(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	limit := page.Size(req.Params.Limit)
	pools, err := s.pools.ListPools(ctx, (*string)(req.Params.Kind), after, limit)
	if err != nil {
		return nil, err
	}
	out := api.PoolList{Items: make([]api.Pool, len(pools))}
	for i, pl := range pools {
		if out.Items[i], err = poolOut(pl); err != nil {
			return nil, err
		}
	}
	if len(pools) > 0 {
		out.NextCursor = s.nextID(ctx, len(pools), limit, pools[len(pools)-1].ID)
	}
	return api.ListPools200JSONResponse{Body: out}, nil
}

func settingsOut(st pool.Settings) api.Settings {
	return api.Settings{CapCountsDealt: st.CapCountsDealt, MaxOwnedLeads: capOut(st.MaxOwnedLeads),
		MaxOwnedCustomers: capOut(st.MaxOwnedCustomers), MaxFrozen: capOut(st.MaxFrozen)}
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

func (s *Server) history(ctx context.Context, kind string, id uuid.UUID, limit *int32, cursor *string) (api.HistoryList, error) {
	after, err := s.afterID(ctx, cursor)
	if err != nil {
		return api.HistoryList{}, err
	}
	n := page.Size(limit)
	rows, err := s.pools.History(ctx, auth.FromContext(ctx), kind, id, after, n)
	if err != nil {
		return api.HistoryList{}, err
	}
	out := api.HistoryList{Items: historyOut(rows)}
	if len(rows) > 0 {
		out.NextCursor = s.nextID(ctx, len(rows), n, rows[len(rows)-1].ID)
	}
	return out, nil
}

// ListLeadHistory lists a lead's ownership history.
func (s *Server) ListLeadHistory(ctx context.Context, req api.ListLeadHistoryRequestObject) (api.ListLeadHistoryResponseObject, error) {
	out, err := s.history(ctx, "lead", req.Id, req.Params.Limit, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	return api.ListLeadHistory200JSONResponse{Body: out}, nil
}

// ListCustomerHistory lists a customer's ownership history.
func (s *Server) ListCustomerHistory(ctx context.Context, req api.ListCustomerHistoryRequestObject) (api.ListCustomerHistoryResponseObject, error) {
	out, err := s.history(ctx, "customer", req.Id, req.Params.Limit, req.Params.Cursor)
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
	after, err := s.afterID(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	status := "pending"
	if req.Params.Status != nil {
		status = string(*req.Params.Status)
	}
	n := page.Size(req.Params.Limit)
	reqs, err := s.pools.ListClaimRequests(ctx, auth.FromContext(ctx), status, after, n)
	if err != nil {
		return nil, err
	}
	out := api.ClaimRequestList{Items: make([]api.ClaimRequest, len(reqs))}
	for i, r := range reqs {
		out.Items[i] = claimRequestOut(r)
	}
	if len(reqs) > 0 {
		out.NextCursor = s.nextID(ctx, len(reqs), n, reqs[len(reqs)-1].ID)
	}
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
