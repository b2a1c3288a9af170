package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/apikey"
	"github.com/shoalcrm/shoal/ent/refreshtoken"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/store"
)

// RefreshTokenTTL is how long a login session lasts without being used.
const RefreshTokenTTL = 30 * 24 * time.Hour

// Config tunes authentication.
type Config struct {
	// APIKeyRate is the steady request rate allowed per API key (per
	// second) and APIKeyBurst the bucket size.
	APIKeyRate  float64
	APIKeyBurst int
	// UserRate and UserBurst are the same per logged-in user
	// (userbudget.go; zero means DefaultUserRate, DefaultUserBurst).
	UserRate  float64
	UserBurst int
	// Failed logins allowed per account and per client address within
	// LoginWindow before further attempts get 429.
	LoginFailuresPerAccount int
	LoginFailuresPerAddress int
	LoginWindow             time.Duration
}

// DefaultConfig is used for zero fields of Config.
var DefaultConfig = Config{
	APIKeyRate:              20,
	APIKeyBurst:             40,
	LoginFailuresPerAccount: 5,
	LoginFailuresPerAddress: 30,
	LoginWindow:             15 * time.Minute,
}

// Service authenticates callers and manages sessions and API keys.
type Service struct {
	store *store.Store
	keys  *Keyring
	cfg   Config

	accounts  *throttle
	addresses *throttle

	limiters sync.Map // API key id → *rate.Limiter
	lastUsed sync.Map // API key id → time.Time of the last lastUsedAt write

	userLimiters sync.Map // user id → *rate.Limiter (userbudget.go)
}

// NewService returns the authentication service.
func NewService(st *store.Store, keys *Keyring, cfg Config) *Service {
	d := DefaultConfig
	if cfg.APIKeyRate <= 0 {
		cfg.APIKeyRate = d.APIKeyRate
	}
	if cfg.APIKeyBurst <= 0 {
		cfg.APIKeyBurst = d.APIKeyBurst
	}
	if cfg.LoginFailuresPerAccount <= 0 {
		cfg.LoginFailuresPerAccount = d.LoginFailuresPerAccount
	}
	if cfg.LoginFailuresPerAddress <= 0 {
		cfg.LoginFailuresPerAddress = d.LoginFailuresPerAddress
	}
	if cfg.LoginWindow <= 0 {
		cfg.LoginWindow = d.LoginWindow
	}
	return &Service{
		store:     st,
		keys:      keys,
		cfg:       cfg,
		accounts:  newThrottle(cfg.LoginFailuresPerAccount, cfg.LoginWindow),
		addresses: newThrottle(cfg.LoginFailuresPerAddress, cfg.LoginWindow),
	}
}

// Keys returns the keyring that signs access tokens.
func (s *Service) Keys() *Keyring { return s.keys }

// TokenPair is what a login or refresh returns.
type TokenPair struct {
	AccessToken  string
	RefreshToken string
	ExpiresIn    time.Duration
}

// Errors of authentication. They say as little as possible on purpose.
var (
	errBadCredentials = apperr.New(apperr.Unauthenticated, "invalid_credentials", "email or password is wrong")
	errUnauthorized   = apperr.New(apperr.Unauthenticated, "unauthorized", "missing or invalid credentials")
	errRefreshInvalid = apperr.New(apperr.Unauthenticated, "invalid_refresh_token", "the refresh token is invalid or expired")
	errRefreshReused  = apperr.New(apperr.Unauthenticated, "refresh_token_reused", "the refresh token was already used; the session has been revoked")
)

