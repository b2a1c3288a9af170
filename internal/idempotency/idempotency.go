// Package idempotency stores the answers of requests made with an
// Idempotency-Key, so that a retry gets the first answer back instead of
// acting twice (docs/idempotency.md).
//
// Atomicity. The answer is written in the same transaction as the
// request's change: the HTTP layer runs a keyed request under a
// store.Hold, which keeps the request's first write transaction open until
// the handler has answered, then writes the answer (Write) and commits.
// A crash therefore leaves either both (a retry replays the answer) or
// neither (a retry runs the request now). A request that wrote nothing (a
// read-only POST such as previewPoolRules, or one refused before it
// changed anything) has its answer stored after the fact (WriteAlone), if
// it succeeded; a refusal changed nothing and is not stored, so the key may
// be retried.
//
// Secrets. Some answers carry secrets (login's tokens, createApiKey's
// key). Nothing is stored in the clear: a record's id is an HMAC of (caller,
// key) under a server secret, its fingerprint an HMAC of the request, and
// its answer is sealed with AES-GCM under a key derived from the
// Idempotency-Key itself and the server secret. The Idempotency-Key is
// never stored, so a database dump alone cannot open an answer.
package idempotency

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/idempotencyrecord"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/store"
)

// TTL is how long an answer is kept and replayed.
const TTL = 24 * time.Hour

// MaxKeyLen bounds an Idempotency-Key, in characters (all ASCII).
const MaxKeyLen = 255

