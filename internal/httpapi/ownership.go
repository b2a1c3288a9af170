package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
)

// Each ownership handler calls one pool-engine operation and renders the
// record as it now is. ownership does that once for any kind; the
// handlers the contract names per kind (claimLead, claimCustomer, …) only
// unwrap the request and wrap the answer.

func (s *Server) leadNow(ctx context.Context, id uuid.UUID, after *pool.After) (api.Lead, *string, error) {
	v, err := s.records.LeadAfter(ctx, auth.FromContext(ctx), id, (*records.After)(after))
	if err != nil {
		return api.Lead{}, nil, err
	}
	return leadOut(v), etag.Ptr(v.Version), nil
}

func (s *Server) customerNow(ctx context.Context, id uuid.UUID, after *pool.After) (api.Customer, *string, error) {
	v, err := s.records.CustomerAfter(ctx, auth.FromContext(ctx), id, (*records.After)(after))
	if err != nil {
		return api.Customer{}, nil, err
	}
	return customerOut(v), etag.Ptr(v.Version), nil
}

func optReason(r *string) string {
	if r == nil {
		return ""
	}
	return *r
}

func batchOut(items []pool.BatchItem) api.BatchClaimResult {
	out := api.BatchClaimResult{}
	for _, it := range items {
		var code *string
		if it.Code != "" {
			c := it.Code
			code = &c
		}
		out.Results = append(out.Results, struct {
			Code *string `json:"code,omitempty"`
			Id   api.Id  `json:"id"`
			Ok   bool    `json:"ok"`
		}{Code: code, Id: it.ID, Ok: it.OK})
	}
	return out
}

// ownership runs the pool engine's operations on records of one kind and
// renders the record afterwards with now.
type ownership[A any] struct {
	s    *Server
	kind kinds.Kind
	now  func(ctx context.Context, id uuid.UUID, after *pool.After) (A, *string, error)
}

func (s *Server) leadOps() ownership[api.Lead] {
	return ownership[api.Lead]{s: s, kind: kinds.Lead, now: s.leadNow}
}

func (s *Server) customerOps() ownership[api.Customer] {
	return ownership[api.Customer]{s: s, kind: kinds.Customer, now: s.customerNow}
}

// render answers an operation's outcome: its error, or the record now.
func (o ownership[A]) render(ctx context.Context, id uuid.UUID, after *pool.After, err error) (A, *string, error) {
	if err != nil {
		var zero A
		return zero, nil, err
	}
	return o.now(ctx, id, after)
}

// claim takes id, or files a claim request (req) where the pool needs
// approval.
func (o ownership[A]) claim(ctx context.Context, id uuid.UUID) (rec A, tag *string, req *api.ClaimRequest, err error) {
	res, err := o.s.pools.Claim(ctx, auth.FromContext(ctx), o.kind, id)
	if err == nil && res.Request != nil {
		out := claimRequestOut(res.Request)
		return rec, nil, &out, nil
	}
	var after *pool.After
	if res != nil {
		after = res.After
	}
	rec, tag, err = o.render(ctx, id, after, err)
	return rec, tag, nil, err
}

func (o ownership[A]) batchClaim(ctx context.Context, ids []uuid.UUID) (api.BatchClaimResult, error) {
	items, err := o.s.pools.BatchClaim(ctx, auth.FromContext(ctx), o.kind, ids)
	if err != nil {
		return api.BatchClaimResult{}, err
	}
	return batchOut(items), nil
}

func (o ownership[A]) giveBack(ctx context.Context, id uuid.UUID, reason string) (A, *string, error) {
	return o.render(ctx, id, nil, o.s.pools.Return(ctx, auth.FromContext(ctx), o.kind, id, reason))
}

func (o ownership[A]) assign(ctx context.Context, id, owner uuid.UUID, reason *string) (A, *string, error) {
	after, err := o.s.pools.Assign(ctx, auth.FromContext(ctx), o.kind, id, owner, optReason(reason))
	return o.render(ctx, id, after, err)
}

func (o ownership[A]) transfer(ctx context.Context, id, owner uuid.UUID, reason *string, cascade bool) (A, *string, error) {
	after, err := o.s.pools.Transfer(ctx, auth.FromContext(ctx), o.kind, id, owner, optReason(reason), cascade)
	return o.render(ctx, id, after, err)
}

func (o ownership[A]) freeze(ctx context.Context, id uuid.UUID, body *api.FreezeRequest) (A, *string, error) {
	after, err := o.s.pools.Freeze(ctx, auth.FromContext(ctx), o.kind, id, until(body))
	return o.render(ctx, id, after, err)
}

func (o ownership[A]) unfreeze(ctx context.Context, id uuid.UUID) (A, *string, error) {
	after, err := o.s.pools.Unfreeze(ctx, auth.FromContext(ctx), o.kind, id)
	return o.render(ctx, id, after, err)
}

