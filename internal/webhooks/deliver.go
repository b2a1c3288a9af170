package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entwebhook "github.com/shoalcrm/shoal/ent/webhook"
	"github.com/shoalcrm/shoal/ent/webhookdelivery"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/feed"
	"github.com/shoalcrm/shoal/internal/store"
)

// responseKeep is how much of a receiver's answer an attempt records.
const responseKeep = 1024

// orderWait is how long a delivery waits, at least, for an earlier
// delivery of its subject to be delivered or fail.
const orderWait = time.Second

// Deliver makes one attempt at a delivery, if it is still pending, and
// records it. wait > 0 asks the job to run again after wait: the retry
// after a failed attempt (Backoff), or an earlier delivery of the same
// subject to the same webhook is still pending (per-subject order). A
// delivery whose webhook is gone, or that is no longer pending, needs
// nothing.
func (s *Service) Deliver(ctx context.Context, id uuid.UUID) (wait time.Duration, err error) {
	d, err := s.store.Reader.WebhookDelivery.Get(ctx, id)
	if ent.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load delivery: %w", err)
	}
	if d.Status != webhookdelivery.StatusPending {
		return 0, nil
	}
	w, err := s.store.Reader.Webhook.Get(ctx, d.WebhookID)
	if ent.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("load webhook: %w", err)
	}
	if !w.Active {
		return 0, s.record(ctx, d, result{err: "not sent: the webhook is disabled", final: true})
	}
	if d.Reason == webhookdelivery.ReasonEvent {
		before, err := s.store.Reader.WebhookDelivery.Query().Where(webhookdelivery.WebhookID(w.ID),
			webhookdelivery.SubjectID(d.SubjectID), webhookdelivery.SubjectKind(d.SubjectKind),
			webhookdelivery.ReasonEQ(webhookdelivery.ReasonEvent), webhookdelivery.StatusEQ(webhookdelivery.StatusPending),
			webhookdelivery.EventIDLT(d.EventID)).Order(ent.Asc(webhookdelivery.FieldEventID)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return 0, fmt.Errorf("earlier deliveries: %w", err)
		}
		if before != nil {
			wait := orderWait
			if before.NextAttemptAt != nil {
				wait = max(wait, before.NextAttemptAt.Sub(s.now()))
			}
			return wait, nil
		}
	}
	row, err := s.store.FeedRowByID(ctx, d.EventRow)
	if err != nil {
		return 0, err
	}
	ev, err := feed.Of(row)
	if err != nil {
		return 0, err
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return 0, fmt.Errorf("delivery body: %w", err)
	}
	secrets, err := s.secrets(w)
	if err != nil {
		return 0, err
	}
	res := s.send(ctx, w.URL, secrets, ev, d.ID, body)
	if ctx.Err() != nil {
		// Cut short by the job's end (shutdown, timeout): not the
		// receiver's failure; the job runs again.
		return 0, ctx.Err()
	}
	next, err := s.recordAttempt(ctx, d, res)
	return next, err
}

// result is one attempt's outcome.
type result struct {
	status   *int
	latency  time.Duration
	response *string
	err      string
	ok       bool
	// final marks the delivery failed whatever its age.
	final bool
}

// secrets are the secrets a delivery is signed with: the webhook's, and
// the one before its last rotation for a day after it.
func (s *Service) secrets(w *ent.Webhook) ([]string, error) {
	secret, err := s.sealer.Open(w.SecretSealed, w.ID[:])
	if err != nil {
		return nil, fmt.Errorf("webhook %s secret: %w", w.ID, err)
	}
	out := []string{secret}
	if w.PreviousSecretSealed != nil && w.PreviousSecretUntil != nil && s.clock.Now().Before(*w.PreviousSecretUntil) {
		prev, err := s.sealer.Open(*w.PreviousSecretSealed, w.ID[:])
		if err != nil {
			return nil, fmt.Errorf("webhook %s previous secret: %w", w.ID, err)
		}
		out = append(out, prev)
	}
	return out, nil
}

// send POSTs the event, signed with each secret.
func (s *Service) send(ctx context.Context, url string, secrets []string, ev feed.Event, deliveryID uuid.UUID, body []byte) result {
	// The wall clock, not the rules' clock: the receiver compares the
	// timestamp with its own (a test clock moved ahead would make every
	// delivery look forged).
	ts := time.Now().Unix()
	sigs := make([]string, len(secrets))
	for i, secret := range secrets {
		sigs[i] = Sign(secret, ts, body)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return result{err: "invalid url"}
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "Shoal-Webhooks/1")
	h.Set(HeaderEventID, ev.ID)
	h.Set(HeaderEventType, ev.Type)
	h.Set(HeaderDeliveryID, deliveryID.String())
	h.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	h.Set(HeaderSignature, strings.Join(sigs, ","))
	start := time.Now()
	resp, err := s.client.Do(req)
	res := result{latency: time.Since(start)}
	if err != nil {
		res.err = describeFailure(err)
		return res
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, responseKeep))
	// Read a little more so the connection can be reused; a huge answer
	// is cut off.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	res.latency = time.Since(start)
	code := resp.StatusCode
	res.status = &code
	if len(head) > 0 {
		text := clean(head)
		res.response = &text
	}
	res.ok = code >= 200 && code < 300
	if !res.ok {
		res.err = fmt.Sprintf("the receiver answered %d", code)
	}
	return res
}

