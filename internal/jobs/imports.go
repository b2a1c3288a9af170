package jobs

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/imports"
)

// ImportArgs works one bulk import (internal/imports), enqueued in the
// transaction that creates it.
type ImportArgs struct {
	ImportID uuid.UUID `json:"import_id"`
}

func (ImportArgs) Kind() string { return "import" }

// InsertOpts: one job per import.
func (ImportArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

type importWorker struct {
	river.WorkerDefaults[ImportArgs]
	imports *imports.Service
}

// Work runs the import to its end. One cut short (a crash, a retry after
// an error) resumes after its last committed batch.
func (w *importWorker) Work(ctx context.Context, job *river.Job[ImportArgs]) error {
	if w.imports == nil {
		return errors.New("import: no import service on this job queue")
	}
	return w.imports.Run(ctx, job.Args.ImportID)
}

// Timeout: a file may hold many thousand rows, written in batches.
func (w *importWorker) Timeout(*river.Job[ImportArgs]) time.Duration { return time.Hour }

// EnqueueImport implements imports.Queue.
func (j *Jobs) EnqueueImport(ctx context.Context, tx *ent.Tx, id uuid.UUID) error {
	return j.Enqueue(ctx, tx, ImportArgs{ImportID: id})
}
