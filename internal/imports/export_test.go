package imports

import (
	"context"

	"github.com/google/uuid"
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
