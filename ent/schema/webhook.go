package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Webhook is a subscription: the domain events of the listed types are
// POSTed, signed, to its URL (internal/webhooks). Its signing secret is
// kept sealed (AES-GCM, the row's id as additional data): it must be read
// back to sign, so it cannot be hashed like an API key.
type Webhook struct{ ent.Schema }

// Mixin of the Webhook.
func (Webhook) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Webhook.
func (Webhook) Fields() []ent.Field {
	return []ent.Field{
		field.String("url").NotEmpty().MaxLen(2000),
		// event_types are catalogue types, or "*" for every type.
		field.JSON("event_types", []string{}),
		field.String("description").Optional().Nillable().MaxLen(chars(500)),
		field.Bytes("secret_sealed").Sensitive(),
		// previous_secret_sealed is the secret before the last rotation:
		// deliveries are signed with both until previous_secret_until, so
		// a receiver has a day to switch.
		field.Bytes("previous_secret_sealed").Optional().Nillable().Sensitive(),
		field.Time("previous_secret_until").Optional().Nillable(),
		field.Bool("active").Default(true),
		// disabled_reason says why an inactive webhook was disabled
		// ("failing": by Shoal, after DisableAfter of failures;
		// "key_revoked": the API key that made it was revoked or expired;
		// "manual").
		field.String("disabled_reason").Optional().Nillable(),
		field.Time("disabled_at").Optional().Nillable(),
		// failing_since is the first failed attempt since the last
		// success: the clock of the automatic disabling.
		field.Time("failing_since").Optional().Nillable(),
		field.Time("last_success_at").Optional().Nillable(),
		field.Time("last_failure_at").Optional().Nillable(),
		field.Enum("actor_type").Values("user", "apiKey").Immutable(),
		field.UUID("actor_id", uuid.UUID{}).Immutable(),
		// start_after is the feed id of the webhook's own webhook.created
		// event: it is sent the events after it, not older ones.
		field.String("start_after").Immutable(),
	}
}

// Indexes of the Webhook: the list sorts by created_at.
func (Webhook) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_at", "id")}
}

// WebhookDelivery is one event to send to one webhook: made by the
// dispatch job for every new event a webhook subscribes to, by a ping,
// or by a redelivery. Its job sends it until it is delivered, or fails
// for good after RetryFor.
type WebhookDelivery struct{ ent.Schema }

// Mixin of the WebhookDelivery.
func (WebhookDelivery) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Fields of the WebhookDelivery.
func (WebhookDelivery) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("webhook_id", uuid.UUID{}).Immutable(),
		// event_row is the domain_events row sent: the body is built from
		// it at each attempt, so an erasure's redaction reaches it too.
		field.UUID("event_row", uuid.UUID{}).Immutable(),
		// event_id is the event's feed id (its position: 32 hex digits
		// that order as strings), the order of deliveries per subject.
		field.String("event_id").Immutable(),
		field.String("event_type").Immutable(),
		field.String("subject_kind").Immutable(),
		field.UUID("subject_id", uuid.UUID{}).Immutable(),
		// reason: "event" (dispatched; in order per subject), "ping" or
		// "redelivery" (outside the order).
		field.Enum("reason").Values("event", "ping", "redelivery").Immutable(),
		field.UUID("redelivery_of", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.Enum("status").Values("pending", "delivered", "failed").Default("pending"),
		field.Int("attempts").Default(0),
		// first_attempt_at starts the RetryFor clock: a delivery held
		// back behind an earlier one of its subject keeps its day.
		field.Time("first_attempt_at").Optional().Nillable(),
		field.Time("next_attempt_at").Optional().Nillable(),
		field.Time("delivered_at").Optional().Nillable(),
		field.Time("failed_at").Optional().Nillable(),
		field.Int("last_status_code").Optional().Nillable(),
		field.String("last_error").Optional().Nillable(),
	}
}

// Indexes of the WebhookDelivery: a webhook's deliveries newest first,
// and the pending ones of a subject in event order (the order check).
func (WebhookDelivery) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("webhook_id", "created_at", "id"),
		index.Fields("webhook_id", "subject_id", "status", "event_id"),
	}
}

// WebhookAttempt is one try of a delivery: what the receiver answered,
// how long it took, or what went wrong.
type WebhookAttempt struct{ ent.Schema }

// Mixin of the WebhookAttempt.
func (WebhookAttempt) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the WebhookAttempt.
func (WebhookAttempt) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("delivery_id", uuid.UUID{}).Immutable(),
		field.Int("number").Immutable(),
		field.Time("at").Immutable(),
		field.Int("status_code").Optional().Nillable().Immutable(),
		field.Int("latency_ms").Immutable(),
		// response is the first KiB of the answer's body.
		field.String("response").Optional().Nillable().Immutable(),
		field.String("error").Optional().Nillable().Immutable(),
		// retry_at is when the next attempt is due (nil: none).
		field.Time("retry_at").Optional().Nillable().Immutable(),
	}
}

// Indexes of the WebhookAttempt.
func (WebhookAttempt) Indexes() []ent.Index {
	return []ent.Index{index.Fields("delivery_id", "number")}
}
