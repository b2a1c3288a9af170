package httpapi

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/pool"
)

// Each ownership handler calls one pool-engine operation and renders the
// record as it now is.

func (s *Server) leadNow(ctx context.Context, id uuid.UUID, after *pool.After) (api.Lead, *string, error) {
	v, err := s.records.LeadAfter(ctx, auth.FromContext(ctx), id, after)
	if err != nil {
		return api.Lead{}, nil, err
	}
	return leadOut(v), etag.Ptr(v.Version), nil
}

func (s *Server) customerNow(ctx context.Context, id uuid.UUID, after *pool.After) (api.Customer, *string, error) {
	v, err := s.records.CustomerAfter(ctx, auth.FromContext(ctx), id, after)
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

// ClaimLead claims a lead (or files a claim request).
func (s *Server) ClaimLead(ctx context.Context, req api.ClaimLeadRequestObject) (api.ClaimLeadResponseObject, error) {
	res, err := s.pools.Claim(ctx, auth.FromContext(ctx), "lead", req.Id)
	if err != nil {
		return nil, err
	}
	if res.Request != nil {
		return api.ClaimLead202JSONResponse{Body: claimRequestOut(res.Request)}, nil
	}
	l, tag, err := s.leadNow(ctx, req.Id, res.After)
	if err != nil {
		return nil, err
	}
	return api.ClaimLead200JSONResponse{Body: l, Headers: api.ClaimLead200ResponseHeaders{ETag: tag}}, nil
}

// BatchClaimLeads claims several leads, each on its own.
func (s *Server) BatchClaimLeads(ctx context.Context, req api.BatchClaimLeadsRequestObject) (api.BatchClaimLeadsResponseObject, error) {
	items, err := s.pools.BatchClaim(ctx, auth.FromContext(ctx), "lead", req.Body.Ids)
	if err != nil {
		return nil, err
	}
	return api.BatchClaimLeads200JSONResponse{Body: batchOut(items)}, nil
}

// ReturnLead returns a lead to its pool.
func (s *Server) ReturnLead(ctx context.Context, req api.ReturnLeadRequestObject) (api.ReturnLeadResponseObject, error) {
	if err := s.pools.Return(ctx, auth.FromContext(ctx), "lead", req.Id, req.Body.Reason); err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, nil)
	if err != nil {
		return nil, err
	}
	return api.ReturnLead200JSONResponse{Body: l, Headers: api.ReturnLead200ResponseHeaders{ETag: tag}}, nil
}

// AssignLead assigns a pooled lead.
func (s *Server) AssignLead(ctx context.Context, req api.AssignLeadRequestObject) (api.AssignLeadResponseObject, error) {
	after, err := s.pools.Assign(ctx, auth.FromContext(ctx), "lead", req.Id, req.Body.OwnerId, optReason(req.Body.Reason))
	if err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.AssignLead200JSONResponse{Body: l, Headers: api.AssignLead200ResponseHeaders{ETag: tag}}, nil
}

// TransferLead transfers a lead.
func (s *Server) TransferLead(ctx context.Context, req api.TransferLeadRequestObject) (api.TransferLeadResponseObject, error) {
	after, err := s.pools.Transfer(ctx, auth.FromContext(ctx), "lead", req.Id, req.Body.OwnerId, optReason(req.Body.Reason), false)
	if err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.TransferLead200JSONResponse{Body: l, Headers: api.TransferLead200ResponseHeaders{ETag: tag}}, nil
}

func until(b *api.FreezeRequest) *time.Time {
	if b == nil {
		return nil
	}
	return b.Until
}

// FreezeLead freezes a lead.
func (s *Server) FreezeLead(ctx context.Context, req api.FreezeLeadRequestObject) (api.FreezeLeadResponseObject, error) {
	after, err := s.pools.Freeze(ctx, auth.FromContext(ctx), "lead", req.Id, until(req.Body))
	if err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.FreezeLead200JSONResponse{Body: l, Headers: api.FreezeLead200ResponseHeaders{ETag: tag}}, nil
}

// UnfreezeLead unfreezes a lead.
func (s *Server) UnfreezeLead(ctx context.Context, req api.UnfreezeLeadRequestObject) (api.UnfreezeLeadResponseObject, error) {
	after, err := s.pools.Unfreeze(ctx, auth.FromContext(ctx), "lead", req.Id)
	if err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.UnfreezeLead200JSONResponse{Body: l, Headers: api.UnfreezeLead200ResponseHeaders{ETag: tag}}, nil
}

// InvalidateLead marks a lead invalid.
func (s *Server) InvalidateLead(ctx context.Context, req api.InvalidateLeadRequestObject) (api.InvalidateLeadResponseObject, error) {
	if err := s.pools.Invalidate(ctx, auth.FromContext(ctx), "lead", req.Id, req.Body.Reason); err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, nil)
	if err != nil {
		return nil, err
	}
	return api.InvalidateLead200JSONResponse{Body: l, Headers: api.InvalidateLead200ResponseHeaders{ETag: tag}}, nil
}

// RestoreLead restores an invalid lead to its pool.
func (s *Server) RestoreLead(ctx context.Context, req api.RestoreLeadRequestObject) (api.RestoreLeadResponseObject, error) {
	if err := s.pools.Restore(ctx, auth.FromContext(ctx), "lead", req.Id); err != nil {
		return nil, err
	}
	l, tag, err := s.leadNow(ctx, req.Id, nil)
	if err != nil {
		return nil, err
	}
	return api.RestoreLead200JSONResponse{Body: l, Headers: api.RestoreLead200ResponseHeaders{ETag: tag}}, nil
}

