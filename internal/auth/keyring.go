package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/signingkey"
	"github.com/shoalcrm/shoal/internal/store"
)

// Token settings. Access tokens are short-lived because they are checked
// without a database round trip for the token itself.
const (
	Issuer         = "shoal"
	Audience       = "shoal-api"
	AccessTokenTTL = 15 * time.Minute
	tokenLeeway    = 30 * time.Second
)

// ErrInvalidToken is returned for any token that does not verify. The
// reason is deliberately not distinguished to the caller.
var ErrInvalidToken = errors.New("invalid token")

// Keyring holds the Ed25519 keys that sign and verify access tokens. Keys
// live in the database, so every replica verifies every replica's tokens;
// the newest key signs.
type Keyring struct {
	store *store.Store

	mu         sync.RWMutex
	signer     *ent.SigningKey
	verifiers  map[string]ed25519.PublicKey
	lastReload time.Time
	reloading  atomic.Bool

	// now is the wall clock tokens are checked against (tests move it).
	now      func() time.Time
	verified verifiedTokens
}

// keyRefresh is how often a keyring in use re-reads the keys, so that a key
// installed by another replica takes over signing here too, and a key
// retired long ago stops verifying.
var keyRefresh = time.Minute

// NewKeyring loads the signing keys. When seed (a base64 Ed25519 seed from
// configuration) is given, that key is stored and signs from now on;
// otherwise a key is generated on first start and kept in the database.
func NewKeyring(ctx context.Context, st *store.Store, seed string) (*Keyring, error) {
	k := &Keyring{store: st, now: time.Now}
	if seed != "" {
		raw, err := base64.StdEncoding.DecodeString(seed)
		if err != nil || len(raw) != ed25519.SeedSize {
			return nil, errors.New("SHOAL_JWT_SIGNING_KEY must be a base64-encoded 32-byte Ed25519 seed")
		}
		if err := k.install(ctx, ed25519.NewKeyFromSeed(raw)); err != nil {
			return nil, err
		}
	}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	if k.signer == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		if err := k.install(ctx, priv); err != nil {
			return nil, err
		}
		if err := k.reload(ctx); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

// install stores priv as the newest key and retires the others; they keep
// verifying until tokens they signed have expired.
func (k *Keyring) install(ctx context.Context, priv ed25519.PrivateKey) error {
	pub := priv.Public().(ed25519.PublicKey)
	kid := keyID(pub)
	return k.store.WithTx(ctx, func(tx *ent.Tx) error {
		existing, err := tx.SigningKey.Get(ctx, kid)
		switch {
		case err == nil && existing.RetiredAt == nil:
			return nil
		case err != nil && !ent.IsNotFound(err):
			return fmt.Errorf("load signing key: %w", err)
		}
		now := time.Now().UTC()
		if _, err := tx.SigningKey.Update().Where(signingkey.RetiredAtIsNil(), signingkey.IDNEQ(kid)).SetRetiredAt(now).Save(ctx); err != nil {
			return fmt.Errorf("retire old signing keys: %w", err)
		}
		if ent.IsNotFound(err) {
			return tx.SigningKey.Create().SetID(kid).SetPublicKey(pub).SetPrivateKey(priv.Seed()).SetCreatedAt(now).Exec(ctx)
		}
		return tx.SigningKey.UpdateOneID(kid).ClearRetiredAt().Exec(ctx)
	})
}

// reload reads the keys that may still verify a live token.
func (k *Keyring) reload(ctx context.Context) error {
	cutoff := time.Now().Add(-AccessTokenTTL - tokenLeeway)
	keys, err := k.store.Reader.SigningKey.Query().
		Where(signingkey.Or(signingkey.RetiredAtIsNil(), signingkey.RetiredAtGT(cutoff))).
		All(ctx)
	if err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].CreatedAt.After(keys[j].CreatedAt) })
	verifiers := make(map[string]ed25519.PublicKey, len(keys))
	var signer *ent.SigningKey
	for _, key := range keys {
		verifiers[key.ID] = ed25519.PublicKey(key.PublicKey)
		if signer == nil && key.RetiredAt == nil {
			signer = key
		}
	}
	k.mu.Lock()
	k.signer, k.verifiers, k.lastReload = signer, verifiers, time.Now()
	k.mu.Unlock()
	return nil
}

// Claims are the claims of a Shoal access token.
type Claims struct {
	jwt.RegisteredClaims
	// Epoch is the user's session epoch when the token was issued: moving
	// the epoch (new password, new role, deactivation) ends every access
	// token issued before, without a deny list.
	Epoch int `json:"sep"`
	// SessionID is the refresh-token family the token belongs to, so that
	// "end all my other sessions" knows which one to keep.
	SessionID string `json:"sid,omitempty"`
}

// AccessToken is what a verified access token says.
type AccessToken struct {
	UserID    uuid.UUID
	Epoch     int
	SessionID uuid.UUID // uuid.Nil when the token names no session
}

// Sign issues an access token for the user outside any session, with epoch
// zero. Real logins use SignSession.
func (k *Keyring) Sign(userID uuid.UUID) (string, time.Duration, error) {
	return k.SignSession(userID, 0, uuid.Nil)
}

