// Package jobs runs Shoal's background and periodic work on River
// (github.com/riverqueue/river): the sweep, and the re-judging of stored
// deadlines after a pool's rules change. River's tables live in Shoal's
// database (Store.Migrate applies them), so a job is inserted in the
// transaction of the change that calls for it (Enqueue) and survives a
// crash with it; River elects one leader among the replicas (it alone
// enqueues periodic jobs), retries failed jobs and keeps unique jobs
// unique. See docs/jobs.md for how to add a job.
package jobs

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"entgo.io/ent/dialect"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverdatabasesql"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivertype"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/handover"
	"github.com/shoalcrm/shoal/internal/imports"

	"github.com/shoalcrm/shoal/internal/idempotency"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

// MinPollInterval is the shortest fetch poll interval allowed: River
// polls the database that often for jobs (on SQLite, its only way to see
// new ones).
const MinPollInterval = 100 * time.Millisecond

// DefaultPollInterval is how often River looks for new jobs when nothing
// else says.
const DefaultPollInterval = time.Second

// Config configures New.
type Config struct {
	Logger *slog.Logger
	// SweepEvery is the period of the sweep; 0 means no periodic sweep.
	SweepEvery time.Duration
	// PollInterval is how often a client looks for jobs (default
	// DefaultPollInterval, at least MinPollInterval). On PostgreSQL new
	// jobs are also announced by NOTIFY, so it matters little there.
	PollInterval time.Duration
	// OnSweep, if set, hears every sweep the periodic job ran (tests,
	// metrics).
	OnSweep func(SweepRun)
	// ID names the client among the replicas (River's client id); empty
	// means a random one.
	ID string
	// Handover works leaver handover runs (set by internal/app; a queue
	// without it fails their jobs, which River retries).
	Handover *handover.Service
	// Imports works bulk imports (set by internal/app, likewise).
	Imports *imports.Service

	// Webhooks sends webhook deliveries and dispatches new events to
	// them (set by internal/app; nil: deliveries fail, River retries).
	Webhooks *webhooks.Service
	// WebhookDispatchEvery is the period of the dispatch (0: the
	// default, DefaultDispatchEvery; negative: none, tests dispatch by
	// hand).
	WebhookDispatchEvery time.Duration
	// DeliveryWorkers is how many deliveries run at once (0: the
	// default, DefaultDeliveryWorkers).
	DeliveryWorkers int

	// Idempotency is purged of expired answers every hour (set by
	// internal/app; nil: no purge).
	Idempotency *idempotency.Service
}

// SweepRun is one periodic sweep that ran.
type SweepRun struct {
	// JobID is River's id of the sweep's job.
	JobID  int64
	Result *pool.SweepResult
}

// client is what Jobs needs of a River client, whatever its driver's
// transaction type.
type client interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Subscribe(kinds ...river.EventKind) (<-chan *river.Event, func())
}

// Jobs is Shoal's job queue over one store.
type Jobs struct {
	st  *store.Store
	log *slog.Logger
	// worker fetches and works jobs; on SQLite it also inserts them.
	worker client
	// insert inserts a job in a transaction of the store, and lists jobs
	// (over the store's pool, so also once the worker stopped): on SQLite
	// the worker itself (riversqlite takes an *sql.Tx), on PostgreSQL an
	// insert-only client on riverdatabasesql, since ent runs on
	// database/sql (pgx's stdlib) while the worker runs on a pgx pool.
	insert *river.Client[*sql.Tx]
	// pgx is the worker's pool on PostgreSQL (nil on SQLite).
	pgx *pgxpool.Pool
}

// New builds the job queue over st, with every worker registered (see
// register). It does not start working: see Start.
func New(ctx context.Context, st *store.Store, pools *pool.Service, cfg Config) (*Jobs, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.PollInterval < MinPollInterval {
		return nil, fmt.Errorf("job poll interval %s is under the minimum %s", cfg.PollInterval, MinPollInterval)
	}
	workers := river.NewWorkers()
	register(workers, st, pools, cfg)
	rc := &river.Config{
		ID:                cfg.ID,
		Logger:            riverLogger(ctx, cfg.Logger),
		FetchPollInterval: cfg.PollInterval,
		FetchCooldown:     MinPollInterval,
		Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 4},
			QueueWebhooks: {MaxWorkers: cmp.Or(cfg.DeliveryWorkers, DefaultDeliveryWorkers)}},
		Workers:      workers,
		PeriodicJobs: periodic(cfg),
	}
	j := &Jobs{st: st, log: cfg.Logger}
	if st.Dialect != dialect.Postgres {
		// River shares the store's one writer connection: see
		// docs/jobs.md for why and what it costs. It polls rather than
		// listens: riversqlite's listener would read the writer
		// connection every 50 ms.
		rc.PollOnly = true
		c, err := river.NewClient(riversqlite.New(st.DB()), rc)
		if err != nil {
			return nil, fmt.Errorf("job queue: %w", err)
		}
		j.worker, j.insert = c, c
		return j, nil
	}
	pgx, err := pgxpool.New(ctx, st.PostgresURL())
	if err != nil {
		return nil, fmt.Errorf("job queue pool: %w", err)
	}
	c, err := river.NewClient(riverpgxv5.New(pgx), rc)
	if err != nil {
		pgx.Close()
		return nil, fmt.Errorf("job queue: %w", err)
	}
	// Insert-only: no queues, never started. Its inserts NOTIFY the
	// workers in the same transaction.
	ins, err := river.NewClient(riverdatabasesql.New(st.DB()), &river.Config{Logger: rc.Logger, Workers: workers})
	if err != nil {
		pgx.Close()
		return nil, fmt.Errorf("job queue inserts: %w", err)
	}
	j.worker, j.insert, j.pgx = c, ins, pgx
	return j, nil
}

