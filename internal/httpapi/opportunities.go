package httpapi

import (
	"context"
	"strconv"

	"github.com/google/uuid"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/opportunities"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/records"
)

func pipelineOut(pl *ent.Pipeline) api.Pipeline {
	out := api.Pipeline{Id: pl.ID, Name: pl.Name, IsDefault: pl.IsDefault, Stages: make([]api.PipelineStage, len(pl.Stages)),
		CreatedAt: pl.CreatedAt.UTC(), UpdatedAt: pl.UpdatedAt.UTC()}
	for i, st := range pl.Stages {
		out.Stages[i] = api.PipelineStage{Id: st.ID, Name: st.Name, Probability: int32(st.Probability),
			Kind: api.StageKind(st.Kind), Retired: st.Retired}
		if st.Code != "" {
			code := st.Code
			out.Stages[i].Code = &code
		}
	}
	return out
}

func stagesIn(in []api.PipelineStageInput) []opportunities.StageInput {
	out := make([]opportunities.StageInput, len(in))
	for i, st := range in {
		out[i] = opportunities.StageInput{ID: st.Id, Name: st.Name, Code: st.Code, Probability: int(st.Probability),
			Kind: string(st.Kind), Retired: st.Retired != nil && *st.Retired}
	}
	return out
}

// ListPipelines lists the sales pipelines.
func (s *Server) ListPipelines(ctx context.Context, _ api.ListPipelinesRequestObject) (api.ListPipelinesResponseObject, error) {
	rows, err := s.opportunities.ListPipelines(ctx)
	if err != nil {
		return nil, err
	}
	out := api.PipelineList{Items: make([]api.Pipeline, len(rows))}
	for i, pl := range rows {
		out.Items[i] = pipelineOut(pl)
	}
	return api.ListPipelines200JSONResponse{Body: out}, nil
}

// CreatePipeline makes a sales pipeline.
func (s *Server) CreatePipeline(ctx context.Context, req api.CreatePipelineRequestObject) (api.CreatePipelineResponseObject, error) {
	pl, err := s.opportunities.CreatePipeline(ctx, auth.FromContext(ctx), req.Body.Name, stagesIn(req.Body.Stages))
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "pipeline", pl.ID.String())
	return api.CreatePipeline201JSONResponse{Body: pipelineOut(pl),
		Headers: api.CreatePipeline201ResponseHeaders{ETag: etag.Ptr(pl.Version), Location: location("pipelines", pl.ID)}}, nil
}

