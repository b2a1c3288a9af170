package httpapi

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/feed"
	"github.com/shoalcrm/shoal/internal/page"
)

// feedCursor is listEvents' cursor: the position to read after.
type feedCursor struct {
	P string `json:"p"`
}

// ListEvents reads the event feed.
func (s *Server) ListEvents(ctx context.Context, req api.ListEventsRequestObject) (api.ListEventsResponseObject, error) {
	prm := req.Params
	var q feed.Query
	switch {
	case prm.Cursor != nil && *prm.Cursor != "" && prm.After != nil:
		return nil, apperr.Invalidf("query.after", "after_with_cursor", "give after or cursor, not both")
	case prm.Cursor != nil && *prm.Cursor != "":
		var c feedCursor
		if err := s.cursors.Decode(ctx, *prm.Cursor, &c); err != nil {
			return nil, err
		}
		pos, ok := feed.ParseID(c.P)
		if !ok {
			bad := apperr.Invalidf("query.cursor", "invalid_cursor", "the cursor is not one this server issued")
			bad.Code = "invalid_cursor"
			return nil, bad
		}
		q.After = pos
	case prm.After != nil:
		pos, ok := feed.ParseID(*prm.After)
		if !ok {
			return nil, apperr.Invalidf("query.after", "invalid_event_id", "after is not an event id")
		}
		q.After = pos
	}
	if prm.Type != nil {
		for _, t := range *prm.Type {
			for _, one := range strings.Split(t, ",") {
				if one != "" {
					q.Types = append(q.Types, one)
				}
			}
		}
	}
	q.Limit = page.Size(prm.Limit)
	pg, err := s.feed.List(ctx, auth.FromContext(ctx), q)
	if err != nil {
		return nil, err
	}
	out := api.EventList{Items: make([]api.Event, len(pg.Items)),
		NextCursor: s.cursors.Encode(ctx, feedCursor{P: pg.Next.String()})}
	for i, e := range pg.Items {
		var data map[string]any
		if err := json.Unmarshal(e.Data, &data); err != nil {
			return nil, err
		}
		if data == nil {
			data = map[string]any{}
		}
		out.Items[i] = api.Event{Id: e.ID, Type: e.Type, OccurredAt: e.OccurredAt.UTC(),
			Subject: api.EventSubject{Kind: e.SubjectKind, Id: e.SubjectID},
			Actor:   api.EventActor{Type: api.EventActorType(e.Actor.Type), Id: e.Actor.ID},
			Data:    data}
	}
	return api.ListEvents200JSONResponse{Body: out}, nil
}
