package imports

import (
	"context"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
)

// StepOnce works one batch of an import, as a job cut short after it
// would have.
func (s *Service) StepOnce(ctx context.Context, id uuid.UUID) (bool, error) {
	pl, err := s.plan(ctx, id)
	if err != nil || pl == nil {
		return true, err
	}
	return s.step(ctx, pl)
}

// SetBeforeBatch runs fn in each batch's transaction between its
// duplicate look-up and its multi-row insert (a concurrent writer).
func (s *Service) SetBeforeBatch(fn func(context.Context, *ent.Tx)) { s.beforeBatch = fn }
