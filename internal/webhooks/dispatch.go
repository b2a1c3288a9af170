package webhooks

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/apikey"
	"github.com/shoalcrm/shoal/ent/setting"
	entwebhook "github.com/shoalcrm/shoal/ent/webhook"
	"github.com/shoalcrm/shoal/ent/webhookdelivery"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/store"
)

// The dispatch turns the feed's new events into deliveries. It follows the
// event feed (store.ReadFeed) from a cursor kept in the settings row
// cursorName, so it sees every committed event exactly once and in feed
// order, also with several replicas on PostgreSQL; the requests that
// wrote the events did nothing for webhooks but write them. It runs as a
// periodic job on River's leader (internal/jobs); two runs at once (a slow
// run and the next period's, or a leader change) are harmless: each
// batch moves the cursor in the transaction that makes its deliveries,
// after checking it still stands where the batch read from.

const (
	cursorName = "webhook_dispatch"
	// dispatchBatch is how many events one transaction dispatches.
	dispatchBatch = 500
)

var errMoved = errors.New("the dispatch cursor moved")

// Dispatch makes the deliveries of every event written since the last
// dispatch, and enqueues their jobs. It returns how many it made.
func (s *Service) Dispatch(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := s.dispatchBatch(ctx)
		total += n
		if err != nil || !more {
			return total, err
		}
	}
}

// HasActive reports whether any webhook is active: without one the
// periodic dispatch skips its run.
func (s *Service) HasActive(ctx context.Context) (bool, error) {
	return s.store.Reader.Webhook.Query().Where(entwebhook.Active(true)).Exist(ctx)
}

func (s *Service) dispatchBatch(ctx context.Context) (int, bool, error) {
	hooks, err := s.store.Reader.Webhook.Query().Where(entwebhook.Active(true)).All(ctx)
	if err != nil || len(hooks) == 0 {
		return 0, false, err
	}
	hooks, orphans, err := s.withLiveKeys(ctx, hooks)
	if err != nil {
		return 0, false, err
	}
	if len(orphans) > 0 {
		if err := s.disableOrphans(ctx, orphans); err != nil {
			return 0, false, err
		}
	}
	if len(hooks) == 0 {
		return 0, false, nil
	}
	stored, err := s.readCursor(ctx, s.store.Reader)
	if err != nil {
		return 0, false, err
	}
	// Events up to the oldest webhook's start go to nobody: skip them.
	oldest := hooks[0].StartAfter
	for _, w := range hooks[1:] {
		oldest = min(oldest, w.StartAfter)
	}
	from, _ := store.ParseFeedPos(max(stored.String(), oldest))
	rows, err := s.store.ReadFeed(ctx, from, nil, dispatchBatch)
	if err != nil || len(rows) == 0 {
		return 0, false, err
	}
	made := 0
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		now, err := s.lockCursor(ctx, tx)
		if err != nil {
			return err
		}
		if now != stored {
			return errMoved
		}
		var creates []*ent.WebhookDeliveryCreate
		var ids []uuid.UUID
		at := s.now()
		for _, r := range rows {
			if r.Type == string(events.WebhookPinged) {
				continue // a ping's delivery is made by the ping
			}
			id := r.Pos.String()
			for _, w := range hooks {
				if id <= w.StartAfter || !(slices.Contains(w.EventTypes, AllTypes) || slices.Contains(w.EventTypes, r.Type)) {
					continue
				}
				did := uuid.Must(uuid.NewV7())
				ids = append(ids, did)
				creates = append(creates, tx.WebhookDelivery.Create().SetID(did).SetWebhookID(w.ID).SetEventRow(r.ID).
					SetEventID(id).SetEventType(r.Type).SetSubjectKind(r.SubjectKind).SetSubjectID(r.SubjectID).
					SetReason(webhookdelivery.ReasonEvent).SetCreatedAt(at).SetUpdatedAt(at))
			}
		}
		for chunk := range slices.Chunk(creates, 200) {
			if err := tx.WebhookDelivery.CreateBulk(chunk...).Exec(ctx); err != nil {
				return fmt.Errorf("create deliveries: %w", err)
			}
		}
		if err := tx.Setting.UpdateOneID(cursorName).SetValue(map[string]any{"after": rows[len(rows)-1].Pos.String()}).Exec(ctx); err != nil {
			return fmt.Errorf("move dispatch cursor: %w", err)
		}
		made = len(ids)
		if len(ids) == 0 {
			return nil
		}
		return s.enqueue(ctx, tx, ids)
	})
	if errors.Is(err, errMoved) {
		return 0, true, nil // another run dispatched these: read on from where it stopped
	}
	if err != nil {
		return 0, false, err
	}
	return made, len(rows) == dispatchBatch, nil
}

