package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/tags"
)

func tagOut(t *ent.Tag) api.Tag {
	return api.Tag{Id: t.ID, Name: t.Name, Color: t.Color, Description: t.Description,
		CreatedAt: t.CreatedAt.UTC(), UpdatedAt: t.UpdatedAt.UTC()}
}

// CreateTag registers a tag.
func (s *Server) CreateTag(ctx context.Context, req api.CreateTagRequestObject) (api.CreateTagResponseObject, error) {
	b := req.Body
	t, err := s.tags.Create(ctx, tags.Input{Name: b.Name, Color: b.Color, Description: b.Description})
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "tag", t.ID.String())
	return api.CreateTag201JSONResponse{Body: tagOut(t), Headers: api.CreateTag201ResponseHeaders{ETag: etag.Ptr(t.Version), Location: location("tags", t.ID)}}, nil
}

// GetTag returns a tag.
func (s *Server) GetTag(ctx context.Context, req api.GetTagRequestObject) (api.GetTagResponseObject, error) {
	t, err := s.tags.Get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetTag200JSONResponse{Body: tagOut(t), Headers: api.GetTag200ResponseHeaders{ETag: etag.Ptr(t.Version)}}, nil
}

// ListTags lists the tag vocabulary.
func (s *Server) ListTags(ctx context.Context, req api.ListTagsRequestObject) (api.ListTagsResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	sort := ""
	if req.Params.Sort != nil {
		sort = string(*req.Params.Sort)
	}
	rows, next, err := s.tags.List(ctx, sort, req.Params.Q, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.TagList{Items: make([]api.Tag, len(rows))}
	for i, t := range rows {
		out.Items[i] = tagOut(t)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListTags200JSONResponse{Body: out}, nil
}

// UpdateTag patches a tag; a new name renames it on every record.
func (s *Server) UpdateTag(ctx context.Context, req api.UpdateTagRequestObject) (api.UpdateTagResponseObject, error) {
	noteTarget(ctx, "tag", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	t, err := s.tags.Update(ctx, req.Id, req.Params.IfMatch, tags.Patch{Name: b.Name,
		Color: fieldOf(b.Color, same[string]), Description: fieldOf(b.Description, same[string])})
	if err != nil {
		return nil, err
	}
	return api.UpdateTag200JSONResponse{Body: tagOut(t), Headers: api.UpdateTag200ResponseHeaders{ETag: etag.Ptr(t.Version)}}, nil
}

// DeleteTag deletes a tag and removes it from every record.
func (s *Server) DeleteTag(ctx context.Context, req api.DeleteTagRequestObject) (api.DeleteTagResponseObject, error) {
	noteTarget(ctx, "tag", req.Id.String())
	if err := s.tags.Delete(ctx, req.Id, req.Params.IfMatch); err != nil {
		return nil, err
	}
	return api.DeleteTag204Response{}, nil
}
