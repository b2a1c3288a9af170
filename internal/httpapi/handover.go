package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/handover"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
)

func handoverOut(h *ent.Handover) api.Handover {
	out := api.Handover{Id: h.ID, FromUserId: h.FromUserID, ToUserId: h.ToUserID, ToPoolId: h.ToPoolID,
		Kinds: make([]api.RecordKind, len(h.Kinds)), Cascade: h.Cascade, Reason: h.Reason,
		Status: api.HandoverStatus(h.Status), Overflow: make([]api.HandoverOverflow, len(h.Overflow)),
		CreatedAt: h.CreatedAt.UTC()}
	for i, k := range h.Kinds {
		out.Kinds[i] = api.RecordKind(k)
	}
	for k, c := range h.Counts {
		n := &api.HandoverCount{Moved: int32(c.Moved), Overflow: int32(c.Overflow)}
		switch kinds.Kind(k) {
		case kinds.Lead:
			out.Counts.Lead = n
		case kinds.Customer:
			out.Counts.Customer = n
		}
	}
	for i, o := range h.Overflow {
		out.Overflow[i] = api.HandoverOverflow{Kind: api.RecordKind(o.Kind), RecordId: o.RecordID, PoolId: o.PoolID}
	}
	if h.Error != "" {
		e := h.Error
		out.Error = &e
	}
	if h.FinishedAt != nil {
		t := h.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	return out
}

// kindsIn maps the contract's record kinds; the spec's enum admits only
// known kinds.
func kindsIn(in *[]api.RecordKind) ([]kinds.Kind, error) {
	if in == nil {
		return nil, nil
	}
	out := make([]kinds.Kind, 0, len(*in))
	for _, k := range *in {
		kind, err := kinds.Parse(string(k))
		if err != nil {
			return nil, err
		}
		out = append(out, kind)
	}
	return out, nil
}

// leaveHandoverIn maps updateUser's handover member.
func leaveHandoverIn(b *api.HandoverRequest) *org.LeaveHandover {
	if b == nil {
		return nil
	}
	out := &org.LeaveHandover{ToUserID: b.ToUserId, ToPoolID: b.ToPoolId, Cascade: b.Cascade, Reason: string(b.Reason)}
	if b.Kinds != nil {
		for _, k := range *b.Kinds {
			out.Kinds = append(out.Kinds, string(k))
		}
	}
	return out
}

// HandoverUser queues a leaver handover (离职交接) of everything a user owns.
func (s *Server) HandoverUser(ctx context.Context, req api.HandoverUserRequestObject) (api.HandoverUserResponseObject, error) {
	b := req.Body
	ks, err := kindsIn(b.Kinds)
	if err != nil {
		return nil, err
	}
	in := handover.Request{ToUserID: b.ToUserId, ToPoolID: b.ToPoolId, Kinds: ks,
		Cascade: b.Cascade == nil || *b.Cascade, Reason: string(b.Reason)}
	h, err := s.handover.Start(ctx, auth.FromContext(ctx), req.Id, in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "handover", h.ID.String())
	return api.HandoverUser202JSONResponse{Body: handoverOut(h), Headers: api.HandoverUser202ResponseHeaders{Location: location("handovers", h.ID)}}, nil
}

// GetHandover returns a handover run and its progress.
func (s *Server) GetHandover(ctx context.Context, req api.GetHandoverRequestObject) (api.GetHandoverResponseObject, error) {
	h, err := s.handover.Get(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetHandover200JSONResponse{Body: handoverOut(h)}, nil
}