// NormalizeEmail is how emails are compared: trimmed and lower-cased.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Login checks email and password and starts a session. Failed attempts are
// limited per account and per client address (apperr.RateLimited with
// RetryAfter); an unknown email costs the same as a wrong password. It
// returns the user so the caller can audit the login.
func (s *Service) Login(ctx context.Context, email, password, clientAddr string) (*TokenPair, *ent.User, error) {
	email = NormalizeEmail(email)
	now := time.Now()
	for _, check := range []struct {
		t   *throttle
		key string
	}{{s.accounts, email}, {s.addresses, clientAddr}} {
		if blocked, wait := check.t.blocked(check.key, now); blocked {
			return nil, nil, &apperr.Error{Kind: apperr.RateLimited, Code: "login_throttled",
				Message: "too many failed login attempts; retry later", RetryAfter: wait}
		}
	}
	u, err := s.store.Reader.User.Query().Where(user.Email(email)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		return nil, nil, fmt.Errorf("load user: %w", err)
	}
	hash := dummyHash()
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := VerifyPassword(password, hash)
	if err != nil {
		return nil, nil, fmt.Errorf("verify password: %w", err)
	}
	if u == nil || !ok || !u.Active {
		s.accounts.fail(email, now)
		s.addresses.fail(clientAddr, now)
		return nil, u, errBadCredentials
	}
	s.accounts.reset(email)
	pair, err := s.startSession(ctx, u.ID, uuid.Must(uuid.NewV7()))
	return pair, u, err
}

func (s *Service) startSession(ctx context.Context, userID, family uuid.UUID) (*TokenPair, error) {
	var pair *TokenPair
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		var err error
		pair, err = s.issue(ctx, tx, userID, family)
		return err
	})
	return pair, err
}

// issue creates the next refresh token of family and an access token.
func (s *Service) issue(ctx context.Context, tx *ent.Tx, userID, family uuid.UUID) (*TokenPair, error) {
	refresh, err := randomToken(32)
	if err != nil {
		return nil, err
	}
	if err := tx.RefreshToken.Create().
		SetUserID(userID).SetFamilyID(family).SetTokenHash(hashSecret(refresh)).
		SetExpiresAt(time.Now().Add(RefreshTokenTTL).UTC()).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store refresh token: %w", err)
	}
	access, ttl, err := s.keys.Sign(userID)
	if err != nil {
		return nil, err
	}
	return &TokenPair{AccessToken: access, RefreshToken: refresh, ExpiresIn: ttl}, nil
}