// readCursor returns the stored dispatch cursor (the start when none).
func (s *Service) readCursor(ctx context.Context, c *ent.Client) (store.FeedPos, error) {
	row, err := c.Setting.Get(ctx, cursorName)
	if ent.IsNotFound(err) {
		return store.FeedPos{}, nil
	}
	if err != nil {
		return store.FeedPos{}, fmt.Errorf("dispatch cursor: %w", err)
	}
	return cursorOf(row)
}

// lockCursor reads the cursor with its write lock, making its row first
// if there is none.
func (s *Service) lockCursor(ctx context.Context, tx *ent.Tx) (store.FeedPos, error) {
	have, err := tx.Setting.Query().Where(setting.ID(cursorName)).Exist(ctx)
	if err != nil {
		return store.FeedPos{}, fmt.Errorf("dispatch cursor: %w", err)
	}
	if !have {
		// ON CONFLICT DO NOTHING: another run may make it meanwhile (its
		// RETURNING then gives no row, which is no error here).
		err := tx.Setting.Create().SetID(cursorName).SetValue(map[string]any{"after": store.FeedPos{}.String()}).
			OnConflict().DoNothing().Exec(ctx)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return store.FeedPos{}, fmt.Errorf("dispatch cursor: %w", err)
		}
	}
	row, err := store.ForUpdate(s.store, tx.Setting.Query().Where(setting.ID(cursorName))).Only(ctx)
	if err != nil {
		return store.FeedPos{}, fmt.Errorf("dispatch cursor: %w", err)
	}
	return cursorOf(row)
}

func cursorOf(row *ent.Setting) (store.FeedPos, error) {
	raw, _ := row.Value["after"].(string)
	pos, ok := store.ParseFeedPos(raw)
	if !ok {
		return store.FeedPos{}, fmt.Errorf("dispatch cursor %q is corrupt", raw)
	}
	return pos, nil
}

// withLiveKeys splits the webhooks made by API keys that are revoked or
// expired (orphans) from the others: a key's webhooks end with it, so a
// key once given webhooks:manage cannot leave behind a webhook that keeps
// receiving the feed. A webhook made by a user stays when the user is
// deactivated: it is the organisation's integration.
func (s *Service) withLiveKeys(ctx context.Context, hooks []*ent.Webhook) (live, orphans []*ent.Webhook, err error) {
	var keys []uuid.UUID
	for _, w := range hooks {
		if w.ActorType == entwebhook.ActorTypeApiKey {
			keys = append(keys, w.ActorID)
		}
	}
	if len(keys) == 0 {
		return hooks, nil, nil
	}
	now := s.clock.Now()
	alive, err := s.store.Reader.APIKey.Query().Where(apikey.IDIn(keys...), apikey.RevokedAtIsNil(),
		apikey.Or(apikey.ExpiresAtIsNil(), apikey.ExpiresAtGT(now))).IDs(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("webhook keys: %w", err)
	}
	for _, w := range hooks {
		if w.ActorType == entwebhook.ActorTypeApiKey && !slices.Contains(alive, w.ActorID) {
			orphans = append(orphans, w)
		} else {
			live = append(live, w)
		}
	}
	return live, orphans, nil
}

// disableOrphans disables the webhooks of revoked or expired keys, each
// with a webhook.disabled event.
func (s *Service) disableOrphans(ctx context.Context, orphans []*ent.Webhook) error {
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		now := s.now()
		for _, w := range orphans {
			n, err := tx.Webhook.Update().Where(entwebhook.ID(w.ID), entwebhook.Active(true)).SetActive(false).
				SetDisabledReason("key_revoked").SetDisabledAt(now).AddVersion(1).SetUpdatedAt(now).Save(ctx)
			if err != nil {
				return fmt.Errorf("disable webhook: %w", err)
			}
			if n == 0 {
				continue
			}
			if err := events.Emit(ctx, tx, events.Event{Type: events.WebhookDisabled, SubjectKind: events.KindWebhook, SubjectID: w.ID,
				Actor: events.System, OccurredAt: now, Data: events.WebhookDisabling{Reason: "key_revoked", FailingSince: w.FailingSince}}); err != nil {
				return err
			}
		}
		return nil
	})
}