// Start starts working jobs (and, on the leader, enqueuing periodic ones)
// until Stop.
func (j *Jobs) Start(ctx context.Context) error {
	if err := j.worker.Start(ctx); err != nil {
		return fmt.Errorf("start job queue: %w", err)
	}
	return nil
}

// Stop stops fetching jobs and waits for running ones to finish, or for
// ctx to end, whichever comes first; a job cut short is retried later (by
// River's rescuer) on this or another replica. It also closes the
// PostgreSQL pool, so the Jobs cannot be started again.
func (j *Jobs) Stop(ctx context.Context) error {
	err := j.worker.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		err = fmt.Errorf("stop job queue: running jobs did not finish: %w", err)
	}
	if j.pgx != nil {
		j.pgx.Close()
	}
	return err
}

// Enqueue inserts a job in the caller's transaction: it runs once the
// transaction commits, and never if it rolls back. tx must be a
// transaction body's argument (of Store.WithTx).
func (j *Jobs) Enqueue(ctx context.Context, tx *ent.Tx, args river.JobArgs) error {
	_, err := j.enqueue(ctx, tx, args)
	return err
}

func (j *Jobs) enqueue(ctx context.Context, tx *ent.Tx, args river.JobArgs) (*rivertype.JobInsertResult, error) {
	stx, ok := j.st.SQLTx(tx)
	if !ok {
		return nil, errors.New("enqueue job: not a transaction of the store")
	}
	res, err := j.insert.InsertTx(ctx, stx, args, nil)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s job: %w", args.Kind(), err)
	}
	return res, nil
}

// pendingStates are the states of a job not finished yet.
var pendingStates = []rivertype.JobState{
	rivertype.JobStateAvailable, rivertype.JobStatePending, rivertype.JobStateRunning,
	rivertype.JobStateRetryable, rivertype.JobStateScheduled,
}

// Pending lists the jobs of kind (any kind if "") not finished yet.
func (j *Jobs) Pending(ctx context.Context, kind string) ([]*rivertype.JobRow, error) {
	p := river.NewJobListParams().States(pendingStates...).First(1000)
	if kind != "" {
		p = p.Kinds(kind)
	}
	res, err := j.insert.JobList(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return res.Jobs, nil
}

// List lists the jobs of kind in any state, oldest first.
func (j *Jobs) List(ctx context.Context, kind string) ([]*rivertype.JobRow, error) {
	res, err := j.insert.JobList(ctx, river.NewJobListParams().Kinds(kind).First(10000))
	if err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return res.Jobs, nil
}

// RunScheduledNow makes every job of kind scheduled for later (a snoozed
// or retryable job) available now. It is for tests, whose clock has moved
// past the time the job waits for.
func (j *Jobs) RunScheduledNow(ctx context.Context, kind string) error {
	res, err := j.insert.JobList(ctx, river.NewJobListParams().Kinds(kind).
		States(rivertype.JobStateScheduled, rivertype.JobStateRetryable).First(10000))
	if err != nil {
		return fmt.Errorf("list jobs: %w", err)
	}
	for _, job := range res.Jobs {
		if _, err := j.insert.JobRetry(ctx, job.ID); err != nil {
			return fmt.Errorf("retry job %d: %w", job.ID, err)
		}
	}
	return nil
}

// Drain waits until no job due now is left (available, running, or
// retryable): the queue is worked to completion. The Jobs must be started.
// It is for tests; jobs scheduled for later (periodic ones) are not
// waited for.
func (j *Jobs) Drain(ctx context.Context) error {
	events, cancel := j.worker.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed, river.EventKindJobCancelled, river.EventKindJobSnoozed)
	defer cancel()
	for {
		jobs, err := j.Pending(ctx, "")
		if err != nil {
			return err
		}
		due := 0
		for _, job := range jobs {
			if job.State != rivertype.JobStateScheduled || !job.ScheduledAt.After(time.Now()) {
				due++
			}
		}
		if due == 0 {
			return nil
		}
		// A job's end is announced; an insert by another process is not,
		// so look again now and then.
		t := time.NewTimer(MinPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("drain jobs: %d still due: %w", due, ctx.Err())
		case <-events:
		case <-t.C:
		}
		t.Stop()
	}
}

// riverLogger is River's logger: log's, but at warnings and above unless
// log shows debug lines. River logs its routine (clients started, job
// counts every few seconds) at info, which would fill an operator's log.
func riverLogger(ctx context.Context, log *slog.Logger) *slog.Logger {
	log = log.With(slog.String("component", "jobs"))
	if log.Enabled(ctx, slog.LevelDebug) {
		return log
	}
	return slog.New(minLevel{Handler: log.Handler(), min: slog.LevelWarn})
}

// minLevel drops records under min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