// clean makes an answer's head storable text: valid UTF-8 (a cut
// character or binary is replaced), no NUL (PostgreSQL's text refuses it).
func clean(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// describeFailure says why an attempt got no answer, without the URL (which may
// carry the receiver's token).
func describeFailure(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, ErrForbiddenTarget):
		return "refused: the URL now resolves to an address webhooks may not reach"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout: no answer in time"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return "connection failed: " + oe.Err.Error()
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return "name resolution failed: " + dns.Err
	}
	return "request failed"
}

// recordAttempt writes an attempt and its consequences in one
// transaction: the delivery delivered, rescheduled or failed; the
// webhook's success and failure times; and the webhook disabled when its
// deliveries have failed for DisableAfter. It returns when to try again
// (0: never).
func (s *Service) recordAttempt(ctx context.Context, d *ent.WebhookDelivery, res result) (time.Duration, error) {
	var wait time.Duration
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		wait = 0
		now := s.now()
		// The webhook first, then its delivery: the order Delete locks
		// them in. A success touches the webhook's row only when there
		// is something to record (a failing clock to stop, a last
		// success over a second old), so that the deliveries of a busy
		// webhook do not queue for its row lock one after the other.
		var w *ent.Webhook
		if res.ok {
			_, err := tx.Webhook.Update().Where(entwebhook.ID(d.WebhookID), entwebhook.Or(entwebhook.FailingSinceNotNil(),
				entwebhook.LastSuccessAtIsNil(), entwebhook.LastSuccessAtLT(now.Add(-time.Second)))).
				SetLastSuccessAt(now).ClearFailingSince().Save(ctx)
			if err != nil {
				return fmt.Errorf("record webhook: %w", err)
			}
		} else {
			var err error
			w, err = store.ForUpdate(s.store, tx.Webhook.Query().Where(entwebhook.ID(d.WebhookID))).Only(ctx)
			if ent.IsNotFound(err) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("load webhook: %w", err)
			}
		}
		cur, err := store.ForUpdate(s.store, tx.WebhookDelivery.Query().Where(webhookdelivery.ID(d.ID))).Only(ctx)
		if ent.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("load delivery: %w", err)
		}
		if cur.Status != webhookdelivery.StatusPending {
			return nil
		}
		n := cur.Attempts + 1
		dm := tx.WebhookDelivery.UpdateOne(cur).SetAttempts(n).SetUpdatedAt(now).SetNillableLastStatusCode(res.status)
		first := now
		if cur.FirstAttemptAt != nil {
			first = *cur.FirstAttemptAt
		} else {
			dm.SetFirstAttemptAt(now)
		}
		var wm *ent.WebhookUpdateOne
		var retryAt *time.Time
		disable := false
		if res.ok {
			dm.SetStatus(webhookdelivery.StatusDelivered).SetDeliveredAt(now).ClearNextAttemptAt().ClearLastError()
		} else {
			wm = tx.Webhook.UpdateOne(w)
			since := now
			if w.FailingSince != nil {
				since = *w.FailingSince
			}
			wm.SetLastFailureAt(now).SetFailingSince(since)
			res.err = truncate(res.err, 1000)
			dm.SetLastError(res.err)
			disable = w.Active && now.Sub(since) >= DisableAfter
			if res.final || disable || now.Sub(first) >= RetryFor {
				dm.SetStatus(webhookdelivery.StatusFailed).SetFailedAt(now).ClearNextAttemptAt()
			} else {
				wait = Backoff(n, s.jitter)
				t := now.Add(wait)
				retryAt = &t
				dm.SetNextAttemptAt(t)
			}
			if disable {
				wm.SetActive(false).SetDisabledReason("failing").SetDisabledAt(now).AddVersion(1).SetUpdatedAt(now)
			}
		}
		if err := dm.Exec(ctx); err != nil {
			return fmt.Errorf("record delivery: %w", err)
		}
		if wm != nil {
			if err := wm.Exec(ctx); err != nil {
				return fmt.Errorf("record webhook: %w", err)
			}
		}
		if res.status != nil || res.err != "" {
			a := tx.WebhookAttempt.Create().SetDeliveryID(cur.ID).SetNumber(n).SetAt(now).
				SetLatencyMs(int(res.latency.Milliseconds())).SetNillableStatusCode(res.status).
				SetNillableResponse(res.response).SetNillableRetryAt(retryAt)
			if res.err != "" {
				a.SetError(res.err)
			}
			if err := a.Exec(ctx); err != nil {
				return fmt.Errorf("record attempt: %w", err)
			}
		}
		if !disable {
			return nil
		}
		since := now
		if w.FailingSince != nil {
			since = *w.FailingSince
		}
		return events.Emit(ctx, tx, events.Event{Type: events.WebhookDisabled, SubjectKind: events.KindWebhook, SubjectID: w.ID,
			Actor: events.System, OccurredAt: now, Data: events.WebhookDisabling{Reason: "failing", FailingSince: &since}})
	})
	return wait, err
}

// record marks a delivery failed without an attempt (its webhook is
// disabled).
func (s *Service) record(ctx context.Context, d *ent.WebhookDelivery, res result) error {
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		now := s.now()
		_, err := tx.WebhookDelivery.Update().Where(webhookdelivery.ID(d.ID), webhookdelivery.StatusEQ(webhookdelivery.StatusPending)).
			SetStatus(webhookdelivery.StatusFailed).SetFailedAt(now).SetUpdatedAt(now).ClearNextAttemptAt().
			SetLastError(res.err).Save(ctx)
		if err != nil {
			return fmt.Errorf("fail delivery: %w", err)
		}
		return nil
	})
}

// truncate cuts s to n runes (the spec's bound on an attempt's error).
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
