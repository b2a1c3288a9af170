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
	"github.com/shoalcrm/shoal/ent/predicate"
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
	// LoginsInFlight is how many password checks may run at once for one
	// account and for one client address; more get 429 at once.
	LoginsInFlight int
	// Gate bounds password hashing and verification process-wide; nil is
	// SharedGate.
	Gate *Gate
}

// DefaultConfig is used for zero fields of Config.
var DefaultConfig = Config{
	APIKeyRate:              20,
	APIKeyBurst:             40,
	LoginFailuresPerAccount: 5,
	LoginFailuresPerAddress: 30,
	LoginWindow:             15 * time.Minute,
	LoginsInFlight:          2,
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
	if cfg.LoginsInFlight <= 0 {
		cfg.LoginsInFlight = d.LoginsInFlight
	}
	if cfg.Gate == nil {
		cfg.Gate = SharedGate
	}
	return &Service{
		store:     st,
		keys:      keys,
		cfg:       cfg,
		accounts:  newThrottle(cfg.LoginFailuresPerAccount, cfg.LoginsInFlight, cfg.LoginWindow),
		addresses: newThrottle(cfg.LoginFailuresPerAddress, cfg.LoginsInFlight, cfg.LoginWindow),
	}
}

// Gate is the gate password checks of this service go through.
func (s *Service) Gate() *Gate { return s.cfg.Gate }

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
	var pair *TokenPair
	u, err := s.checkPassword(ctx, email, clientAddr, password, func(u *ent.User) error {
		var err error
		pair, err = s.startSession(ctx, u, uuid.Must(uuid.NewV7()))
		return err
	})
	return pair, u, err
}

// checkPassword verifies the password of the account with email under the
// login throttles and the gate, and calls onSuccess with the (active) user
// when it is right. It returns the user when there is one, for auditing.
func (s *Service) checkPassword(ctx context.Context, email, clientAddr, password string, onSuccess func(*ent.User) error) (*ent.User, error) {
	settle, err := s.reserveAttempt(email, clientAddr)
	if err != nil {
		return nil, err
	}
	u, err := s.store.Reader.User.Query().Where(user.Email(email)).Only(ctx)
	if err != nil && !ent.IsNotFound(err) {
		settle(settleRefund, settleRefund)
		return nil, fmt.Errorf("load user: %w", err)
	}
	hash := dummyHash()
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := s.cfg.Gate.Verify(ctx, password, hash)
	if err != nil {
		if e, isApp := apperr.As(err); isApp && e.Kind == apperr.Unavailable {
			// Nothing was checked: the attempt is given back.
			settle(settleRefund, settleRefund)
			return u, err
		}
		settle(settleFailure, settleFailure)
		return u, fmt.Errorf("verify password: %w", err)
	}
	if u == nil || !ok || !u.Active {
		settle(settleFailure, settleFailure)
		return u, errBadCredentials
	}
	// A success clears the account's failures (the owner is back) and
	// gives the address its attempt back.
	settle(settleClear, settleRefund)
	return u, onSuccess(u)
}

// reserveAttempt reserves one attempt on the account's and the address's
// budgets, both or neither. settle ends the attempt on each.
func (s *Service) reserveAttempt(email, clientAddr string) (settle func(account, address settlement), err error) {
	now := time.Now()
	if ok, wait := s.accounts.reserve(email, now); !ok {
		return nil, throttled(wait)
	}
	if ok, wait := s.addresses.reserve(clientAddr, now); !ok {
		s.accounts.settle(email, settleRefund)
		return nil, throttled(wait)
	}
	var once sync.Once
	return func(account, address settlement) {
		once.Do(func() {
			s.accounts.settle(email, account)
			s.addresses.settle(clientAddr, address)
		})
	}, nil
}

func throttled(wait time.Duration) error {
	return &apperr.Error{Kind: apperr.RateLimited, Code: "login_throttled",
		Message: "too many failed login attempts; retry later", RetryAfter: wait}
}

func (s *Service) startSession(ctx context.Context, u *ent.User, family uuid.UUID) (*TokenPair, error) {
	var pair *TokenPair
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		var err error
		pair, err = s.issue(ctx, tx, u.ID, u.SessionEpoch, family)
		return err
	})
	return pair, err
}