// GetPipeline returns a sales pipeline.
func (s *Server) GetPipeline(ctx context.Context, req api.GetPipelineRequestObject) (api.GetPipelineResponseObject, error) {
	pl, err := s.opportunities.GetPipeline(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetPipeline200JSONResponse{Body: pipelineOut(pl), Headers: api.GetPipeline200ResponseHeaders{ETag: etag.Ptr(pl.Version)}}, nil
}

// UpdatePipeline renames a pipeline or replaces its stages.
func (s *Server) UpdatePipeline(ctx context.Context, req api.UpdatePipelineRequestObject) (api.UpdatePipelineResponseObject, error) {
	noteTarget(ctx, "pipeline", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	var stages []opportunities.StageInput
	if b.Stages != nil {
		stages = stagesIn(*b.Stages)
	}
	pl, err := s.opportunities.UpdatePipeline(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, b.Name, stages)
	if err != nil {
		return nil, err
	}
	return api.UpdatePipeline200JSONResponse{Body: pipelineOut(pl), Headers: api.UpdatePipeline200ResponseHeaders{ETag: etag.Ptr(pl.Version)}}, nil
}

// pipelinesByID reads every pipeline (a handful), for the stages'
// probabilities.
func (s *Server) pipelinesByID(ctx context.Context) (map[uuid.UUID]*ent.Pipeline, error) {
	rows, err := s.opportunities.ListPipelines(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[uuid.UUID]*ent.Pipeline, len(rows))
	for _, pl := range rows {
		out[pl.ID] = pl
	}
	return out, nil
}

func opportunityOut(o *ent.Opportunity, pls map[uuid.UUID]*ent.Pipeline) api.Opportunity {
	out := api.Opportunity{Id: o.ID, Title: o.Title, CustomerId: o.CustomerID, ContactId: o.ContactID, PipelineId: o.PipelineID,
		StageId: o.StageID, StageKind: api.StageKind(o.StageKind), Amount: o.Amount.String(), Currency: api.Currency(o.Currency),
		Probability: int32(opportunities.Probability(o, pls[o.PipelineID])), Source: o.Source, OwnerId: o.OwnerID,
		LostReason: o.LostReason, ClosedAt: utcPtr(o.ClosedAt), CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC()}
	if o.ExpectedCloseDate != nil {
		if d, err := dateOf(*o.ExpectedCloseDate); err == nil {
			out.ExpectedCloseDate = &d
		}
	}
	return out
}

func dateOf(s string) (openapi_types.Date, error) {
	var d openapi_types.Date
	err := d.UnmarshalText([]byte(s))
	return d, err
}

func dateIn(d *openapi_types.Date) *string {
	if d == nil {
		return nil
	}
	s := d.String()
	return &s
}

var opportunityColumns = []export.Column[api.Opportunity]{
	col("id", "编号", func(o api.Opportunity) string { return o.Id.String() }),
	col("title", "商机名称", func(o api.Opportunity) string { return o.Title }),
	col("customerId", "客户编号", func(o api.Opportunity) string { return o.CustomerId.String() }),
	col("contactId", "联系人编号", func(o api.Opportunity) string {
		if o.ContactId == nil {
			return ""
		}
		return o.ContactId.String()
	}),
	col("pipelineId", "销售流程编号", func(o api.Opportunity) string { return o.PipelineId.String() }),
	col("stageId", "阶段编号", func(o api.Opportunity) string { return o.StageId.String() }),
	col("stageKind", "阶段类型", func(o api.Opportunity) string { return string(o.StageKind) }),
	col("amount", "金额", func(o api.Opportunity) string { return o.Amount }),
	col("currency", "币种", func(o api.Opportunity) string { return string(o.Currency) }),
	col("probability", "赢率", func(o api.Opportunity) string { return strconv.Itoa(int(o.Probability)) }),
	col("expectedCloseDate", "预计成交日期", func(o api.Opportunity) string {
		if o.ExpectedCloseDate == nil {
			return ""
		}
		return o.ExpectedCloseDate.String()
	}),
	col("source", "来源", func(o api.Opportunity) string { return export.Text(o.Source) }),
	col("ownerId", "负责人编号", func(o api.Opportunity) string { return o.OwnerId.String() }),
	col("lostReason", "输单原因", func(o api.Opportunity) string { return export.Text(o.LostReason) }),
	col("closedAt", "关闭时间", func(o api.Opportunity) string {
		if o.ClosedAt == nil {
			return ""
		}
		return export.Time(*o.ClosedAt)
	}),
	col("createdAt", "创建时间", func(o api.Opportunity) string { return export.Time(o.CreatedAt) }),
	col("updatedAt", "更新时间", func(o api.Opportunity) string { return export.Time(o.UpdatedAt) }),
}

// CreateOpportunity makes an opportunity on a customer.
func (s *Server) CreateOpportunity(ctx context.Context, req api.CreateOpportunityRequestObject) (api.CreateOpportunityResponseObject, error) {
	b := req.Body
	amount, err := moneyIn("body/amount", b.Amount)
	if err != nil {
		return nil, err
	}
	in := opportunities.Input{Title: b.Title, CustomerID: b.CustomerId, ContactID: b.ContactId, PipelineID: b.PipelineId,
		StageID: b.StageId, Amount: amount, ExpectedCloseDate: dateIn(b.ExpectedCloseDate), Source: b.Source, OwnerID: b.OwnerId}
	if b.Currency != nil {
		c := string(*b.Currency)
		in.Currency = &c
	}
	if b.Probability != nil {
		v := int(*b.Probability)
		in.Probability = &v
	}
	o, err := s.opportunities.Create(ctx, auth.FromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "opportunity", o.ID.String())
	pls, err := s.pipelinesByID(ctx)
	if err != nil {
		return nil, err
	}
	return api.CreateOpportunity201JSONResponse{Body: opportunityOut(o, pls),
		Headers: api.CreateOpportunity201ResponseHeaders{ETag: etag.Ptr(o.Version), Location: location("opportunities", o.ID)}}, nil
}

// GetOpportunity returns an opportunity the caller sees.
func (s *Server) GetOpportunity(ctx context.Context, req api.GetOpportunityRequestObject) (api.GetOpportunityResponseObject, error) {
	o, err := s.opportunities.Get(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	pls, err := s.pipelinesByID(ctx)
	if err != nil {
		return nil, err
	}
	return api.GetOpportunity200JSONResponse{Body: opportunityOut(o, pls), Headers: api.GetOpportunity200ResponseHeaders{ETag: etag.Ptr(o.Version)}}, nil
}

// ListOpportunities lists the opportunities the caller sees, as JSON or as
// a CSV or XLSX file.
func (s *Server) ListOpportunities(ctx context.Context, req api.ListOpportunitiesRequestObject) (api.ListOpportunitiesResponseObject, error) {
	prm := req.Params
	p := auth.FromContext(ctx)
	f := opportunities.Filter{CustomerID: prm.CustomerId, PipelineID: prm.PipelineId, StageID: prm.StageId,
		CloseFrom: dateIn(prm.ExpectedCloseFrom), CloseTo: dateIn(prm.ExpectedCloseTo), Q: prm.Q}
	if prm.OwnerId != nil {
		if *prm.OwnerId == "me" {
			f.Owner = &p.ID
		} else {
			id, err := uuid.Parse(*prm.OwnerId)
			if err != nil {
				return nil, apperr.Invalidf("query.ownerId", "invalid", "ownerId is me or a user id")
			}
			f.Owner = &id
		}
	}
	if prm.StageKind != nil {
		k := string(*prm.StageKind)
		f.StageKind = &k
	}
	for _, a := range []struct {
		name string
		in   *api.Money
		out  **money.Money
	}{{"query.amountMin", prm.AmountMin, &f.AmountMin}, {"query.amountMax", prm.AmountMax, &f.AmountMax}} {
		if a.in != nil {
			m, err := moneyIn(a.name, *a.in)
			if err != nil {
				return nil, err
			}
			*a.out = &m
		}
	}
	pls, err := s.pipelinesByID(ctx)
	if err != nil {
		return nil, err
	}
	if w, ok := exportWanted(ctx); ok {
		body, cd, err := stream(ctx, s, w, exportOf[api.Opportunity]{exportAudit: exportAudit{op: "listOpportunities", targetType: "opportunity"},
			noun: "opportunities", columns: opportunityColumns, bom: prm.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.Opportunity, *records.Cursor, error) {
				rows, next, err := s.opportunities.List(ctx, p, f, after, exportPageSize)
				return outAll(rows, func(o *ent.Opportunity) api.Opportunity { return opportunityOut(o, pls) }), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListOpportunities200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListOpportunities200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListOpportunities200TextcsvResponse{Body: body, Headers: h}, nil
	}
	cursor, err := s.cursorIn(ctx, prm.Cursor)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.opportunities.List(ctx, p, f, cursor, page.Size(prm.Limit))
	if err != nil {
		return nil, err
	}
	out := api.OpportunityList{Items: make([]api.Opportunity, len(rows))}
	for i, o := range rows {
		out.Items[i] = opportunityOut(o, pls)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListOpportunities200JSONResponse{Body: out}, nil
}

// UpdateOpportunity patches an opportunity.
func (s *Server) UpdateOpportunity(ctx context.Context, req api.UpdateOpportunityRequestObject) (api.UpdateOpportunityResponseObject, error) {
	noteTarget(ctx, "opportunity", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := opportunities.Patch{Title: b.Title, ContactID: fieldOf(b.ContactId, same[uuid.UUID]),
		Probability:       fieldOf(b.Probability, func(v int32) int { return int(v) }),
		ExpectedCloseDate: fieldOf(b.ExpectedCloseDate, func(d openapi_types.Date) string { return d.String() }),
		Source:            fieldOf(b.Source, same[string]), OwnerID: b.OwnerId}
	if b.Amount != nil {
		m, err := moneyIn("body/amount", *b.Amount)
		if err != nil {
			return nil, err
		}
		in.Amount = &m
	}
	if b.Currency != nil {
		c := string(*b.Currency)
		in.Currency = &c
	}
	o, err := s.opportunities.Update(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	pls, err := s.pipelinesByID(ctx)
	if err != nil {
		return nil, err
	}
	return api.UpdateOpportunity200JSONResponse{Body: opportunityOut(o, pls), Headers: api.UpdateOpportunity200ResponseHeaders{ETag: etag.Ptr(o.Version)}}, nil
}

// ChangeOpportunityStage moves an opportunity to another stage.
func (s *Server) ChangeOpportunityStage(ctx context.Context, req api.ChangeOpportunityStageRequestObject) (api.ChangeOpportunityStageResponseObject, error) {
	noteTarget(ctx, "opportunity", req.Id.String())
	o, err := s.opportunities.ChangeStage(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, req.Body.StageId, req.Body.LostReason)
	if err != nil {
		return nil, err
	}
	pls, err := s.pipelinesByID(ctx)
	if err != nil {
		return nil, err
	}
	return api.ChangeOpportunityStage200JSONResponse{Body: opportunityOut(o, pls),
		Headers: api.ChangeOpportunityStage200ResponseHeaders{ETag: etag.Ptr(o.Version)}}, nil
}

// ListOpportunityHistory lists an opportunity's stage changes.
func (s *Server) ListOpportunityHistory(ctx context.Context, req api.ListOpportunityHistoryRequestObject) (api.ListOpportunityHistoryResponseObject, error) {
	rows, err := s.opportunities.History(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	out := api.OpportunityHistory{Items: make([]api.OpportunityStageChange, len(rows))}
	for i, c := range rows {
		out.Items[i] = api.OpportunityStageChange{Id: c.ID, FromStageId: c.FromStageID, ToStageId: c.ToStageID, LostReason: c.LostReason,
			At: c.At.UTC(), Actor: api.EventActor{Type: api.EventActorType(c.ActorType), Id: c.ActorID}}
	}
	return api.ListOpportunityHistory200JSONResponse{Body: out}, nil
}