// SignSession issues an access token for the user's session (refresh-token
// family) at the user's current session epoch, valid for AccessTokenTTL by
// the real wall clock.
func (k *Keyring) SignSession(userID uuid.UUID, epoch int, session uuid.UUID) (string, time.Duration, error) {
	k.mu.RLock()
	signer := k.signer
	k.mu.RUnlock()
	if signer == nil {
		return "", 0, errors.New("no signing key")
	}
	now := time.Now()
	claims := Claims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    Issuer,
		Audience:  jwt.ClaimStrings{Audience},
		Subject:   userID.String(),
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(AccessTokenTTL)),
		ID:        uuid.NewString(),
	}, Epoch: epoch}
	if session != uuid.Nil {
		claims.SessionID = session.String()
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = signer.ID
	s, err := tok.SignedString(ed25519.NewKeyFromSeed(signer.PrivateKey))
	if err != nil {
		return "", 0, fmt.Errorf("sign token: %w", err)
	}
	return s, AccessTokenTTL, nil
}

// Verify checks an access token: the algorithm is pinned to EdDSA, the key
// must be known by kid, exp is required, iss and aud must be Shoal's. It
// returns the user id. A token must carry iat, and may not live longer
// than AccessTokenTTL (exp - iat): a token minted with a long lifetime, by
// a leaked key or a bug, is refused rather than honoured for days.
//
// A client sends the same token with every request for as long as it
// lives, and checking its Ed25519 signature was about a twelfth of the
// CPU a claim costs. So a token that verified is remembered (by its
// SHA-256) until it expires: a later check of the same bytes only looks
// at the clock and at whether its key is still trusted, which is all that
// can have changed.
func (k *Keyring) Verify(ctx context.Context, token string) (uuid.UUID, error) {
	t, err := k.VerifyToken(ctx, token)
	return t.UserID, err
}

// VerifyToken is Verify returning everything the token says.
func (k *Keyring) VerifyToken(ctx context.Context, token string) (AccessToken, error) {
	sum := sha256.Sum256([]byte(token))
	now := k.now()
	if v, ok := k.verified.get(sum); ok {
		// Only tokens that passed every check below are in the cache,
		// the lifetime check included.
		if now.Before(v.until) && k.lookup(ctx, v.kid) != nil {
			return v.token, nil
		}
		return AccessToken{}, fmt.Errorf("%w: expired or its key retired", ErrInvalidToken)
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Audience),
		jwt.WithLeeway(tokenLeeway),
		jwt.WithTimeFunc(k.now),
	)
	var claims Claims
	var kid string
	_, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("no kid")
		}
		if pub := k.lookup(ctx, kid); pub != nil {
			return pub, nil
		}
		return nil, errors.New("unknown kid")
	})
	if err != nil {
		return AccessToken{}, fmt.Errorf("%w: %v", ErrInvalidToken, err)
	}
	if claims.IssuedAt == nil {
		return AccessToken{}, fmt.Errorf("%w: no iat", ErrInvalidToken)
	}
	if claims.ExpiresAt.Sub(claims.IssuedAt.Time) > AccessTokenTTL {
		return AccessToken{}, fmt.Errorf("%w: lifetime longer than %s", ErrInvalidToken, AccessTokenTTL)
	}
	at := AccessToken{Epoch: claims.Epoch}
	if at.UserID, err = uuid.Parse(claims.Subject); err != nil {
		return AccessToken{}, fmt.Errorf("%w: bad subject", ErrInvalidToken)
	}
	if claims.SessionID != "" {
		if at.SessionID, err = uuid.Parse(claims.SessionID); err != nil {
			return AccessToken{}, fmt.Errorf("%w: bad sid", ErrInvalidToken)
		}
	}
	// The parser accepts a token until exp plus the leeway; so does the
	// cache. iat and nbf, checked once, stay in the past.
	k.verified.put(sum, verifiedToken{token: at, kid: kid, until: claims.ExpiresAt.Add(tokenLeeway)}, now)
	return at, nil
}

// lookup finds a verifying key. It reloads the keys from the database
// every keyRefresh, and (at most once a second) when the kid is unknown,
// since another replica may have added it.
func (k *Keyring) lookup(ctx context.Context, kid string) ed25519.PublicKey {
	k.mu.RLock()
	pub, ok := k.verifiers[kid]
	age := time.Since(k.lastReload)
	k.mu.RUnlock()
	if (age > keyRefresh || (!ok && age > time.Second)) && k.reloading.CompareAndSwap(false, true) {
		err := k.reload(ctx)
		k.reloading.Store(false)
		if err == nil {
			k.mu.RLock()
			pub = k.verifiers[kid]
			k.mu.RUnlock()
		}
	}
	return pub
}

// JWK is one public key in JWK form (RFC 8037).
type JWK struct {
	Kty, Crv, X, Kid, Alg, Use string
}

// PublicKeys returns the keys that currently verify tokens, newest first.
func (k *Keyring) PublicKeys() []JWK {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]JWK, 0, len(k.verifiers))
	for kid, pub := range k.verifiers {
		out = append(out, JWK{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "EdDSA", Use: "sig"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Kid < out[j].Kid })
	return out
}
