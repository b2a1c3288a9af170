package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/shoalcrm/shoal/ent"
)

// LoadKey returns the 32-byte secret key kept in the settings row name,
// making it on first use. Every replica reads the same key: the first to
// start writes it, and a replica that lost that race reads the winner's.
// The keys kept this way (cursor signing, Idempotency-Key answers, webhook
// secrets) guard against tampering from outside the database, not
// against someone who can read it.
func (s *Store) LoadKey(ctx context.Context, name string) ([]byte, error) {
	err := s.WithTx(ctx, func(tx *ent.Tx) error {
		_, err := tx.Setting.Get(ctx, name)
		if !ent.IsNotFound(err) {
			return err
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		return tx.Setting.Create().SetID(name).SetValue(map[string]any{"key": hex.EncodeToString(key)}).
			OnConflict().DoNothing().Exec(ctx)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	row, err := s.Client.Setting.Get(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	hexKey, _ := row.Value["key"].(string)
	key, err := hex.DecodeString(hexKey)
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("%s is corrupt", name)
	}
	return key, nil
}
