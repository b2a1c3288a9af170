package httpapi

import (
	"context"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/merge"
)

// chosen collects the field choices of a merge body: field name -> the
// record whose value the survivor takes.
type chosen map[string]uuid.UUID

func (c chosen) add(name string, from *uuid.UUID) {
	if from != nil {
		c[name] = *from
	}
}

// MergeLeads merges duplicate leads into a survivor.
func (s *Server) MergeLeads(ctx context.Context, req api.MergeLeadsRequestObject) (api.MergeLeadsResponseObject, error) {
	b := req.Body
	// The audit row (written in the merge's transaction) names the
	// survivor; the merged ids are in its events.
	noteTarget(ctx, string(kinds.Lead), b.SurvivorId.String())
	fields := chosen{}
	if f := b.Fields; f != nil {
		fields.add("name", f.Name)
		fields.add("company", f.Company)
		fields.add("phone", f.Phone)
		fields.add("email", f.Email)
		fields.add("source", f.Source)
		fields.add("region", f.Region)
		fields.add("industry", f.Industry)
		fields.add("notes", f.Notes)
		fields.add("tags", f.Tags)
	}
	noteTarget(ctx, string(kinds.Lead), b.SurvivorId.String())
	v, err := s.merge.MergeLeads(ctx, auth.FromContext(ctx), merge.Input{Survivor: b.SurvivorId, Merged: b.MergedIds,
		Fields: fields, IfMatch: req.Params.IfMatch})
	if err != nil {
		return nil, err
	}
	return api.MergeLeads200JSONResponse{Body: leadOut(v), Headers: api.MergeLeads200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// MergeCustomers merges duplicate customers into a survivor.
func (s *Server) MergeCustomers(ctx context.Context, req api.MergeCustomersRequestObject) (api.MergeCustomersResponseObject, error) {
	b := req.Body
	// The audit row (written in the merge's transaction) names the
	// survivor; the merged ids are in its events.
	noteTarget(ctx, string(kinds.Customer), b.SurvivorId.String())
	fields := chosen{}
	if f := b.Fields; f != nil {
		fields.add("name", f.Name)
		fields.add("industry", f.Industry)
		fields.add("region", f.Region)
		fields.add("address", f.Address)
		fields.add("website", f.Website)
		fields.add("grade", f.Grade)
		fields.add("creditLevel", f.CreditLevel)
		fields.add("creditLimit", f.CreditLimit)
		fields.add("source", f.Source)
		fields.add("tags", f.Tags)
	}
	noteTarget(ctx, string(kinds.Customer), b.SurvivorId.String())
	v, err := s.merge.MergeCustomers(ctx, auth.FromContext(ctx), merge.Input{Survivor: b.SurvivorId, Merged: b.MergedIds,
		Fields: fields, IfMatch: req.Params.IfMatch})
	if err != nil {
		return nil, err
	}
	return api.MergeCustomers200JSONResponse{Body: customerOut(v), Headers: api.MergeCustomers200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}