// ConvertLead converts a lead into a customer.
func (s *Server) ConvertLead(ctx context.Context, req api.ConvertLeadRequestObject) (api.ConvertLeadResponseObject, error) {
	name := ""
	if req.Body != nil && req.Body.CustomerName != nil {
		name = *req.Body.CustomerName
	}
	id, err := s.pools.Convert(ctx, auth.FromContext(ctx), req.Id, name)
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
	res, err := s.pools.Claim(ctx, auth.FromContext(ctx), "customer", req.Id)
	if err != nil {
		return nil, err
	}
	if res.Request != nil {
		return api.ClaimCustomer202JSONResponse{Body: claimRequestOut(res.Request)}, nil
	}
	c, tag, err := s.customerNow(ctx, req.Id, res.After)
	if err != nil {
		return nil, err
	}
	return api.ClaimCustomer200JSONResponse{Body: c, Headers: api.ClaimCustomer200ResponseHeaders{ETag: tag}}, nil
}

// BatchClaimCustomers claims several customers, each on its own.
func (s *Server) BatchClaimCustomers(ctx context.Context, req api.BatchClaimCustomersRequestObject) (api.BatchClaimCustomersResponseObject, error) {
	items, err := s.pools.BatchClaim(ctx, auth.FromContext(ctx), "customer", req.Body.Ids)
	if err != nil {
		return nil, err
	}
	return api.BatchClaimCustomers200JSONResponse{Body: batchOut(items)}, nil
}

// ReturnCustomer returns a customer to its pool.
func (s *Server) ReturnCustomer(ctx context.Context, req api.ReturnCustomerRequestObject) (api.ReturnCustomerResponseObject, error) {
	if err := s.pools.Return(ctx, auth.FromContext(ctx), "customer", req.Id, req.Body.Reason); err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, nil)
	if err != nil {
		return nil, err
	}
	return api.ReturnCustomer200JSONResponse{Body: c, Headers: api.ReturnCustomer200ResponseHeaders{ETag: tag}}, nil
}

// AssignCustomer assigns a pooled customer.
func (s *Server) AssignCustomer(ctx context.Context, req api.AssignCustomerRequestObject) (api.AssignCustomerResponseObject, error) {
	after, err := s.pools.Assign(ctx, auth.FromContext(ctx), "customer", req.Id, req.Body.OwnerId, optReason(req.Body.Reason))
	if err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.AssignCustomer200JSONResponse{Body: c, Headers: api.AssignCustomer200ResponseHeaders{ETag: tag}}, nil
}

// TransferCustomer transfers a customer (and, unless cascade is false, what
// hangs off it).
func (s *Server) TransferCustomer(ctx context.Context, req api.TransferCustomerRequestObject) (api.TransferCustomerResponseObject, error) {
	cascade := req.Body.Cascade == nil || *req.Body.Cascade
	after, err := s.pools.Transfer(ctx, auth.FromContext(ctx), "customer", req.Id, req.Body.OwnerId, optReason(req.Body.Reason), cascade)
	if err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.TransferCustomer200JSONResponse{Body: c, Headers: api.TransferCustomer200ResponseHeaders{ETag: tag}}, nil
}

// FreezeCustomer freezes a customer.
func (s *Server) FreezeCustomer(ctx context.Context, req api.FreezeCustomerRequestObject) (api.FreezeCustomerResponseObject, error) {
	after, err := s.pools.Freeze(ctx, auth.FromContext(ctx), "customer", req.Id, until(req.Body))
	if err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.FreezeCustomer200JSONResponse{Body: c, Headers: api.FreezeCustomer200ResponseHeaders{ETag: tag}}, nil
}

// UnfreezeCustomer unfreezes a customer.
func (s *Server) UnfreezeCustomer(ctx context.Context, req api.UnfreezeCustomerRequestObject) (api.UnfreezeCustomerResponseObject, error) {
	after, err := s.pools.Unfreeze(ctx, auth.FromContext(ctx), "customer", req.Id)
	if err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, after)
	if err != nil {
		return nil, err
	}
	return api.UnfreezeCustomer200JSONResponse{Body: c, Headers: api.UnfreezeCustomer200ResponseHeaders{ETag: tag}}, nil
}

// InvalidateCustomer marks a customer invalid.
func (s *Server) InvalidateCustomer(ctx context.Context, req api.InvalidateCustomerRequestObject) (api.InvalidateCustomerResponseObject, error) {
	if err := s.pools.Invalidate(ctx, auth.FromContext(ctx), "customer", req.Id, req.Body.Reason); err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, nil)
	if err != nil {
		return nil, err
	}
	return api.InvalidateCustomer200JSONResponse{Body: c, Headers: api.InvalidateCustomer200ResponseHeaders{ETag: tag}}, nil
}

// RestoreCustomer restores an invalid customer to its pool.
func (s *Server) RestoreCustomer(ctx context.Context, req api.RestoreCustomerRequestObject) (api.RestoreCustomerResponseObject, error) {
	if err := s.pools.Restore(ctx, auth.FromContext(ctx), "customer", req.Id); err != nil {
		return nil, err
	}
	c, tag, err := s.customerNow(ctx, req.Id, nil)
	if err != nil {
		return nil, err
	}
	return api.RestoreCustomer200JSONResponse{Body: c, Headers: api.RestoreCustomer200ResponseHeaders{ETag: tag}}, nil
}
