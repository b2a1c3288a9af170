package jobs

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/idempotency"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
)

// register is the one place every worker is registered. A job kind
// without a worker here is rejected at insert.
func register(w *river.Workers, st *store.Store, pools *pool.Service, cfg Config) {
	river.AddWorker(w, &sweepWorker{pools: pools, onRun: cfg.OnSweep, log: cfg.Logger})
	river.AddWorker(w, &rejudgeWorker{st: st, pools: pools})
	river.AddWorker(w, &handoverWorker{runs: cfg.Handover})
	river.AddWorker(w, &importWorker{imports: cfg.Imports})

	river.AddWorker(w, &idempotencyPurgeWorker{answers: cfg.Idempotency})
	river.AddWorker(w, &webhookDeliverWorker{hooks: cfg.Webhooks})
	river.AddWorker(w, &webhookDispatchWorker{hooks: cfg.Webhooks})
}

// periodic are the jobs the leader enqueues on a schedule.
func periodic(cfg Config) []*river.PeriodicJob {
	var jobs []*river.PeriodicJob
	if cfg.Webhooks != nil && cfg.WebhookDispatchEvery >= 0 {
		jobs = append(jobs, dispatchJob(cfg))
	}
	if cfg.Idempotency != nil {
		jobs = append(jobs, river.NewPeriodicJob(river.PeriodicInterval(idempotencyPurgeEvery), func() (river.JobArgs, *river.InsertOpts) {
			return IdempotencyPurgeArgs{}, &river.InsertOpts{UniqueOpts: river.UniqueOpts{ByPeriod: idempotencyPurgeEvery}}
		}, &river.PeriodicJobOpts{ID: IdempotencyPurgeArgs{}.Kind()}))
	}
	if cfg.SweepEvery <= 0 {
		return jobs
	}
	every := cfg.SweepEvery
	return append(jobs,
		river.NewPeriodicJob(river.PeriodicInterval(every), func() (river.JobArgs, *river.InsertOpts) {
			// Unique per period: a new leader taking over within a
			// period does not enqueue a second sweep for it. River
			// refuses periods under a second (only tests sweep that
			// often); there only the leader's election keeps sweeps
			// single, and sweeps are idempotent anyway.
			var opts river.InsertOpts
			if every >= time.Second {
				opts.UniqueOpts.ByPeriod = every
			}
			return SweepArgs{}, &opts
		}, &river.PeriodicJobOpts{ID: SweepArgs{}.Kind()}),
	)
}

// idempotencyPurgeEvery is how often expired Idempotency-Key answers are
// deleted. Expired answers are never replayed anyway (idempotency.Find
// checks the expiry); the purge only gives their space back.
const idempotencyPurgeEvery = time.Hour

// IdempotencyPurgeArgs deletes the stored answers of Idempotency-Keys older
// than idempotency.TTL.
type IdempotencyPurgeArgs struct{}

func (IdempotencyPurgeArgs) Kind() string { return "idempotency_purge" }

// InsertOpts: not retried; the next period's purge does its work.
func (IdempotencyPurgeArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type idempotencyPurgeWorker struct {
	river.WorkerDefaults[IdempotencyPurgeArgs]
	answers *idempotency.Service
}

func (w *idempotencyPurgeWorker) Work(ctx context.Context, _ *river.Job[IdempotencyPurgeArgs]) error {
	if w.answers == nil {
		return nil
	}
	_, err := w.answers.Purge(ctx)
	return err
}

// SweepArgs is the periodic sweep: reclaim what is due, release expired
// freezes, warn of what will be due (pool.Service.Sweep).
type SweepArgs struct{}

func (SweepArgs) Kind() string { return "pool_sweep" }

// InsertOpts: a failed sweep is not retried; the next period's sweep does
// its work.
func (SweepArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{MaxAttempts: 1} }

type sweepWorker struct {
	river.WorkerDefaults[SweepArgs]
	pools *pool.Service
	onRun func(SweepRun)
	log   interface {
		Info(msg string, args ...any)
	}
}

func (w *sweepWorker) Work(ctx context.Context, job *river.Job[SweepArgs]) error {
	res, err := w.pools.Sweep(ctx, nil, false)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	if len(res.Reclaimed)+len(res.Released)+len(res.Warned) > 0 {
		w.log.Info("sweep", "reclaimed", len(res.Reclaimed), "released", len(res.Released), "warned", len(res.Warned))
	}
	if w.onRun != nil {
		w.onRun(SweepRun{JobID: job.ID, Result: res})
	}
	return nil
}

// Timeout: a sweep over a large backlog commits in batches and may take
// long; River's default (a minute) would cut it short.
func (w *sweepWorker) Timeout(*river.Job[SweepArgs]) time.Duration { return 30 * time.Minute }

// RejudgeArgs re-judges the stored reclaim deadline of every owned record
// of a pool after its rules changed to RuleVersion.
type RejudgeArgs struct {
	PoolID      uuid.UUID `json:"pool_id"`
	RuleVersion int       `json:"rule_version"`
}

func (RejudgeArgs) Kind() string { return "pool_rejudge" }

// InsertOpts: one job per pool and rule version; a retry of the same
// change never doubles it.
func (RejudgeArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type rejudgeWorker struct {
	river.WorkerDefaults[RejudgeArgs]
	st    *store.Store
	pools *pool.Service
}

// Work re-judges under the pool's current rules. A job for a version
// older than the pool's is superseded: the job the newer change enqueued
// (in the same transaction as that change) does the work.
func (w *rejudgeWorker) Work(ctx context.Context, job *river.Job[RejudgeArgs]) error {
	pl, err := w.st.Reader.Pool.Get(ctx, job.Args.PoolID)
	if ent.IsNotFound(err) {
		// The pool is gone: nothing to re-judge.
		return river.JobCancel(err)
	}
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	if pl.RuleVersion > job.Args.RuleVersion {
		return nil
	}
	return w.pools.Rejudge(ctx, job.Args.PoolID)
}

func (w *rejudgeWorker) Timeout(*river.Job[RejudgeArgs]) time.Duration { return 30 * time.Minute }

// EnqueueRejudge implements pool.RejudgeQueue.
func (j *Jobs) EnqueueRejudge(ctx context.Context, tx *ent.Tx, poolID uuid.UUID, ruleVersion int) error {
	return j.Enqueue(ctx, tx, RejudgeArgs{PoolID: poolID, RuleVersion: ruleVersion})
}
