package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/handover"
)

// HandoverArgs works one leaver handover run (internal/handover), enqueued
// in the transaction that creates the run.
type HandoverArgs struct {
	HandoverID uuid.UUID `json:"handover_id"`
}

func (HandoverArgs) Kind() string { return "handover" }

// InsertOpts: one job per run.
func (HandoverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type handoverWorker struct {
	river.WorkerDefaults[HandoverArgs]
	runs *handover.Service
}

// Work runs the handover to its end. A run cut short (a crash, a retry
// after an error) resumes where its last committed batch left it.
func (w *handoverWorker) Work(ctx context.Context, job *river.Job[HandoverArgs]) error {
	if w.runs == nil {
		return errors.New("handover: no handover service on this job queue")
	}
	return w.runs.Run(ctx, job.Args.HandoverID)
}

// Timeout: a leaver may own thousands of records, moved in batches.
func (w *handoverWorker) Timeout(*river.Job[HandoverArgs]) time.Duration { return 30 * time.Minute }

// EnqueueHandover implements handover.Queue.
func (j *Jobs) EnqueueHandover(ctx context.Context, tx *ent.Tx, id uuid.UUID) error {
	return j.Enqueue(ctx, tx, HandoverArgs{HandoverID: id})
}
