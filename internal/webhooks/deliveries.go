package webhooks

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/predicate"
	entwebhook "github.com/shoalcrm/shoal/ent/webhook"
	"github.com/shoalcrm/shoal/ent/webhookattempt"
	"github.com/shoalcrm/shoal/ent/webhookdelivery"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/store"
)

// Delivery is a delivery with its attempts, oldest first.
type Delivery struct {
	*ent.WebhookDelivery
	Attempts []*ent.WebhookAttempt
}

var deliveryList = listing.New(webhookdelivery.FieldID, func(d *ent.WebhookDelivery) uuid.UUID { return d.ID }, "-createdAt",
	map[string]listing.Key[*ent.WebhookDelivery]{
		"createdAt": {Column: webhookdelivery.FieldCreatedAt, Value: func(d *ent.WebhookDelivery) *time.Time { return &d.CreatedAt }},
	})

// Deliveries returns a page of a webhook's deliveries, newest first, each
// with its attempts; only those in status when it is given.
func (s *Service) Deliveries(ctx context.Context, webhookID uuid.UUID, status *string, cursor *listing.Cursor, limit int) ([]Delivery, *listing.Cursor, error) {
	if _, err := s.Get(ctx, webhookID); err != nil {
		return nil, nil, err
	}
	pg, err := deliveryList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.WebhookDelivery.Query().Where(webhookdelivery.WebhookID(webhookID), predicate.WebhookDelivery(pg.Apply))
	if status != nil {
		q = q.Where(webhookdelivery.StatusEQ(webhookdelivery.Status(*status)))
	}
	rows, err := q.Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list deliveries: %w", err)
	}
	out, err := s.withAttempts(ctx, s.store.Reader, rows)
	if err != nil {
		return nil, nil, err
	}
	return out, pg.Next(rows), nil
}

// withAttempts reads the attempts of the deliveries.
func (s *Service) withAttempts(ctx context.Context, c *ent.Client, rows []*ent.WebhookDelivery) ([]Delivery, error) {
	out := make([]Delivery, len(rows))
	if len(rows) == 0 {
		return out, nil
	}
	ids := make([]uuid.UUID, len(rows))
	at := map[uuid.UUID]int{}
	for i, d := range rows {
		ids[i], at[d.ID] = d.ID, i
		out[i] = Delivery{WebhookDelivery: d, Attempts: []*ent.WebhookAttempt{}}
	}
	attempts, err := c.WebhookAttempt.Query().Where(webhookattempt.DeliveryIDIn(ids...)).
		Order(ent.Asc(webhookattempt.FieldNumber)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("delivery attempts: %w", err)
	}
	for _, a := range attempts {
		i := at[a.DeliveryID]
		out[i].Attempts = append(out[i].Attempts, a)
	}
	return out, nil
}

// Redeliver queues a new delivery of a delivery's event to its webhook,
// outside its subject's order.
func (s *Service) Redeliver(ctx context.Context, webhookID, deliveryID uuid.UUID) (Delivery, error) {
	var out *ent.WebhookDelivery
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if _, err := s.active(ctx, tx, webhookID); err != nil {
			return err
		}
		d, err := tx.WebhookDelivery.Query().Where(webhookdelivery.ID(deliveryID), webhookdelivery.WebhookID(webhookID)).Only(ctx)
		if ent.IsNotFound(err) {
			return errDelivery
		}
		if err != nil {
			return fmt.Errorf("load delivery: %w", err)
		}
		out, err = s.newDelivery(ctx, tx, tx.WebhookDelivery.Create().SetWebhookID(webhookID).SetEventRow(d.EventRow).
			SetEventID(d.EventID).SetEventType(d.EventType).SetSubjectKind(d.SubjectKind).SetSubjectID(d.SubjectID).
			SetReason(webhookdelivery.ReasonRedelivery).SetRedeliveryOf(d.ID))
		return err
	})
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{WebhookDelivery: out, Attempts: []*ent.WebhookAttempt{}}, nil
}

// Ping writes a webhook.pinged event and queues its delivery to this
// webhook alone.
func (s *Service) Ping(ctx context.Context, p *auth.Principal, webhookID uuid.UUID) (Delivery, error) {
	var out *ent.WebhookDelivery
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if _, err := s.active(ctx, tx, webhookID); err != nil {
			return err
		}
		row, err := events.EmitID(ctx, tx, events.Event{Type: events.WebhookPinged, SubjectKind: events.KindWebhook,
			SubjectID: webhookID, Actor: p.EventActor(), OccurredAt: s.now(), Data: events.None{}})
		if err != nil {
			return err
		}
		pos, err := s.store.FeedPosOf(ctx, tx, row)
		if err != nil {
			return err
		}
		out, err = s.newDelivery(ctx, tx, tx.WebhookDelivery.Create().SetWebhookID(webhookID).SetEventRow(row).
			SetEventID(pos.String()).SetEventType(string(events.WebhookPinged)).SetSubjectKind(events.KindWebhook).
			SetSubjectID(webhookID).SetReason(webhookdelivery.ReasonPing))
		return err
	})
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{WebhookDelivery: out, Attempts: []*ent.WebhookAttempt{}}, nil
}

// active reads the webhook, locked, and refuses a disabled one.
func (s *Service) active(ctx context.Context, tx *ent.Tx, id uuid.UUID) (*ent.Webhook, error) {
	w, err := store.ForUpdate(s.store, tx.Webhook.Query().Where(entwebhook.ID(id))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook: %w", err)
	}
	if !w.Active {
		return nil, errInactive
	}
	return w, nil
}

// newDelivery saves a delivery and enqueues its job.
func (s *Service) newDelivery(ctx context.Context, tx *ent.Tx, c *ent.WebhookDeliveryCreate) (*ent.WebhookDelivery, error) {
	now := s.now()
	d, err := c.SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("create delivery: %w", err)
	}
	if err := s.enqueue(ctx, tx, []uuid.UUID{d.ID}); err != nil {
		return nil, err
	}
	return d, nil
}

func (s *Service) enqueue(ctx context.Context, tx *ent.Tx, ids []uuid.UUID) error {
	if s.queue == nil {
		return fmt.Errorf("webhooks: no job queue")
	}
	return s.queue.EnqueueDeliveries(ctx, tx, ids)
}
