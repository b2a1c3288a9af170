package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/etag"
)

func documentTemplateOut(t documents.Template) api.DocumentTemplate {
	return api.DocumentTemplate{Kind: api.DocumentKind(t.Kind), Name: t.Name, Body: t.Body, IsDefault: t.IsDefault,
		CompanyName: t.CompanyName, CompanyAddress: t.CompanyAddress, CompanyPhone: t.CompanyPhone, CompanyTaxId: t.CompanyTaxID,
		Version: int32(t.Version), UpdatedAt: nullTime(t.UpdatedAt)}
}

// ListDocumentTemplates lists every document kind's template.
func (s *Server) ListDocumentTemplates(ctx context.Context, _ api.ListDocumentTemplatesRequestObject) (api.ListDocumentTemplatesResponseObject, error) {
	rows, err := s.documents.List(ctx)
	if err != nil {
		return nil, err
	}
	out := api.DocumentTemplateList{Items: make([]api.DocumentTemplate, len(rows))}
	for i, t := range rows {
		out.Items[i] = documentTemplateOut(t)
	}
	return api.ListDocumentTemplates200JSONResponse{Body: out}, nil
}

// GetDocumentTemplate returns a kind's template.
func (s *Server) GetDocumentTemplate(ctx context.Context, req api.GetDocumentTemplateRequestObject) (api.GetDocumentTemplateResponseObject, error) {
	t, err := s.documents.Get(ctx, string(req.Kind))
	if err != nil {
		return nil, err
	}
	return api.GetDocumentTemplate200JSONResponse{Body: documentTemplateOut(t),
		Headers: api.GetDocumentTemplate200ResponseHeaders{ETag: etag.Ptr(t.Version)}}, nil
}

// UpdateDocumentTemplate patches a kind's template (admins).
func (s *Server) UpdateDocumentTemplate(ctx context.Context, req api.UpdateDocumentTemplateRequestObject) (api.UpdateDocumentTemplateResponseObject, error) {
	// The target is a kind, not an id: the audit row names it in its detail.
	noteDetail(ctx, "kind="+string(req.Kind))
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	// null clears a letterhead field: it is "" when unset.
	in := documents.Patch{Name: b.Name, Body: b.Body, CompanyName: text(b.CompanyName), CompanyAddress: text(b.CompanyAddress),
		CompanyPhone: text(b.CompanyPhone), CompanyTaxID: text(b.CompanyTaxId), Reset: b.Reset != nil && *b.Reset}
	t, err := s.documents.Update(ctx, auth.FromContext(ctx), string(req.Kind), req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateDocumentTemplate200JSONResponse{Body: documentTemplateOut(t),
		Headers: api.UpdateDocumentTemplate200ResponseHeaders{ETag: etag.Ptr(t.Version)}}, nil
}
