package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/signingkey"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// openStore opens a migrated store on databaseURL, closed when t ends.
func openStore(t *testing.T, databaseURL string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, databaseURL)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// kidOf returns the kid header of a token without verifying it.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	tok, _, err := jwt.NewParser().ParseUnverified(token, jwt.MapClaims{})
	if err != nil {
		t.Fatalf("parse %q: %v", token, err)
	}
	kid, _ := tok.Header["kid"].(string)
	if kid == "" {
		t.Fatalf("token %q has no kid", token)
	}
	return kid
}

func sign(t *testing.T, k *Keyring, user uuid.UUID) string {
	t.Helper()
	tok, ttl, err := k.Sign(user)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	if ttl != AccessTokenTTL {
		t.Errorf("ttl = %v, want %v", ttl, AccessTokenTTL)
	}
	return tok
}

func verify(t *testing.T, k *Keyring, token string, want uuid.UUID) {
	t.Helper()
	got, err := k.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if got != want {
		t.Fatalf("verify = %v, want %v", got, want)
	}
}

func jwksByKid(k *Keyring) map[string]JWK {
	out := map[string]JWK{}
	for _, j := range k.PublicKeys() {
		out[j.Kid] = j
	}
	return out
}

func TestKeyringRotation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		st := openStore(t, databaseURL)
		user := uuid.New()

		// First start: a key is generated and kept.
		k1, err := NewKeyring(ctx, st, "")
		if err != nil {
			t.Fatal(err)
		}
		old := sign(t, k1, user)
		oldKid := kidOf(t, old)
		verify(t, k1, old, user)

		// A restart without configuration keeps signing with that key.
		again, err := NewKeyring(ctx, st, "")
		if err != nil {
			t.Fatal(err)
		}
		if kid := kidOf(t, sign(t, again, user)); kid != oldKid {
			t.Fatalf("restart signs with %s, want the stored key %s", kid, oldKid)
		}

		// Rotation: a configured seed signs from now on.
		seed := make([]byte, ed25519.SeedSize)
		for i := range seed {
			seed[i] = byte(i + 1)
		}
		seedB64 := base64.StdEncoding.EncodeToString(seed)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		k2, err := NewKeyring(ctx, st, seedB64)
		if err != nil {
			t.Fatal(err)
		}
		fresh := sign(t, k2, user)
		newKid := kidOf(t, fresh)
		if newKid == oldKid {
			t.Fatal("the configured key does not sign")
		}
		verify(t, k2, fresh, user)
		verify(t, k2, old, user) // tokens of the retired key live on

		jwks := jwksByKid(k2)
		if len(jwks) != 2 {
			t.Fatalf("JWKS has %d keys, want the old and the new: %+v", len(jwks), jwks)
		}
		for _, kid := range []string{oldKid, newKid} {
			j, ok := jwks[kid]
			if !ok {
				t.Fatalf("JWKS lacks %s: %+v", kid, jwks)
			}
			if j.Kty != "OKP" || j.Crv != "Ed25519" || j.Alg != "EdDSA" || j.Use != "sig" {
				t.Errorf("JWK %s = %+v", kid, j)
			}
		}
		if got, want := jwks[newKid].X, base64.RawURLEncoding.EncodeToString(pub); got != want {
			t.Errorf("JWK x of the new key = %s, want the seed's public key %s", got, want)
		}

		// Installing the same seed again, or starting without one, changes
		// nothing: one active key, the configured one.
		for _, s := range []string{seedB64, ""} {
			k, err := NewKeyring(ctx, st, s)
			if err != nil {
				t.Fatal(err)
			}
			if kid := kidOf(t, sign(t, k, user)); kid != newKid {
				t.Errorf("NewKeyring(%q) signs with %s, want %s", s, kid, newKid)
			}
		}
		active, err := st.Client.SigningKey.Query().Where(signingkey.RetiredAtIsNil()).IDs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(active) != 1 || active[0] != newKid {
			t.Errorf("active keys = %v, want only %s", active, newKid)
		}

		// Once retired for longer than a token lives, the old key stops
		// verifying and leaves the JWKS.
		if err := st.Client.SigningKey.UpdateOneID(oldKid).SetRetiredAt(time.Now().Add(-time.Hour).UTC()).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		k3, err := NewKeyring(ctx, st, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := jwksByKid(k3)[oldKid]; ok || len(k3.PublicKeys()) != 1 {
			t.Errorf("JWKS still lists the long-retired key: %+v", k3.PublicKeys())
		}
		if _, err := k3.Verify(ctx, old); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token of a long-retired key: err = %v, want ErrInvalidToken", err)
		}
		verify(t, k3, fresh, user)
	})
}

