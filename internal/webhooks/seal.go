package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// errSealedShort is wrapped when a sealed value cannot even hold a nonce.
var errSealedShort = errors.New("sealed value is too short")

// Sealer encrypts webhook signing secrets at rest. Unlike passwords they
// cannot be hashed — Shoal needs them back to sign each delivery — so a
// database dump without the key must not reveal them.
type Sealer struct{ aead cipher.AEAD }

// NewSealer returns a Sealer using AES-256-GCM with key, which must be 32
// bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("webhooks: sealing key must be 32 bytes, got %d", len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhooks: sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhooks: sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain, returning a random 12-byte nonce followed by the
// ciphertext. context is authenticated but not stored: callers pass the
// webhook's id so a sealed secret copied to another row fails to open.
func (s *Sealer) Seal(plain string, context []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("webhooks: seal: %w", err)
	}
	return s.aead.Seal(nonce, nonce, []byte(plain), context), nil
}

// Open reverses Seal; it fails when sealed was altered, was sealed with
// another key or under another context.
func (s *Sealer) Open(sealed, context []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return "", fmt.Errorf("webhooks: open: %w", errSealedShort)
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], context)
	if err != nil {
		return "", fmt.Errorf("webhooks: open: %w", err)
	}
	return string(plain), nil
}