func (o ownership[A]) invalidate(ctx context.Context, id uuid.UUID, reason string) (A, *string, error) {
	return o.render(ctx, id, nil, o.s.pools.Invalidate(ctx, auth.FromContext(ctx), o.kind, id, reason))
}

func (o ownership[A]) restore(ctx context.Context, id uuid.UUID) (A, *string, error) {
	return o.render(ctx, id, nil, o.s.pools.Restore(ctx, auth.FromContext(ctx), o.kind, id))
}

func until(b *api.FreezeRequest) *time.Time {
	if b == nil {
		return nil
	}
	return b.Until
}

// ClaimLead claims a lead (or files a claim request).
func (s *Server) ClaimLead(ctx context.Context, req api.ClaimLeadRequestObject) (api.ClaimLeadResponseObject, error) {
	rec, tag, filed, err := s.leadOps().claim(ctx, req.Id)
	switch {
	case err != nil:
		return nil, err
	case filed != nil:
		return api.ClaimLead202JSONResponse{Body: *filed}, nil
	}
	return api.ClaimLead200JSONResponse{Body: rec, Headers: api.ClaimLead200ResponseHeaders{ETag: tag}}, nil
}

// BatchClaimLeads claims several leads, each on its own.
func (s *Server) BatchClaimLeads(ctx context.Context, req api.BatchClaimLeadsRequestObject) (api.BatchClaimLeadsResponseObject, error) {
	out, err := s.leadOps().batchClaim(ctx, req.Body.Ids)
	if err != nil {
		return nil, err
	}
	return api.BatchClaimLeads200JSONResponse{Body: out}, nil
}

