package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/schema"
	entwebhook "github.com/shoalcrm/shoal/ent/webhook"
	"github.com/shoalcrm/shoal/ent/webhookattempt"
	"github.com/shoalcrm/shoal/ent/webhookdelivery"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/store"
)

// AllTypes subscribes a webhook to every event type.
const AllTypes = "*"

// RotationOverlap is how long the secret before a rotation still signs
// deliveries, beside the new one.
const RotationOverlap = 24 * time.Hour

// DefaultTimeout is how long one attempt waits for the receiver's answer.
const DefaultTimeout = 10 * time.Second

var (
	errNotFound  = apperr.NotFoundf("webhook")
	errDelivery  = apperr.NotFoundf("delivery")
	errForbidden = apperr.New(apperr.Unprocessable, "webhook_target_forbidden",
		"webhooks may not send to this address (loopback, private, link-local or metadata)")
	errInactive = apperr.New(apperr.Conflict, "webhook_inactive", "the webhook is disabled; re-enable it first")
)

// Queue enqueues delivery jobs in the transaction that makes the
// deliveries (internal/jobs).
type Queue interface {
	EnqueueDeliveries(ctx context.Context, tx *ent.Tx, ids []uuid.UUID) error
}

// Config configures the service.
type Config struct {
	// Guard checks target URLs; AllowPrivate is SHOAL_WEBHOOK_ALLOW_PRIVATE.
	Guard Guard
	// Timeout bounds one attempt (default DefaultTimeout).
	Timeout time.Duration
	// Jitter is the backoff's jitter source (nil: random).
	Jitter func() float64
}

// Service manages webhooks and sends their deliveries.
type Service struct {
	store  *store.Store
	clock  clock.Clock
	sealer *Sealer
	guard  Guard
	client *http.Client
	jitter func() float64
	queue  Queue
}

// NewService returns the webhook service; SetQueue must be called before
// a delivery is made. The key sealing the signing secrets is kept in the
// database (store.LoadKey), shared by the replicas.
func NewService(ctx context.Context, st *store.Store, clk clock.Clock, cfg Config) (*Service, error) {
	key, err := st.LoadKey(ctx, "webhook_secret_key")
	if err != nil {
		return nil, err
	}
	sealer, err := NewSealer(key)
	if err != nil {
		return nil, err
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	return &Service{store: st, clock: clk, sealer: sealer, guard: cfg.Guard, client: cfg.Guard.Client(cfg.Timeout), jitter: cfg.Jitter}, nil
}

// SetQueue sets the job queue deliveries are enqueued on.
func (s *Service) SetQueue(q Queue) { s.queue = q }

// Input is a new webhook.
type Input struct {
	URL         string
	EventTypes  []string
	Description *string
}

// Patch changes a webhook (merge-patch: a null description clears it).
type Patch struct {
	URL          *string
	EventTypes   []string
	Description  patch.Field[string]
	Active       *bool
	RotateSecret bool
}

// Created is a webhook and, when it was just made or rotated, its secret.
type Created struct {
	*ent.Webhook
	Secret string
}

// checkTypes refuses types the catalogue does not have, and sorts them.
func checkTypes(types []string) ([]string, error) {
	out := slices.Clone(types)
	for _, t := range out {
		if t == AllTypes {
			continue
		}
		if _, ok := events.Lookup(events.Type(t)); !ok {
			return nil, apperr.Invalidf("body/eventTypes", "unknown_event_type",
				fmt.Sprintf("%q is not an event type (docs/events.md lists them)", t))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkURL checks a target URL's shape and where it resolves.
func (s *Service) checkURL(ctx context.Context, raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	err := s.guard.CheckURL(ctx, raw)
	switch {
	case err == nil:
		return raw, nil
	case errors.Is(err, ErrBadURL):
		return "", apperr.Invalidf("body/url", "invalid", "url must be an absolute http or https URL without user info or fragment")
	case errors.Is(err, ErrForbiddenTarget):
		return "", errForbidden
	}
	return "", err
}

func actorOf(p *auth.Principal) (entwebhook.ActorType, error) {
	switch {
	case p != nil && p.Type == auth.ActorUser:
		return entwebhook.ActorTypeUser, nil
	case p != nil && p.Type == auth.ActorAPIKey:
		return entwebhook.ActorTypeApiKey, nil
	}
	return "", apperr.New(apperr.Forbidden, "forbidden", "only users and API keys manage webhooks")
}

// Create registers a webhook and returns it with its secret, which is
// never shown again.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in Input) (*Created, error) {
	actor, err := actorOf(p)
	if err != nil {
		return nil, err
	}
	types, err := checkTypes(in.EventTypes)
	if err != nil {
		return nil, err
	}
	url, err := s.checkURL(ctx, in.URL)
	if err != nil {
		return nil, err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	id := schema.NewID()
	sealed, err := s.sealer.Seal(secret, id[:])
	if err != nil {
		return nil, err
	}
	var out *ent.Webhook
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		now := s.now()
		row, err := events.EmitID(ctx, tx, events.Event{Type: events.WebhookCreated, SubjectKind: events.KindWebhook, SubjectID: id,
			Actor: p.EventActor(), OccurredAt: now, Data: events.Webhook{EventTypes: types, Active: true}})
		if err != nil {
			return err
		}
		start, err := s.store.FeedPosOf(ctx, tx, row)
		if err != nil {
			return err
		}
		out, err = tx.Webhook.Create().SetID(id).SetURL(url).SetEventTypes(types).SetNillableDescription(in.Description).
			SetSecretSealed(sealed).SetActorType(actor).SetActorID(p.ID).SetStartAfter(start.String()).
			SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("create webhook: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &Created{Webhook: out, Secret: secret}, nil
}

// Get returns a webhook.
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*ent.Webhook, error) {
	w, err := s.store.Reader.Webhook.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook: %w", err)
	}
	return w, nil
}

var list = listing.New(entwebhook.FieldID, func(w *ent.Webhook) uuid.UUID { return w.ID }, "-createdAt",
	map[string]listing.Key[*ent.Webhook]{
		"createdAt": {Column: entwebhook.FieldCreatedAt, Value: func(w *ent.Webhook) *time.Time { return &w.CreatedAt }},
	})

// List returns a page of webhooks, newest first.
func (s *Service) List(ctx context.Context, cursor *listing.Cursor, limit int) ([]*ent.Webhook, *listing.Cursor, error) {
	pg, err := list.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.store.Reader.Webhook.Query().Where(predicate.Webhook(pg.Apply)).Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list webhooks: %w", err)
	}
	return rows, pg.Next(rows), nil
}

// Update applies a patch; ifMatch must name the current version.
func (s *Service) Update(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in Patch) (*Created, error) {
	var (
		types []string
		url   string
		err   error
	)
	if in.EventTypes != nil {
		if types, err = checkTypes(in.EventTypes); err != nil {
			return nil, err
		}
	}
	if in.URL != nil {
		if url, err = s.checkURL(ctx, *in.URL); err != nil {
			return nil, err
		}
	}
	var secret string
	var sealed []byte
	if in.RotateSecret {
		if secret, err = NewSecret(); err != nil {
			return nil, err
		}
		if sealed, err = s.sealer.Seal(secret, id[:]); err != nil {
			return nil, err
		}
	}
	var out *ent.Webhook
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		w, err := s.lock(ctx, tx, id, ifMatch)
		if err != nil {
			return err
		}
		now := s.now()
		m := tx.Webhook.UpdateOne(w)
		if in.URL != nil {
			m.SetURL(url)
		}
		if types != nil {
			m.SetEventTypes(types)
		}
		if in.Description.Set {
			if in.Description.Value == nil {
				m.ClearDescription()
			} else {
				m.SetDescription(*in.Description.Value)
			}
		}
		if in.Active != nil && *in.Active != w.Active {
			m.SetActive(*in.Active)
			if *in.Active {
				// Re-enabled: the failing clock starts again.
				m.ClearDisabledAt().ClearDisabledReason().ClearFailingSince()
			} else {
				m.SetDisabledAt(now).SetDisabledReason("manual")
			}
		}
		if sealed != nil {
			// The old secret stays valid for a day: deliveries carry a
			// signature with each meanwhile.
			m.SetSecretSealed(sealed).SetPreviousSecretSealed(w.SecretSealed).SetPreviousSecretUntil(now.Add(RotationOverlap))
		}
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = w
			return nil
		}
		if out, err = m.AddVersion(1).SetUpdatedAt(now).Save(ctx); err != nil {
			return fmt.Errorf("update webhook: %w", err)
		}
		return s.emit(ctx, tx, p.EventActor(), events.WebhookUpdated, id, events.Changed{Fields: fields})
	})
	if err != nil {
		return nil, err
	}
	return &Created{Webhook: out, Secret: secret}, nil
}

