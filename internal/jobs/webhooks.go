package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

// QueueWebhooks is the queue deliveries run on, apart from the default
// queue's imports and sweeps: a slow receiver must not hold those up, nor
// they the deliveries.
const QueueWebhooks = "webhooks"

// DefaultDeliveryWorkers is how many deliveries a process sends at once.
const DefaultDeliveryWorkers = 100

// DefaultDispatchEvery is how often the leader turns new events into
// deliveries.
const DefaultDispatchEvery = time.Second

// WebhookDeliverArgs sends one webhook delivery (webhooks.Service.Deliver).
type WebhookDeliverArgs struct {
	DeliveryID uuid.UUID `json:"delivery_id"`
}

func (WebhookDeliverArgs) Kind() string { return "webhook_deliver" }

// InsertOpts: one job per delivery, on the webhooks queue.
func (WebhookDeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: QueueWebhooks, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type webhookDeliverWorker struct {
	river.WorkerDefaults[WebhookDeliverArgs]
	hooks *webhooks.Service
}

// Work makes one attempt. A failed attempt, or a delivery waiting for an
// earlier one of its subject, is snoozed (River reschedules the job
// without counting an error): the wait is the delivery's own backoff
// (webhooks.Backoff), recorded with the attempt, and the delivery's age
// decides when it fails for good (webhooks.RetryFor), so River's attempt
// count and retry policy do not apply. Only an error of Shoal's own (the
// database) is returned, and retried by River.
func (w *webhookDeliverWorker) Work(ctx context.Context, job *river.Job[WebhookDeliverArgs]) error {
	if w.hooks == nil {
		return errors.New("webhook delivery: no webhook service on this job queue")
	}
	wait, err := w.hooks.Deliver(ctx, job.Args.DeliveryID)
	if err != nil {
		return err
	}
	if wait > 0 {
		return river.JobSnooze(wait)
	}
	return nil
}

// Timeout: one attempt's timeout and room to record it.
func (w *webhookDeliverWorker) Timeout(*river.Job[WebhookDeliverArgs]) time.Duration {
	return webhooks.DefaultTimeout + 30*time.Second
}

// WebhookDispatchArgs turns the feed's new events into deliveries
// (webhooks.Service.Dispatch); the leader enqueues it periodically.
type WebhookDispatchArgs struct{}

func (WebhookDispatchArgs) Kind() string { return "webhook_dispatch" }

// InsertOpts: not retried; the next period's run does the work.
func (WebhookDispatchArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{MaxAttempts: 1, Queue: QueueWebhooks}
}

type webhookDispatchWorker struct {
	river.WorkerDefaults[WebhookDispatchArgs]
	hooks *webhooks.Service
}

func (w *webhookDispatchWorker) Work(ctx context.Context, _ *river.Job[WebhookDispatchArgs]) error {
	if w.hooks == nil {
		return nil
	}
	_, err := w.hooks.Dispatch(ctx)
	return err
}

// dispatchJob is the periodic dispatch. Its constructor asks the database
// whether any webhook is active, and skips the period when none is, so
// that a Shoal without webhooks does not queue a job every second; the
// question is a read by primary index, bounded by a short timeout (River
// asks constructors not to block).
func dispatchJob(cfg Config) *river.PeriodicJob {
	every := cfg.WebhookDispatchEvery
	if every <= 0 {
		every = DefaultDispatchEvery
	}
	return river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if ok, err := cfg.Webhooks.HasActive(ctx); err == nil && !ok {
			return nil, nil
		}
		var opts river.InsertOpts
		if every >= time.Second {
			opts.UniqueOpts.ByPeriod = every
		}
		return WebhookDispatchArgs{}, &opts
	}, &river.PeriodicJobOpts{ID: WebhookDispatchArgs{}.Kind()})
}

// EnqueueDeliveries implements webhooks.Queue.
func (j *Jobs) EnqueueDeliveries(ctx context.Context, tx *ent.Tx, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	stx, ok := j.st.SQLTx(tx)
	if !ok {
		return errors.New("enqueue deliveries: not a transaction of the store")
	}
	params := make([]river.InsertManyParams, len(ids))
	for i, id := range ids {
		params[i] = river.InsertManyParams{Args: WebhookDeliverArgs{DeliveryID: id}}
	}
	if _, err := j.insert.InsertManyTx(ctx, stx, params); err != nil {
		return err
	}
	return nil
}