// ReturnLead returns a lead to its pool.
func (s *Server) ReturnLead(ctx context.Context, req api.ReturnLeadRequestObject) (api.ReturnLeadResponseObject, error) {
	rec, tag, err := s.leadOps().giveBack(ctx, req.Id, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.ReturnLead200JSONResponse{Body: rec, Headers: api.ReturnLead200ResponseHeaders{ETag: tag}}, nil
}

// AssignLead assigns a pooled lead.
func (s *Server) AssignLead(ctx context.Context, req api.AssignLeadRequestObject) (api.AssignLeadResponseObject, error) {
	rec, tag, err := s.leadOps().assign(ctx, req.Id, req.Body.OwnerId, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.AssignLead200JSONResponse{Body: rec, Headers: api.AssignLead200ResponseHeaders{ETag: tag}}, nil
}

// TransferLead transfers a lead.
func (s *Server) TransferLead(ctx context.Context, req api.TransferLeadRequestObject) (api.TransferLeadResponseObject, error) {
	rec, tag, err := s.leadOps().transfer(ctx, req.Id, req.Body.OwnerId, req.Body.Reason, false)
	if err != nil {
		return nil, err
	}
	return api.TransferLead200JSONResponse{Body: rec, Headers: api.TransferLead200ResponseHeaders{ETag: tag}}, nil
}

// FreezeLead freezes a lead.
func (s *Server) FreezeLead(ctx context.Context, req api.FreezeLeadRequestObject) (api.FreezeLeadResponseObject, error) {
	rec, tag, err := s.leadOps().freeze(ctx, req.Id, req.Body)
	if err != nil {
		return nil, err
	}
	return api.FreezeLead200JSONResponse{Body: rec, Headers: api.FreezeLead200ResponseHeaders{ETag: tag}}, nil
}

// UnfreezeLead unfreezes a lead.
func (s *Server) UnfreezeLead(ctx context.Context, req api.UnfreezeLeadRequestObject) (api.UnfreezeLeadResponseObject, error) {
	rec, tag, err := s.leadOps().unfreeze(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.UnfreezeLead200JSONResponse{Body: rec, Headers: api.UnfreezeLead200ResponseHeaders{ETag: tag}}, nil
}

// InvalidateLead marks a lead invalid.
func (s *Server) InvalidateLead(ctx context.Context, req api.InvalidateLeadRequestObject) (api.InvalidateLeadResponseObject, error) {
	rec, tag, err := s.leadOps().invalidate(ctx, req.Id, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.InvalidateLead200JSONResponse{Body: rec, Headers: api.InvalidateLead200ResponseHeaders{ETag: tag}}, nil
}

// RestoreLead restores an invalid lead to its pool.
func (s *Server) RestoreLead(ctx context.Context, req api.RestoreLeadRequestObject) (api.RestoreLeadResponseObject, error) {
	rec, tag, err := s.leadOps().restore(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.RestoreLead200JSONResponse{Body: rec, Headers: api.RestoreLead200ResponseHeaders{ETag: tag}}, nil
}

// ConvertLead converts a lead into a customer.
func (s *Server) ConvertLead(ctx context.Context, req api.ConvertLeadRequestObject) (api.ConvertLeadResponseObject, error) {
	name := ""
	if req.Body != nil && req.Body.CustomerName != nil {
		name = *req.Body.CustomerName
	}
	id, err := s.convert.Convert(ctx, auth.FromContext(ctx), req.Id, name)
	if err != nil {
		return nil, err
	}
	noteDetail(ctx, "customer="+id.String())
	c, tag, err := s.customerNow(ctx, id, nil)
	if err != nil {
		return nil, err
	}
	return api.ConvertLead201JSONResponse{Body: c, Headers: api.ConvertLead201ResponseHeaders{ETag: tag, Location: location("customers", id)}}, nil
}

// ClaimCustomer claims a customer (or files a claim request).
func (s *Server) ClaimCustomer(ctx context.Context, req api.ClaimCustomerRequestObject) (api.ClaimCustomerResponseObject, error) {
	rec, tag, filed, err := s.customerOps().claim(ctx, req.Id)
	switch {
	case err != nil:
		return nil, err
	case filed != nil:
		return api.ClaimCustomer202JSONResponse{Body: *filed}, nil
	}
	return api.ClaimCustomer200JSONResponse{Body: rec, Headers: api.ClaimCustomer200ResponseHeaders{ETag: tag}}, nil
}

// BatchClaimCustomers claims several customers, each on its own.
func (s *Server) BatchClaimCustomers(ctx context.Context, req api.BatchClaimCustomersRequestObject) (api.BatchClaimCustomersResponseObject, error) {
	out, err := s.customerOps().batchClaim(ctx, req.Body.Ids)
	if err != nil {
		return nil, err
	}
	return api.BatchClaimCustomers200JSONResponse{Body: out}, nil
}

// ReturnCustomer returns a customer to its pool.
func (s *Server) ReturnCustomer(ctx context.Context, req api.ReturnCustomerRequestObject) (api.ReturnCustomerResponseObject, error) {
	rec, tag, err := s.customerOps().giveBack(ctx, req.Id, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.ReturnCustomer200JSONResponse{Body: rec, Headers: api.ReturnCustomer200ResponseHeaders{ETag: tag}}, nil
}

// AssignCustomer assigns a pooled customer.
func (s *Server) AssignCustomer(ctx context.Context, req api.AssignCustomerRequestObject) (api.AssignCustomerResponseObject, error) {
	rec, tag, err := s.customerOps().assign(ctx, req.Id, req.Body.OwnerId, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.AssignCustomer200JSONResponse{Body: rec, Headers: api.AssignCustomer200ResponseHeaders{ETag: tag}}, nil
}

// TransferCustomer transfers a customer (and, unless cascade is false, what
// hangs off it).
func (s *Server) TransferCustomer(ctx context.Context, req api.TransferCustomerRequestObject) (api.TransferCustomerResponseObject, error) {
	cascade := req.Body.Cascade == nil || *req.Body.Cascade
	rec, tag, err := s.customerOps().transfer(ctx, req.Id, req.Body.OwnerId, req.Body.Reason, cascade)
	if err != nil {
		return nil, err
	}
	return api.TransferCustomer200JSONResponse{Body: rec, Headers: api.TransferCustomer200ResponseHeaders{ETag: tag}}, nil
}

// FreezeCustomer freezes a customer.
func (s *Server) FreezeCustomer(ctx context.Context, req api.FreezeCustomerRequestObject) (api.FreezeCustomerResponseObject, error) {
	rec, tag, err := s.customerOps().freeze(ctx, req.Id, req.Body)
	if err != nil {
		return nil, err
	}
	return api.FreezeCustomer200JSONResponse{Body: rec, Headers: api.FreezeCustomer200ResponseHeaders{ETag: tag}}, nil
}

// UnfreezeCustomer unfreezes a customer.
func (s *Server) UnfreezeCustomer(ctx context.Context, req api.UnfreezeCustomerRequestObject) (api.UnfreezeCustomerResponseObject, error) {
	rec, tag, err := s.customerOps().unfreeze(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.UnfreezeCustomer200JSONResponse{Body: rec, Headers: api.UnfreezeCustomer200ResponseHeaders{ETag: tag}}, nil
}

// InvalidateCustomer marks a customer invalid.
func (s *Server) InvalidateCustomer(ctx context.Context, req api.InvalidateCustomerRequestObject) (api.InvalidateCustomerResponseObject, error) {
	rec, tag, err := s.customerOps().invalidate(ctx, req.Id, req.Body.Reason)
	if err != nil {
		return nil, err
	}
	return api.InvalidateCustomer200JSONResponse{Body: rec, Headers: api.InvalidateCustomer200ResponseHeaders{ETag: tag}}, nil
}

// RestoreCustomer restores an invalid customer to its pool.
func (s *Server) RestoreCustomer(ctx context.Context, req api.RestoreCustomerRequestObject) (api.RestoreCustomerResponseObject, error) {
	rec, tag, err := s.customerOps().restore(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.RestoreCustomer200JSONResponse{Body: rec, Headers: api.RestoreCustomer200ResponseHeaders{ETag: tag}}, nil
}