// TestKeyringFollowsTheDatabase runs one replica's keyring while another
// replica rotates the key: once its keys are due for a refresh, the first
// signs with the new key, and stops trusting the old one when that has been
// retired for longer than a token lives.
func TestKeyringFollowsTheDatabase(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		st := openStore(t, databaseURL)
		user := uuid.New()
		running, err := NewKeyring(ctx, st, "")
		if err != nil {
			t.Fatal(err)
		}
		old := sign(t, running, user)
		oldKid := kidOf(t, old)

		seed := make([]byte, ed25519.SeedSize)
		seed[0] = 42
		other, err := NewKeyring(ctx, st, base64.StdEncoding.EncodeToString(seed))
		if err != nil {
			t.Fatal(err)
		}
		fresh := sign(t, other, user)
		newKid := kidOf(t, fresh)

		defer func(d time.Duration) { keyRefresh = d }(keyRefresh)
		keyRefresh = 0                  // every lookup reloads
		verify(t, running, fresh, user) // the new key is found
		verify(t, running, old, user)   // the old one still verifies
		if kid := kidOf(t, sign(t, running, user)); kid != newKid {
			t.Errorf("after a refresh the running keyring signs with %s, want the new key %s", kid, newKid)
		}

		if err := st.Client.SigningKey.UpdateOneID(oldKid).SetRetiredAt(time.Now().Add(-time.Hour).UTC()).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := running.Verify(ctx, old); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("token of a key retired an hour ago: err = %v, want ErrInvalidToken", err)
		}
		if _, ok := jwksByKid(running)[oldKid]; ok {
			t.Error("the JWKS still lists a key retired an hour ago")
		}
		verify(t, running, fresh, user)
	})
}

func TestVerifyRejectsGarbage(t *testing.T) {
	st := openStore(t, testdb.SQLite(t))
	k, err := NewKeyring(context.Background(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{"", "garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."} {
		if _, err := k.Verify(context.Background(), tok); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("Verify(%q) err = %v, want ErrInvalidToken", tok, err)
		}
	}
}

func TestNewKeyringRejectsBadSeed(t *testing.T) {
	st := openStore(t, testdb.SQLite(t))
	for _, seed := range []string{
		"not base64!",
		base64.StdEncoding.EncodeToString(make([]byte, 16)),
		base64.StdEncoding.EncodeToString(make([]byte, ed25519.PrivateKeySize)),
	} {
		if _, err := NewKeyring(context.Background(), st, seed); err == nil {
			t.Errorf("NewKeyring(%q) accepted a bad seed", seed)
		}
	}
}

// TestVerifyRemembersOnlyUntilExpiry checks the verified-token cache
// against the parser's own rules: a token verified once is refused from
// the moment the parser would refuse it, and a token that failed is not
// remembered as good.
func TestVerifyRemembersOnlyUntilExpiry(t *testing.T) {
	st := openStore(t, testdb.SQLite(t))
	k, err := NewKeyring(context.Background(), st, "")
	if err != nil {
		t.Fatal(err)
	}
	user := uuid.New()
	tok := sign(t, k, user)
	start := time.Now()
	expiry := start.Add(AccessTokenTTL + tokenLeeway)
	for _, tc := range []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"first check", start, true},
		{"remembered", start.Add(time.Minute), true},
		{"just before exp plus leeway", expiry.Add(-2 * time.Second), true},
		{"after exp plus leeway", expiry.Add(2 * time.Second), false},
		{"long after", expiry.Add(time.Hour), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k.now = func() time.Time { return tc.at }
			got, err := k.Verify(context.Background(), tok)
			switch {
			case tc.ok && (err != nil || got != user):
				t.Fatalf("Verify = %v, %v; want %v", got, err, user)
			case !tc.ok && !errors.Is(err, ErrInvalidToken):
				t.Fatalf("Verify err = %v, want ErrInvalidToken", err)
			}
		})
	}

	// A token first seen after it expired fails the parser and is not
	// remembered, so it keeps failing once the clock is back in range.
	late := sign(t, k, user)
	k.now = func() time.Time { return time.Now().Add(AccessTokenTTL + time.Hour) }
	if _, err := k.Verify(context.Background(), late); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("expired token: err = %v, want ErrInvalidToken", err)
	}
	if _, ok := k.verified.get(sha256.Sum256([]byte(late))); ok {
		t.Fatal("a token that failed verification was remembered")
	}
}

func TestVerifiedTokensStayBounded(t *testing.T) {
	var c verifiedTokens
	now := time.Now()
	for i := range 3 * maxVerifiedTokens {
		var sum [32]byte
		sum[0], sum[1], sum[2] = byte(i), byte(i>>8), byte(i>>16)
		c.put(sum, verifiedToken{until: now.Add(time.Minute)}, now)
		if len(c.m) > maxVerifiedTokens {
			t.Fatalf("after %d puts the cache holds %d tokens, more than %d", i+1, len(c.m), maxVerifiedTokens)
		}
	}
}
