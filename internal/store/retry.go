package store

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shoalcrm/shoal/ent"
)

// retryable reports whether a PostgreSQL transaction failed only because of
// another one (a deadlock or serialization failure) and can simply be run
// again.
func retryable(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && (pg.Code == "40001" || pg.Code == "40P01")
}

// Retryable reports whether err is a PostgreSQL deadlock or serialization
// failure: the transaction that failed with it may simply be run again.
func Retryable(err error) bool { return retryable(err) }

// WithRetryTx is WithTx, run again (up to five times) when PostgreSQL
// aborts it for a deadlock or serialization failure. fn must be safe to
// re-run: it should only act through tx.
func (s *Store) WithRetryTx(ctx context.Context, fn func(tx *ent.Tx) error) error {
	var err error
	for range 5 {
		if err = s.WithTx(ctx, fn); err == nil || !retryable(err) {
			return err
		}
	}
	return err
}

// IsUniqueViolation reports whether err is a unique-index violation, on
// either engine.
func IsUniqueViolation(err error) bool {
	return ent.IsConstraintError(err)
}
