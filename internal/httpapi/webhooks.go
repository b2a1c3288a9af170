package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

func webhookOut(w *ent.Webhook) api.Webhook {
	out := api.Webhook{Id: w.ID, Url: w.URL, EventTypes: w.EventTypes, Description: w.Description, Active: w.Active,
		DisabledAt: utcPtr(w.DisabledAt), FailingSince: utcPtr(w.FailingSince), LastSuccessAt: utcPtr(w.LastSuccessAt),
		LastFailureAt: utcPtr(w.LastFailureAt), CreatedAt: w.CreatedAt.UTC(), UpdatedAt: w.UpdatedAt.UTC()}
	if w.DisabledReason != nil {
		r := api.WebhookDisabledReason(*w.DisabledReason)
		out.DisabledReason = &r
	}
	return out
}

// webhookCreatedOut is a webhook with its secret, when it has one to show.
func webhookCreatedOut(c *webhooks.Created) api.WebhookCreated {
	w := webhookOut(c.Webhook)
	out := api.WebhookCreated{Id: w.Id, Url: w.Url, EventTypes: w.EventTypes, Description: w.Description, Active: w.Active,
		DisabledAt: w.DisabledAt, FailingSince: w.FailingSince, LastSuccessAt: w.LastSuccessAt, LastFailureAt: w.LastFailureAt,
		CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
	if w.DisabledReason != nil {
		r := api.WebhookCreatedDisabledReason(*w.DisabledReason)
		out.DisabledReason = &r
	}
	if c.Secret != "" {
		secret := c.Secret
		out.Secret = &secret
	}
	return out
}

func deliveryOut(d webhooks.Delivery) api.WebhookDelivery {
	out := api.WebhookDelivery{Id: d.ID, WebhookId: d.WebhookID, EventId: d.EventID, EventType: d.EventType,
		Subject: api.EventSubject{Kind: d.SubjectKind, Id: d.SubjectID}, Reason: api.WebhookDeliveryReason(d.Reason),
		RedeliveryOf: d.RedeliveryOf, Status: api.WebhookDeliveryStatus(d.Status), AttemptCount: int32(d.WebhookDelivery.Attempts),
		NextAttemptAt: utcPtr(d.NextAttemptAt), CreatedAt: d.CreatedAt.UTC(), DeliveredAt: utcPtr(d.DeliveredAt),
		FailedAt: utcPtr(d.FailedAt), Attempts: make([]api.WebhookAttempt, len(d.Attempts))}
	for i, a := range d.Attempts {
		out.Attempts[i] = api.WebhookAttempt{Number: int32(a.Number), At: a.At.UTC(), LatencyMs: int32(a.LatencyMs),
			Response: a.Response, Error: a.Error, RetryAt: utcPtr(a.RetryAt)}
		if a.StatusCode != nil {
			c := int32(*a.StatusCode)
			out.Attempts[i].StatusCode = &c
		}
	}
	return out
}

// CreateWebhook subscribes a URL to events; the answer shows the secret once.
func (s *Server) CreateWebhook(ctx context.Context, req api.CreateWebhookRequestObject) (api.CreateWebhookResponseObject, error) {
	b := req.Body
	c, err := s.webhooks.Create(ctx, auth.FromContext(ctx), webhooks.Input{URL: b.Url, EventTypes: b.EventTypes, Description: b.Description})
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "webhook", c.ID.String())
	return api.CreateWebhook201JSONResponse{Body: webhookCreatedOut(c),
		Headers: api.CreateWebhook201ResponseHeaders{ETag: etag.Ptr(c.Version), Location: location("webhooks", c.ID)}}, nil
}

// GetWebhook returns a webhook.
func (s *Server) GetWebhook(ctx context.Context, req api.GetWebhookRequestObject) (api.GetWebhookResponseObject, error) {
	w, err := s.webhooks.Get(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetWebhook200JSONResponse{Body: webhookOut(w), Headers: api.GetWebhook200ResponseHeaders{ETag: etag.Ptr(w.Version)}}, nil
}

// ListWebhooks lists the webhooks, newest first.
func (s *Server) ListWebhooks(ctx context.Context, req api.ListWebhooksRequestObject) (api.ListWebhooksResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.webhooks.List(ctx, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.WebhookList{Items: make([]api.Webhook, len(rows))}
	for i, w := range rows {
		out.Items[i] = webhookOut(w)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListWebhooks200JSONResponse{Body: out}, nil
}

// UpdateWebhook patches a webhook; rotateSecret shows the new secret once.
func (s *Server) UpdateWebhook(ctx context.Context, req api.UpdateWebhookRequestObject) (api.UpdateWebhookResponseObject, error) {
	noteTarget(ctx, "webhook", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := webhooks.Patch{URL: b.Url, Description: fieldOf(b.Description, same[string]), Active: b.Active,
		RotateSecret: b.RotateSecret != nil && *b.RotateSecret}
	if b.EventTypes != nil {
		in.EventTypes = *b.EventTypes
	}
	c, err := s.webhooks.Update(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateWebhook200JSONResponse{Body: webhookCreatedOut(c), Headers: api.UpdateWebhook200ResponseHeaders{ETag: etag.Ptr(c.Version)}}, nil
}

// DeleteWebhook deletes a webhook and its deliveries.
func (s *Server) DeleteWebhook(ctx context.Context, req api.DeleteWebhookRequestObject) (api.DeleteWebhookResponseObject, error) {
	noteTarget(ctx, "webhook", req.Id.String())
	if err := s.webhooks.Delete(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch); err != nil {
		return nil, err
	}
	return api.DeleteWebhook204Response{}, nil
}

// ListWebhookDeliveries lists a webhook's deliveries with their attempts.
func (s *Server) ListWebhookDeliveries(ctx context.Context, req api.ListWebhookDeliveriesRequestObject) (api.ListWebhookDeliveriesResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	var status *string
	if req.Params.Status != nil {
		v := string(*req.Params.Status)
		status = &v
	}
	rows, next, err := s.webhooks.Deliveries(ctx, req.Id, status, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.WebhookDeliveryList{Items: make([]api.WebhookDelivery, len(rows))}
	for i, d := range rows {
		out.Items[i] = deliveryOut(d)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListWebhookDeliveries200JSONResponse{Body: out}, nil
}

// RedeliverWebhook queues the event of a delivery again.
func (s *Server) RedeliverWebhook(ctx context.Context, req api.RedeliverWebhookRequestObject) (api.RedeliverWebhookResponseObject, error) {
	noteTarget(ctx, "webhook", req.Id.String())
	d, err := s.webhooks.Redeliver(ctx, req.Id, req.DeliveryId)
	if err != nil {
		return nil, err
	}
	return api.RedeliverWebhook202JSONResponse{Body: deliveryOut(d)}, nil
}

// PingWebhook queues a webhook.pinged event to the webhook.
func (s *Server) PingWebhook(ctx context.Context, req api.PingWebhookRequestObject) (api.PingWebhookResponseObject, error) {
	noteTarget(ctx, "webhook", req.Id.String())
	d, err := s.webhooks.Ping(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.PingWebhook202JSONResponse{Body: deliveryOut(d)}, nil
}
