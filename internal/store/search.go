package store

import (
	"context"
	"fmt"

	"github.com/shoalcrm/shoal/internal/search"
)

// migrateSearch fills the substring-search index (search_grams) once for
// the records a database held before the index existed; see
// search.Backfill.
func (s *Store) migrateSearch(ctx context.Context) error {
	if err := search.Backfill(ctx, s.Client); err != nil {
		return fmt.Errorf("search index: %w", err)
	}
	return nil
}