// Delete deletes a webhook and its deliveries (and their attempts);
// their queued jobs find nothing to send.
func (s *Service) Delete(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string) error {
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if _, err := s.lock(ctx, tx, id, ifMatch); err != nil {
			return err
		}
		if _, err := tx.WebhookAttempt.Delete().Where(predicate.WebhookAttempt(func(sel *sql.Selector) {
			d := sql.Table(webhookdelivery.Table)
			sel.Where(sql.In(sel.C(webhookattempt.FieldDeliveryID),
				sql.Select(d.C(webhookdelivery.FieldID)).From(d).Where(sql.EQ(d.C(webhookdelivery.FieldWebhookID), id))))
		})).Exec(ctx); err != nil {
			return fmt.Errorf("delete attempts: %w", err)
		}
		if _, err := tx.WebhookDelivery.Delete().Where(webhookdelivery.WebhookID(id)).Exec(ctx); err != nil {
			return fmt.Errorf("delete deliveries: %w", err)
		}
		if err := tx.Webhook.DeleteOneID(id).Exec(ctx); err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		return s.emit(ctx, tx, p.EventActor(), events.WebhookDeleted, id, events.None{})
	})
}

// lock reads the webhook with its write lock and checks If-Match.
func (s *Service) lock(ctx context.Context, tx *ent.Tx, id uuid.UUID, ifMatch *string) (*ent.Webhook, error) {
	w, err := store.ForUpdate(s.store, tx.Webhook.Query().Where(entwebhook.ID(id))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load webhook: %w", err)
	}
	if err := etag.Check(ifMatch, w.Version); err != nil {
		return nil, err
	}
	return w, nil
}

func (s *Service) emit(ctx context.Context, tx *ent.Tx, actor events.Actor, t events.Type, id uuid.UUID, data any) error {
	return events.Emit(ctx, tx, events.Event{Type: t, SubjectKind: events.KindWebhook, SubjectID: id,
		Actor: actor, OccurredAt: s.now(), Data: data})
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
