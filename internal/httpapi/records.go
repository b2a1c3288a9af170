package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/records"
)

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func reasonOut(r string) nullable.Nullable[api.ReclaimReason] {
	if r == "" {
		return nullable.NewNullNullable[api.ReclaimReason]()
	}
	return nullable.NewNullableWithValue(api.ReclaimReason(r))
}

func leadOut(v *records.LeadView) api.Lead {
	l := v.Lead
	masked := v.Masked
	return api.Lead{
		Id: l.ID, Name: l.Name, Company: strOrNil(l.Company), Phone: strOrNil(l.Phone), Email: strOrNil(l.Email),
		Source: strOrNil(l.Source), Region: strOrNil(l.Region), Industry: strOrNil(l.Industry), Notes: strOrNil(l.Notes),
		Tags: nonNil(l.Tags), Status: api.LeadStatus(l.Status),
		OwnerId: nullOf(l.OwnerID), OwnerName: nullOf(v.OwnerName), PoolId: l.PoolID,
		OwnedAt: nullTime(l.OwnedAt), LastFollowUpAt: nullTime(l.LastFollowUpAt), FrozenUntil: nullTime(l.FrozenUntil),
		ReleasedAt: nullTime(l.ReleasedAt), ReclaimAt: nullTime(l.ReclaimAt), ReclaimReason: reasonOut(l.ReclaimReason),
		Masked: &masked, ConvertedCustomerId: nullOf(l.ConvertedCustomerID),
		CreatedAt: l.CreatedAt.UTC(), UpdatedAt: l.UpdatedAt.UTC(),
	}
}