// Refresh exchanges a refresh token for a new pair. The token is used up;
// presenting a used token again revokes the whole family, because either
// the client or a thief holds a copy (OWASP's refresh token rotation).
func (s *Service) Refresh(ctx context.Context, token string) (*TokenPair, error) {
	var pair *TokenPair
	var reused bool
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		rt, err := store.ForUpdate(s.store, tx.RefreshToken.Query().Where(refreshtoken.TokenHash(hashSecret(token)))).Only(ctx)
		if ent.IsNotFound(err) {
			return errRefreshInvalid
		}
		if err != nil {
			return fmt.Errorf("load refresh token: %w", err)
		}
		now := time.Now().UTC()
		if rt.RevokedAt != nil || now.After(rt.ExpiresAt) {
			return errRefreshInvalid
		}
		if rt.UsedAt != nil {
			// Revoke the family, and commit that, then report the reuse.
			reused = true
			_, err := tx.RefreshToken.Update().Where(refreshtoken.FamilyID(rt.FamilyID), refreshtoken.RevokedAtIsNil()).
				SetRevokedAt(now).Save(ctx)
			return err
		}
		u, err := tx.User.Get(ctx, rt.UserID)
		if err != nil || !u.Active {
			return errRefreshInvalid
		}
		if err := tx.RefreshToken.UpdateOne(rt).SetUsedAt(now).Exec(ctx); err != nil {
			return fmt.Errorf("use refresh token: %w", err)
		}
		pair, err = s.issue(ctx, tx, rt.UserID, rt.FamilyID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if reused {
		return nil, errRefreshReused
	}
	return pair, nil
}

// Logout revokes the session (token family) the refresh token belongs to.
// Only the session's own user may end it; anything else looks like an
// unknown token.
func (s *Service) Logout(ctx context.Context, p *Principal, token string) error {
	return s.store.WithTx(ctx, func(tx *ent.Tx) error {
		rt, err := tx.RefreshToken.Query().Where(refreshtoken.TokenHash(hashSecret(token))).Only(ctx)
		if ent.IsNotFound(err) || (err == nil && (p == nil || p.Type != ActorUser || rt.UserID != p.ID)) {
			return errRefreshInvalid
		}
		if err != nil {
			return fmt.Errorf("load refresh token: %w", err)
		}
		_, err = tx.RefreshToken.Update().Where(refreshtoken.FamilyID(rt.FamilyID), refreshtoken.RevokedAtIsNil()).
			SetRevokedAt(time.Now().UTC()).Save(ctx)
		return err
	})
}

// RevokeUser ends every session and API key of a user, inside the caller's
// transaction (used when a user is deactivated).
func RevokeUser(ctx context.Context, tx *ent.Tx, userID uuid.UUID) error {
	now := time.Now().UTC()
	if _, err := tx.RefreshToken.Update().Where(refreshtoken.UserID(userID), refreshtoken.RevokedAtIsNil()).SetRevokedAt(now).Save(ctx); err != nil {
		return fmt.Errorf("revoke sessions: %w", err)
	}
	if _, err := tx.APIKey.Update().Where(apikey.CreatedBy(userID), apikey.RevokedAtIsNil()).SetRevokedAt(now).Save(ctx); err != nil {
		return fmt.Errorf("revoke api keys: %w", err)
	}
	return nil
}

// APIKeyPrefix starts every API key secret, so that keys are recognisable
// (and findable by secret scanners) wherever they leak.
const APIKeyPrefix = "shoal_"

// Authenticate turns a credential into a principal: an API key (it starts
// with APIKeyPrefix) or an access token. Users must still be active; keys
// must be unrevoked and unexpired. It returns apperr Unauthenticated.
func (s *Service) Authenticate(ctx context.Context, credential string) (*Principal, error) {
	if strings.HasPrefix(credential, APIKeyPrefix) {
		return s.authenticateKey(ctx, credential)
	}
	id, err := s.keys.Verify(ctx, credential)
	if err != nil {
		return nil, errUnauthorized
	}
	u, err := s.store.Reader.User.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	if !u.Active {
		return nil, errUnauthorized
	}
	return UserPrincipal(u), nil
}

// UserPrincipal is the principal of a user row.
func UserPrincipal(u *ent.User) *Principal {
	return &Principal{Type: ActorUser, ID: u.ID, Name: u.Name, Role: string(u.Role), TeamID: u.TeamID, TeamPath: u.TeamPath}
}

func (s *Service) authenticateKey(ctx context.Context, secret string) (*Principal, error) {
	k, err := s.store.Reader.APIKey.Query().Where(apikey.SecretHash(hashSecret(secret))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("load api key: %w", err)
	}
	now := time.Now()
	if k.RevokedAt != nil || (k.ExpiresAt != nil && !now.Before(*k.ExpiresAt)) {
		return nil, errUnauthorized
	}
	s.touch(ctx, k.ID, now)
	return &Principal{Type: ActorAPIKey, ID: k.ID, Name: k.Name, Scopes: k.Scopes, PoolID: k.PoolID, CreatedBy: k.CreatedBy}, nil
}

// touch records lastUsedAt at most once a minute per key, so a busy
// integration does not turn every read into a write.
func (s *Service) touch(ctx context.Context, id uuid.UUID, now time.Time) {
	if last, ok := s.lastUsed.Load(id); ok && now.Sub(last.(time.Time)) < time.Minute {
		return
	}
	s.lastUsed.Store(id, now)
	// Best effort: a failed write here must not fail the request.
	_ = s.store.Client.APIKey.UpdateOneID(id).SetLastUsedAt(now.UTC()).Exec(ctx)
}

// AllowKey takes one token from the API key's bucket. When the bucket is
// empty it reports how long to wait.
func (s *Service) AllowKey(id uuid.UUID) (bool, time.Duration) {
	v, _ := s.limiters.LoadOrStore(id, rate.NewLimiter(rate.Limit(s.cfg.APIKeyRate), s.cfg.APIKeyBurst))
	lim := v.(*rate.Limiter)
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}

func randomToken(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// hashSecret is how refresh tokens and API key secrets are stored. They are
// 256-bit random values, so a fast hash is enough: there is nothing to
// brute-force.
func hashSecret(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}
