package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/apikey"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/listing"
)

// Scopes an API key may be granted.
var Scopes = []string{"leads:read", "leads:write", "customers:read", "customers:write", "pools:assign", "events:read", "webhooks:manage",
	"products:read", "opportunities:read", "quotes:read"}

// NewAPIKey is a request to create a key.
type NewAPIKey struct {
	Name      string
	Scopes    []string
	PoolID    *uuid.UUID
	ExpiresAt *time.Time
}

// PoolChecker reports whether a pool exists and what kind it is; the pool
// engine provides it, so auth need not know about pools.
type PoolChecker func(ctx context.Context, id uuid.UUID) (kind string, err error)

// CreateAPIKey creates a key and returns it with its secret, which is not
// stored and cannot be shown again.
func (s *Service) CreateAPIKey(ctx context.Context, p *Principal, in NewAPIKey, pools PoolChecker) (*ent.APIKey, string, error) {
	if in.ExpiresAt != nil && !in.ExpiresAt.After(time.Now()) {
		return nil, "", apperr.Invalidf("body/expiresAt", "in_past", "expiresAt must be in the future")
	}
	if in.PoolID != nil && pools != nil {
		if _, err := pools(ctx, *in.PoolID); err != nil {
			if e, ok := apperr.As(err); ok && e.Kind == apperr.NotFound {
				return nil, "", apperr.Invalidf("body/poolId", "unknown_pool", "no such pool")
			}
			return nil, "", err
		}
	}
	random, err := randomToken(32)
	if err != nil {
		return nil, "", err
	}
	secret := APIKeyPrefix + random
	var expires *time.Time
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC()
		expires = &t
	}
	// Through WithTx, like every write a request makes, so that the
	// request's audit row commits with it.
	var k *ent.APIKey
	err = s.store.WithTx(ctx, func(tx *ent.Tx) error {
		var err error
		k, err = tx.APIKey.Create().
			SetName(in.Name).
			SetPrefix(secret[:len(APIKeyPrefix)+6]).
			SetSecretHash(hashSecret(secret)).
			SetScopes(in.Scopes).
			SetNillablePoolID(in.PoolID).
			SetNillableExpiresAt(expires).
			SetCreatedBy(p.CreatedByUser()).
			Save(ctx)
		if err != nil {
			return err
		}
		// Never the secret, its hash or its prefix.
		return events.Emit(ctx, tx, events.Event{Type: events.APIKeyCreated, SubjectKind: events.KindAPIKey, SubjectID: k.ID,
			Actor: p.EventActor(), OccurredAt: time.Now(), Data: events.APIKey{Name: k.Name, Scopes: k.Scopes,
				PoolID: k.PoolID, ExpiresAt: k.ExpiresAt}})
	})
	if err != nil {
		return nil, "", fmt.Errorf("create api key: %w", err)
	}
	return k, secret, nil
}

// CreatedByUser is the user accountable for what the principal creates.
func (p *Principal) CreatedByUser() uuid.UUID {
	if p.Type == ActorAPIKey {
		return p.CreatedBy
	}
	return p.ID
}

// apiKeyList orders keys by id: creation order.
var apiKeyList = listing.ByID(apikey.FieldID, func(k *ent.APIKey) uuid.UUID { return k.ID }, false)

// ListAPIKeys returns keys in creation order from the cursor on, and the
// cursor of the next page.
func (s *Service) ListAPIKeys(ctx context.Context, cursor *listing.Cursor, limit int) ([]*ent.APIKey, *listing.Cursor, error) {
	pg, err := apiKeyList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	keys, err := s.store.Reader.APIKey.Query().Where(predicate.APIKey(pg.Apply)).Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list api keys: %w", err)
	}
	return keys, pg.Next(keys), nil
}

// RevokeAPIKey revokes a key; its next request is refused.
func (s *Service) RevokeAPIKey(ctx context.Context, id uuid.UUID) error {
	// One transaction that fails when the key does not exist, so that a
	// revoke of nothing is not audited as a committed change.
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		now := time.Now().UTC()
		n, err := tx.APIKey.Update().Where(apikey.ID(id), apikey.RevokedAtIsNil()).SetRevokedAt(now).Save(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return events.Emit(ctx, tx, events.Event{Type: events.APIKeyRevoked, SubjectKind: events.KindAPIKey, SubjectID: id,
				Actor: ContextActor(ctx), OccurredAt: now, Data: events.None{}})
		}
		exists, err := tx.APIKey.Query().Where(apikey.ID(id)).Exist(ctx)
		if err != nil {
			return err
		}
		if !exists {
			return apperr.NotFoundf("api key")
		}
		return nil
	})
	if err != nil {
		if _, ok := apperr.As(err); ok {
			return err
		}
		return fmt.Errorf("revoke api key: %w", err)
	}
	return nil
}