func customerOut(v *records.CustomerView) api.Customer {
	c := v.Customer
	masked := v.Masked
	grade := nullable.NewNullNullable[api.Grade]()
	if c.Grade != "" {
		grade = nullable.NewNullableWithValue(api.Grade(c.Grade))
	}
	return api.Customer{
		Id: c.ID, Name: c.Name, Industry: strOrNil(c.Industry), Region: strOrNil(c.Region), Address: strOrNil(c.Address),
		Website: strOrNil(c.Website), Grade: grade, CreditLevel: strOrNil(c.CreditLevel), CreditLimit: moneyOut(c.CreditLimit),
		Source: strOrNil(c.Source), Tags: nonNil(c.Tags), Status: api.CustomerStatus(c.Status),
		DealStatus: c.DealStatus, DealAt: nullTime(c.DealAt),
		OwnerId: nullOf(c.OwnerID), OwnerName: nullOf(v.OwnerName), PoolId: c.PoolID,
		OwnedAt: nullTime(c.OwnedAt), LastFollowUpAt: nullTime(c.LastFollowUpAt), FrozenUntil: nullTime(c.FrozenUntil),
		ReleasedAt: nullTime(c.ReleasedAt), ReclaimAt: nullTime(c.ReclaimAt), ReclaimReason: reasonOut(c.ReclaimReason),
		Masked: &masked, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

func nonNil(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// leadCreated is a lead's representation with its placement, the answer
// of createLead. The spec's LeadCreated is allOf(Lead, placement), which
// the generator flattens into a struct of its own, so the fields are
// copied one by one; TestCreatedCopiesEveryField fails when Lead gains a
// field this copy misses.
func leadCreated(l api.Lead, placement string) api.LeadCreated {
	return api.LeadCreated{
		Id: l.Id, Name: l.Name, Company: l.Company, Phone: l.Phone, Email: l.Email, Source: l.Source, Region: l.Region,
		Industry: l.Industry, Notes: l.Notes, Tags: l.Tags, Status: l.Status,
		OwnerId: l.OwnerId, OwnerName: l.OwnerName, PoolId: l.PoolId,
		OwnedAt: l.OwnedAt, LastFollowUpAt: l.LastFollowUpAt, FrozenUntil: l.FrozenUntil,
		ReleasedAt: l.ReleasedAt, ReclaimAt: l.ReclaimAt, ReclaimReason: l.ReclaimReason,
		Masked: l.Masked, ConvertedCustomerId: l.ConvertedCustomerId,
		CreatedAt: l.CreatedAt, UpdatedAt: l.UpdatedAt,
		Placement: api.Placement(placement),
	}
}

// customerCreated is leadCreated for customers.
func customerCreated(c api.Customer, placement string) api.CustomerCreated {
	return api.CustomerCreated{
		Id: c.Id, Name: c.Name, Industry: c.Industry, Region: c.Region, Address: c.Address,
		Website: c.Website, Grade: c.Grade, CreditLevel: c.CreditLevel, CreditLimit: c.CreditLimit,
		Source: c.Source, Tags: c.Tags, Status: c.Status, DealStatus: c.DealStatus, DealAt: c.DealAt,
		OwnerId: c.OwnerId, OwnerName: c.OwnerName, PoolId: c.PoolId,
		OwnedAt: c.OwnedAt, LastFollowUpAt: c.LastFollowUpAt, FrozenUntil: c.FrozenUntil,
		ReleasedAt: c.ReleasedAt, ReclaimAt: c.ReclaimAt, ReclaimReason: c.ReclaimReason,
		Masked: c.Masked, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		Placement: api.Placement(placement),
	}
}

// recordFilter turns the shared list parameters into a records.Filter.
func (s *Server) recordFilter(ctx context.Context, limit *int32, cursor, owner *string, poolID *uuid.UUID, status *string, region, industry, source, tag *string,
	q *string, sort *string, includeTotal *bool, createdFrom, createdTo, updatedFrom, updatedTo *time.Time) (records.Filter, error) {
	f := records.Filter{Owner: owner, PoolID: poolID, Status: status, Region: region, Industry: industry, Source: source,
		Tag: tag, Q: q, Limit: page.Size(limit), CreatedFrom: createdFrom, CreatedTo: createdTo, UpdatedFrom: updatedFrom, UpdatedTo: updatedTo}
	if sort != nil {
		f.Sort = *sort
	}
	if includeTotal != nil {
		f.IncludeTotal = *includeTotal
	}
	c, err := s.cursorIn(ctx, cursor)
	f.Cursor = c
	return f, err
}

// outAll renders a page of views as their API representations.
func outAll[V, A any](views []V, out func(V) A) []A {
	items := make([]A, len(views))
	for i, v := range views {
		items[i] = out(v)
	}
	return items
}

// listed renders a page of records of any kind: the items, the total when
// counted and the next cursor.
func listed[V, A any](ctx context.Context, s *Server, views []V, total *int, next *records.Cursor, out func(V) A) ([]A, *int64, *string) {
	items := make([]A, len(views))
	for i, v := range views {
		items[i] = out(v)
	}
	var t *int64
	if total != nil {
		n := int64(*total)
		t = &n
	}
	return items, t, s.cursorOut(ctx, next)
}

func leadInput(name, company, phone, email, source, region, industry, notes *string, tags *[]string) records.LeadInput {
	return records.LeadInput{Name: name, Company: company, Phone: phone, Email: email, Source: source,
		Region: region, Industry: industry, Notes: notes, Tags: tags}
}

// CreateLead creates a lead.
func (s *Server) CreateLead(ctx context.Context, req api.CreateLeadRequestObject) (api.CreateLeadResponseObject, error) {
	b := req.Body
	var email *string
	if b.Email != nil {
		e := string(*b.Email)
		email = &e
	}
	in := leadInput(&b.Name, b.Company, b.Phone, email, b.Source, b.Region, b.Industry, b.Notes, b.Tags)
	in.PoolID = b.PoolId
	v, err := s.records.CreateLead(ctx, auth.FromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, string(kinds.Lead), v.ID.String())
	return api.CreateLead201JSONResponse{Body: leadCreated(leadOut(v), v.Placement), Headers: api.CreateLead201ResponseHeaders{ETag: etag.Ptr(v.Version), Location: location(kinds.Lead.Desc().Path, v.ID)}}, nil
}

// GetLead returns a lead.
func (s *Server) GetLead(ctx context.Context, req api.GetLeadRequestObject) (api.GetLeadResponseObject, error) {
	v, err := s.records.GetLead(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetLead200JSONResponse{Body: leadOut(v), Headers: api.GetLead200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// UpdateLead patches a lead.
func (s *Server) UpdateLead(ctx context.Context, req api.UpdateLeadRequestObject) (api.UpdateLeadResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := leadInput(b.Name, text(b.Company), text(b.Phone), text(b.Email), text(b.Source), text(b.Region), text(b.Industry),
		text(b.Notes), tagsField(b.Tags))
	v, err := s.records.UpdateLead(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateLead200JSONResponse{Body: leadOut(v), Headers: api.UpdateLead200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// ListLeads lists leads, or exports them (see stream).
func (s *Server) ListLeads(ctx context.Context, req api.ListLeadsRequestObject) (api.ListLeadsResponseObject, error) {
	pr := req.Params
	w, exporting := exportWanted(ctx)
	if exporting {
		pr.Limit, pr.Cursor, pr.IncludeTotal = nil, nil, nil // an export is every row, not a page
	}
	f, err := s.recordFilter(ctx, pr.Limit, pr.Cursor, pr.OwnerId, pr.PoolId, (*string)(pr.Status), pr.Region, pr.Industry, pr.Source, pr.Tag,
		pr.Q, (*string)(pr.Sort), pr.IncludeTotal, pr.CreatedFrom, pr.CreatedTo, pr.UpdatedFrom, pr.UpdatedTo)
	if err != nil {
		return nil, err
	}
	if exporting {
		f.Limit = exportPageSize
		body, cd, err := stream(ctx, s, w, exportOf[api.Lead]{exportAudit: exportAudit{op: "listLeads", targetType: string(kinds.Lead)},
			noun: kinds.Lead.Desc().Path, columns: leadColumns, bom: pr.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.Lead, *records.Cursor, error) {
				f.Cursor = after
				views, _, next, err := s.records.ListLeads(ctx, auth.FromContext(ctx), f)
				return outAll(views, leadOut), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListLeads200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListLeads200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListLeads200TextcsvResponse{Body: body, Headers: h}, nil
	}
	views, total, next, err := s.records.ListLeads(ctx, auth.FromContext(ctx), f)
	if err != nil {
		return nil, err
	}
	items, n, cursor := listed(ctx, s, views, total, next, leadOut)
	return api.ListLeads200JSONResponse{Body: api.LeadList{Items: items, Total: n, NextCursor: cursor}}, nil
}

func customerInput(name, industry, region, address, website, creditLevel, source *string, tags *[]string) records.CustomerInput {
	return records.CustomerInput{Name: name, Industry: industry, Region: region, Address: address, Website: website,
		CreditLevel: creditLevel, Source: source, Tags: tags}
}

// CreateCustomer creates a customer.
func (s *Server) CreateCustomer(ctx context.Context, req api.CreateCustomerRequestObject) (api.CreateCustomerResponseObject, error) {
	b := req.Body
	in := customerInput(&b.Name, b.Industry, b.Region, b.Address, b.Website, b.CreditLevel, b.Source, b.Tags)
	in.PoolID = b.PoolId
	if b.Grade != nil {
		in.Grade = patch.Value(string(*b.Grade))
	}
	if b.CreditLimit != nil {
		m, err := moneyIn("body/creditLimit", *b.CreditLimit)
		if err != nil {
			return nil, err
		}
		in.CreditLimit = patch.Value(m)
	}
	v, err := s.records.CreateCustomer(ctx, auth.FromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, string(kinds.Customer), v.ID.String())
	return api.CreateCustomer201JSONResponse{Body: customerCreated(customerOut(v), v.Placement), Headers: api.CreateCustomer201ResponseHeaders{ETag: etag.Ptr(v.Version), Location: location(kinds.Customer.Desc().Path, v.ID)}}, nil
}

// GetCustomer returns a customer.
func (s *Server) GetCustomer(ctx context.Context, req api.GetCustomerRequestObject) (api.GetCustomerResponseObject, error) {
	v, err := s.records.GetCustomer(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetCustomer200JSONResponse{Body: customerOut(v), Headers: api.GetCustomer200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// UpdateCustomer patches a customer.
func (s *Server) UpdateCustomer(ctx context.Context, req api.UpdateCustomerRequestObject) (api.UpdateCustomerResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := customerInput(b.Name, text(b.Industry), text(b.Region), text(b.Address), text(b.Website), text(b.CreditLevel),
		text(b.Source), tagsField(b.Tags))
	in.Grade = fieldOf(b.Grade, func(g api.Grade) string { return string(g) })
	if in.CreditLimit, err = moneyField("body/creditLimit", b.CreditLimit); err != nil {
		return nil, err
	}
	v, err := s.records.UpdateCustomer(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateCustomer200JSONResponse{Body: customerOut(v), Headers: api.UpdateCustomer200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// UpdateCustomerDealStatus sets or clears 成交.
func (s *Server) UpdateCustomerDealStatus(ctx context.Context, req api.UpdateCustomerDealStatusRequestObject) (api.UpdateCustomerDealStatusResponseObject, error) {
	v, err := s.records.SetDealStatus(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, req.Body.DealStatus)
	if err != nil {
		return nil, err
	}
	return api.UpdateCustomerDealStatus200JSONResponse{Body: customerOut(v), Headers: api.UpdateCustomerDealStatus200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// ListCustomers lists customers, or exports them (see stream).
func (s *Server) ListCustomers(ctx context.Context, req api.ListCustomersRequestObject) (api.ListCustomersResponseObject, error) {
	pr := req.Params
	w, exporting := exportWanted(ctx)
	if exporting {
		pr.Limit, pr.Cursor, pr.IncludeTotal = nil, nil, nil // an export is every row, not a page
	}
	f, err := s.recordFilter(ctx, pr.Limit, pr.Cursor, pr.OwnerId, pr.PoolId, (*string)(pr.Status), pr.Region, pr.Industry, pr.Source, pr.Tag,
		pr.Q, (*string)(pr.Sort), pr.IncludeTotal, pr.CreatedFrom, pr.CreatedTo, pr.UpdatedFrom, pr.UpdatedTo)
	if err != nil {
		return nil, err
	}
	f.DealStatus, f.Grade = pr.DealStatus, (*string)(pr.Grade)
	if exporting {
		f.Limit = exportPageSize
		body, cd, err := stream(ctx, s, w, exportOf[api.Customer]{exportAudit: exportAudit{op: "listCustomers", targetType: string(kinds.Customer)},
			noun: kinds.Customer.Desc().Path, columns: customerColumns, bom: pr.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.Customer, *records.Cursor, error) {
				f.Cursor = after
				views, _, next, err := s.records.ListCustomers(ctx, auth.FromContext(ctx), f)
				return outAll(views, customerOut), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListCustomers200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListCustomers200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListCustomers200TextcsvResponse{Body: body, Headers: h}, nil
	}
	views, total, next, err := s.records.ListCustomers(ctx, auth.FromContext(ctx), f)
	if err != nil {
		return nil, err
	}
	items, n, cursor := listed(ctx, s, views, total, next, customerOut)
	return api.ListCustomers200JSONResponse{Body: api.CustomerList{Items: items, Total: n, NextCursor: cursor}}, nil
}

// CheckDuplicates answers "who already has this?".
func (s *Server) CheckDuplicates(ctx context.Context, req api.CheckDuplicatesRequestObject) (api.CheckDuplicatesResponseObject, error) {
	pr := req.Params
	get := func(v *string) string {
		if v == nil {
			return ""
		}
		return *v
	}
	matches, err := s.records.CheckDuplicates(ctx, auth.FromContext(ctx), get(pr.Name), get(pr.Phone), get(pr.Email))
	if err != nil {
		return nil, err
	}
	out := api.DuplicateMatches{Matches: make([]api.DuplicateMatch, len(matches))}
	for i, m := range matches {
		out.Matches[i] = api.DuplicateMatch{Kind: api.DuplicateMatchKind(m.Kind), Id: m.ID, CustomerId: m.CustomerID,
			OwnerName: nullOf(m.OwnerName), PoolName: nullOf(m.PoolName), MatchedOn: api.DuplicateMatchMatchedOn(m.MatchedOn)}
	}
	return api.CheckDuplicates200JSONResponse{Body: out}, nil
}