// ValidKey reports whether k is 1 to 255 printable ASCII characters, not
// starting or ending with a space (HTTP would trim those).
func ValidKey(k string) bool {
	if len(k) == 0 || len(k) > MaxKeyLen || k[0] == ' ' || k[len(k)-1] == ' ' {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x20 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

// Service keeps answers.
type Service struct {
	st     *store.Store
	clock  clock.Clock
	secret []byte

	mu       sync.Mutex
	inflight map[string]struct{}
}

// New returns the service over st; its secret is created on first start
// and kept in the database (settings), like the cursor key.
func New(ctx context.Context, st *store.Store, clk clock.Clock) (*Service, error) {
	secret, err := st.LoadKey(ctx, "idempotency_key")
	if err != nil {
		return nil, err
	}
	if clk == nil {
		clk = clock.Real{}
	}
	return &Service{st: st, clock: clk, secret: secret, inflight: map[string]struct{}{}}, nil
}

// Key is one request's identity under its Idempotency-Key.
type Key struct {
	id          string // hex HMAC of (caller, key)
	fingerprint string // hex HMAC of the request
	seal        []byte // AES-256 key of the answer
	// expired is set by Find when an expired record holds the id: Write
	// replaces it (and needs no DELETE otherwise).
	expired bool
}

func (s *Service) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.secret)
	for _, p := range parts {
		// Length-prefixed, so that no two part lists collide.
		fmt.Fprintf(m, "%d:", len(p))
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// KeyOf is the identity of a request by caller (a principal's type and id,
// or "anonymous") with key, and its fingerprint: method, path, query and
// body.
func (s *Service) KeyOf(caller, key, method, path, query string, body []byte) Key {
	sum := sha256.Sum256(body)
	id := hex.EncodeToString(s.mac("id", caller, key))
	return Key{
		id:          id,
		fingerprint: hex.EncodeToString(s.mac("request", id, method, path, query, string(sum[:]))),
		seal:        s.mac("seal", caller, key),
	}
}

// Answer is a response as sent: status, the header fields that matter
// (Stored), and body.
type Answer struct {
	Status int               `json:"s"`
	Header map[string]string `json:"h,omitempty"`
	Body   []byte            `json:"b,omitempty"`
}

// Stored are the header fields an answer keeps: what describes the body
// or the resource. Per-request fields (request id, rate limits) are not
// part of it.
var Stored = []string{"Content-Type", "Content-Language", "Cache-Control", "Location", "ETag", "Retry-After", "WWW-Authenticate"}

// AnswerOf takes the status, stored header fields and body of a response.
func AnswerOf(status int, h http.Header, body []byte) Answer {
	a := Answer{Status: status, Body: body}
	for _, name := range Stored {
		if v := h.Get(name); v != "" {
			if a.Header == nil {
				a.Header = map[string]string{}
			}
			a.Header[name] = v
		}
	}
	return a
}

// Begin marks k in flight in this process; ok is false when it already
// is (a concurrent duplicate). release ends it.
func (s *Service) Begin(k Key) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.inflight[k.id]; busy {
		return nil, false
	}
	s.inflight[k.id] = struct{}{}
	return func() {
		s.mu.Lock()
		delete(s.inflight, k.id)
		s.mu.Unlock()
	}, true
}

// ErrMismatch means the key was used for another request.
var ErrMismatch = errors.New("idempotency key used for another request")

// Find returns the stored answer of k, nil if there is none (or it
// expired), or ErrMismatch if the key's record is of another request.
func (s *Service) Find(ctx context.Context, k *Key) (*Answer, error) {
	rec, err := s.st.Reader.IdempotencyRecord.Get(ctx, k.id)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load idempotency record: %w", err)
	}
	if !s.clock.Now().Before(rec.ExpiresAt) {
		k.expired = true
		return nil, nil
	}
	if !hmac.Equal([]byte(rec.Fingerprint), []byte(k.fingerprint)) {
		return nil, ErrMismatch
	}
	a, err := open(*k, rec.Answer)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Write stores a for k inside tx, the request's own transaction. An
// expired record of the same key (seen by Find) is replaced; a live one fails the
// transaction with a unique violation (another replica's request with the
// same key committed first).
func (s *Service) Write(ctx context.Context, tx *ent.Tx, k Key, a Answer) error {
	sealed, err := seal(k, a)
	if err != nil {
		return err
	}
	now := s.clock.Now().UTC()
	if k.expired {
		if _, err := tx.IdempotencyRecord.Delete().Where(idempotencyrecord.ID(k.id), idempotencyrecord.ExpiresAtLTE(now)).
			Exec(ctx); err != nil {
			return fmt.Errorf("replace expired idempotency record: %w", err)
		}
	}
	err = tx.IdempotencyRecord.Create().SetID(k.id).SetFingerprint(k.fingerprint).SetStatus(a.Status).
		SetAnswer(sealed).SetCreatedAt(now).SetExpiresAt(now.Add(TTL)).Exec(ctx)
	if err != nil {
		return fmt.Errorf("store idempotency record: %w", err)
	}
	return nil
}

// WriteAlone stores a for k in a transaction of its own: for a request
// that wrote nothing, so that there is no change to share a transaction
// with. A record some other request stored first is kept.
func (s *Service) WriteAlone(ctx context.Context, k Key, a Answer) error {
	ctx = store.WithoutHold(store.WithTxObserver(ctx, nil))
	err := s.st.WithRetryTx(ctx, func(tx *ent.Tx) error { return s.Write(ctx, tx, k, a) })
	if store.IsUniqueViolation(err) {
		return nil
	}
	return err
}

// Purge deletes expired records and reports how many.
func (s *Service) Purge(ctx context.Context) (int, error) {
	var n int
	err := s.st.WithRetryTx(store.WithoutHold(store.WithTxObserver(ctx, nil)), func(tx *ent.Tx) error {
		var err error
		n, err = tx.IdempotencyRecord.Delete().Where(idempotencyrecord.ExpiresAtLTE(s.clock.Now().UTC())).Exec(ctx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("purge idempotency records: %w", err)
	}
	return n, nil
}

// seal encrypts a under k's key; the record's id and fingerprint are the
// additional data, so a sealed answer cannot be moved to another record.
func seal(k Key, a Answer) ([]byte, error) {
	plain, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode answer: %w", err)
	}
	aead, err := gcm(k)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, plain, []byte(k.id+k.fingerprint)), nil
}

func open(k Key, sealed []byte) (*Answer, error) {
	aead, err := gcm(k)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("idempotency record is corrupt")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(k.id+k.fingerprint))
	if err != nil {
		return nil, fmt.Errorf("open idempotency record: %w", err)
	}
	var a Answer
	if err := json.Unmarshal(plain, &a); err != nil {
		return nil, fmt.Errorf("decode idempotency record: %w", err)
	}
	return &a, nil
}

func gcm(k Key) (cipher.AEAD, error) {
	block, err := aes.NewCipher(k.seal)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