// issue creates the next refresh token of family and an access token at the
// user's session epoch.
func (s *Service) issue(ctx context.Context, tx *ent.Tx, userID uuid.UUID, epoch int, family uuid.UUID) (*TokenPair, error) {
	refresh, err := randomToken(32)
	if err != nil {
		return nil, err
	}
	if err := tx.RefreshToken.Create().
		SetUserID(userID).SetFamilyID(family).SetTokenHash(hashSecret(refresh)).
		SetExpiresAt(time.Now().Add(RefreshTokenTTL).UTC()).Exec(ctx); err != nil {
		return nil, fmt.Errorf("store refresh token: %w", err)
	}
	access, ttl, err := s.keys.SignSession(userID, epoch, family)
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
		// The user's current epoch: a session that survived a password
		// change (the one that made it) gets tokens that work again.
		pair, err = s.issue(ctx, tx, rt.UserID, u.SessionEpoch, rt.FamilyID)
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

// RevokeUser ends every session (refresh and access tokens) and API key of
// a user, inside the caller's transaction.
func RevokeUser(ctx context.Context, tx *ent.Tx, userID uuid.UUID) error {
	if _, err := RevokeSessions(ctx, tx, userID, uuid.Nil); err != nil {
		return err
	}
	if err := tx.User.UpdateOneID(userID).AddSessionEpoch(1).Exec(ctx); err != nil {
		return fmt.Errorf("move session epoch: %w", err)
	}
	return RevokeAPIKeysOf(ctx, tx, userID)
}

// RevokeSessions ends every session (refresh-token family) of a user but
// keep (uuid.Nil keeps none), inside the caller's transaction, and returns
// how many live sessions it ended. Access tokens are ended by moving the
// user's session epoch, which the caller does in the same transaction.
func RevokeSessions(ctx context.Context, tx *ent.Tx, userID, keep uuid.UUID) (int, error) {
	now := time.Now().UTC()
	which := []predicate.RefreshToken{refreshtoken.UserID(userID), refreshtoken.RevokedAtIsNil()}
	if keep != uuid.Nil {
		which = append(which, refreshtoken.FamilyIDNEQ(keep))
	}
	// A live session has exactly one unused, unexpired token; its used
	// predecessors are revoked along with it but not counted.
	live, err := tx.RefreshToken.Query().Where(append(which, refreshtoken.UsedAtIsNil(), refreshtoken.ExpiresAtGT(now))...).Count(ctx)
	if err != nil {
		return 0, fmt.Errorf("count sessions: %w", err)
	}
	if _, err := tx.RefreshToken.Update().Where(which...).SetRevokedAt(now).Save(ctx); err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	return live, nil
}

// RevokeAPIKeysOf revokes every API key a user created, inside the
// caller's transaction (deactivation, and an admin losing the role: only
// admins may create keys, and a key must not keep reach its creator lost).
func RevokeAPIKeysOf(ctx context.Context, tx *ent.Tx, userID uuid.UUID) error {
	if _, err := tx.APIKey.Update().Where(apikey.CreatedBy(userID), apikey.RevokedAtIsNil()).SetRevokedAt(time.Now().UTC()).Save(ctx); err != nil {
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
	tok, err := s.keys.VerifyToken(ctx, credential)
	if err != nil {
		return nil, errUnauthorized
	}
	u, err := s.store.Reader.User.Get(ctx, tok.UserID)
	if ent.IsNotFound(err) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	// A token from before the user's last password change, role change or
	// deactivation is over, even though it has not expired.
	if !u.Active || tok.Epoch != u.SessionEpoch {
		return nil, errUnauthorized
	}
	p := UserPrincipal(u)
	p.SessionID = tok.SessionID
	return p, nil
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
	// Defence in depth: only admins may create keys, and UpdateUser revokes
	// a creator's keys when he stops being an active admin. A change made
	// outside it (the CLI, SQL) would leave them working, so the creator is
	// checked on every use too. It costs one primary-key read per request;
	// a key whose creator row is gone fails closed.
	creator, err := s.store.Reader.User.Get(ctx, k.CreatedBy)
	if ent.IsNotFound(err) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("load api key creator: %w", err)
	}
	if !creator.Active || creator.Role != user.RoleAdmin {
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

// AllowKey takes one token from the API key's bucket.
func (s *Service) AllowKey(id uuid.UUID) Budget {
	v, _ := s.limiters.LoadOrStore(id, rate.NewLimiter(rate.Limit(s.cfg.APIKeyRate), s.cfg.APIKeyBurst))
	return take(v.(*rate.Limiter), time.Now())
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
