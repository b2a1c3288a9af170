package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/records"
)

func contactOut(v *records.ContactView) api.Contact {
	c := v.Contact
	return api.Contact{
		Id: c.ID, CustomerId: c.CustomerID, Name: c.Name, Title: strOrNil(c.Title), Phone: strOrNil(c.Phone),
		Email: strOrNil(c.Email), Wechat: strOrNil(c.Wechat), IsPrimary: c.IsPrimary, Notes: strOrNil(c.Notes),
		CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC(),
	}
}

// CreateContact adds a contact to a customer.
func (s *Server) CreateContact(ctx context.Context, req api.CreateContactRequestObject) (api.CreateContactResponseObject, error) {
	b := req.Body
	in := records.ContactInput{Name: &b.Name, Title: b.Title, Phone: b.Phone, Wechat: b.Wechat, Notes: b.Notes, IsPrimary: b.IsPrimary}
	if b.Email != nil {
		e := string(*b.Email)
		in.Email = &e
	}
	v, err := s.records.CreateContact(ctx, auth.FromContext(ctx), req.Id, in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "contact", v.ID.String())
	return api.CreateContact201JSONResponse{Body: contactOut(v), Headers: api.CreateContact201ResponseHeaders{ETag: etag.Ptr(v.Version), Location: location("contacts", v.ID)}}, nil
}

// GetContact returns a contact.
func (s *Server) GetContact(ctx context.Context, req api.GetContactRequestObject) (api.GetContactResponseObject, error) {
	v, err := s.records.GetContact(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetContact200JSONResponse{Body: contactOut(v), Headers: api.GetContact200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// UpdateContact patches a contact.
func (s *Server) UpdateContact(ctx context.Context, req api.UpdateContactRequestObject) (api.UpdateContactResponseObject, error) {
	noteTarget(ctx, "contact", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := records.ContactInput{Name: b.Name, Title: text(b.Title), Phone: text(b.Phone), Email: text(b.Email),
		Wechat: text(b.Wechat), Notes: text(b.Notes), IsPrimary: b.IsPrimary}
	v, err := s.records.UpdateContact(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateContact200JSONResponse{Body: contactOut(v), Headers: api.UpdateContact200ResponseHeaders{ETag: etag.Ptr(v.Version)}}, nil
}

// DeleteContact deletes a contact.
func (s *Server) DeleteContact(ctx context.Context, req api.DeleteContactRequestObject) (api.DeleteContactResponseObject, error) {
	noteTarget(ctx, "contact", req.Id.String())
	if err := s.records.DeleteContact(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch); err != nil {
		return nil, err
	}
	return api.DeleteContact204Response{}, nil
}

// ListContacts lists a customer's contacts, or exports them (see stream).
func (s *Server) ListContacts(ctx context.Context, req api.ListContactsRequestObject) (api.ListContactsResponseObject, error) {
	if w, ok := exportWanted(ctx); ok {
		body, cd, err := stream(ctx, s, w, exportOf[api.Contact]{exportAudit: exportAudit{op: "listContacts", targetType: string(kinds.Customer), targetID: req.Id.String()},
			noun: "contacts", columns: contactColumns, bom: req.Params.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.Contact, *records.Cursor, error) {
				views, next, err := s.records.ListContacts(ctx, auth.FromContext(ctx), req.Id, after, exportPageSize)
				return outAll(views, contactOut), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListContacts200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListContacts200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListContacts200TextcsvResponse{Body: body, Headers: h}, nil
	}
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	views, next, err := s.records.ListContacts(ctx, auth.FromContext(ctx), req.Id, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ContactList{Items: make([]api.Contact, len(views))}
	for i, v := range views {
		out.Items[i] = contactOut(v)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListContacts200JSONResponse{Body: out}, nil
}

func followUpOut(f *ent.FollowUp) api.FollowUp {
	return api.FollowUp{
		Id: f.ID, SubjectType: api.SubjectType(f.SubjectType), SubjectId: f.SubjectID, AuthorId: f.AuthorID,
		Channel: api.Channel(f.Channel), Content: f.Content, OccurredAt: f.OccurredAt.UTC(), NextAt: nullTime(f.NextAt),
		CreatedAt: f.CreatedAt.UTC(),
	}
}

// CreateFollowUp logs a follow-up.
func (s *Server) CreateFollowUp(ctx context.Context, req api.CreateFollowUpRequestObject) (api.CreateFollowUpResponseObject, error) {
	b := req.Body
	f, err := s.records.CreateFollowUp(ctx, auth.FromContext(ctx), records.FollowUpInput{
		SubjectType: string(b.SubjectType), SubjectID: b.SubjectId, Channel: string(b.Channel), Content: b.Content,
		OccurredAt: b.OccurredAt, NextAt: b.NextAt,
	})
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "followUp", f.ID.String())
	return api.CreateFollowUp201JSONResponse{Body: followUpOut(f)}, nil
}

// ListFollowUps lists follow-ups, newest first, or exports them (see
// stream).
func (s *Server) ListFollowUps(ctx context.Context, req api.ListFollowUpsRequestObject) (api.ListFollowUpsResponseObject, error) {
	pr := req.Params
	f := records.FollowUpFilter{SubjectType: (*string)(pr.SubjectType), SubjectID: pr.SubjectId, AuthorID: pr.AuthorId,
		From: pr.From, To: pr.To, Limit: page.Size(pr.Limit)}
	if w, ok := exportWanted(ctx); ok {
		f.Limit = exportPageSize
		body, cd, err := stream(ctx, s, w, exportOf[api.FollowUp]{exportAudit: exportAudit{op: "listFollowUps", targetType: "followUp"},
			noun: "follow-ups", columns: followUpColumns, bom: pr.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.FollowUp, *records.Cursor, error) {
				f.After = after
				list, next, err := s.records.ListFollowUps(ctx, auth.FromContext(ctx), f)
				return outAll(list, followUpOut), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListFollowUps200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListFollowUps200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListFollowUps200TextcsvResponse{Body: body, Headers: h}, nil
	}
	c, err := s.cursorIn(ctx, pr.Cursor)
	if err != nil {
		return nil, err
	}
	f.After = c
	list, next, err := s.records.ListFollowUps(ctx, auth.FromContext(ctx), f)
	if err != nil {
		return nil, err
	}
	out := api.FollowUpList{Items: make([]api.FollowUp, len(list))}
	for i, fu := range list {
		out.Items[i] = followUpOut(fu)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListFollowUps200JSONResponse{Body: out}, nil
}
