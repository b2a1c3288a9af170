package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/migrate"
	"github.com/shoalcrm/shoal/ent/signingkey"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ---- helpers shared by the identity and authorization tests ----
//
// They are prefixed id (those of authz_matrix_test.go az) so they cannot
// collide with the helpers of other test files of the package.

// idMember creates a user without logging him in (one password hash instead
// of two).
func idMember(env *apitest.Env, role string, team *uuid.UUID) *ent.User {
	env.T.Helper()
	u, err := env.App.Org.CreateUser(context.Background(), org.NewUser{
		Email: env.Unique(role) + "@example.com", Name: env.Unique(role), Role: role, TeamID: team, Password: apitest.Password})
	if err != nil {
		env.T.Fatalf("create user: %v", err)
	}
	return u
}

// idTokens is the body of login and refreshToken.
type idTokens struct {
	AccessToken  string `json:"accessToken"`
	RefreshToken string `json:"refreshToken"`
	TokenType    string `json:"tokenType"`
	ExpiresIn    int    `json:"expiresIn"`
}

func idLogin(env *apitest.Env, email, password string) *apitest.Response {
	env.T.Helper()
	return env.Anonymous().Do("POST", "/v1/auth/login", map[string]any{"email": email, "password": password})
}

func idRefresh(env *apitest.Env, token string) *apitest.Response {
	env.T.Helper()
	return env.Anonymous().Do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": token})
}

func idPair(t *testing.T, res *apitest.Response) idTokens {
	t.Helper()
	res.Expect(http.StatusOK)
	var p idTokens
	res.JSON(&p)
	if p.AccessToken == "" || p.RefreshToken == "" || p.TokenType != "Bearer" || p.ExpiresIn <= 0 {
		t.Fatalf("bad token pair: %s", res.Body)
	}
	return p
}

// idBearer returns a client that sends token as Authorization: Bearer.
func idBearer(env *apitest.Env, token string) *apitest.Client {
	c := env.Anonymous()
	c.Bearer = token
	return c
}

// idKey is the body of createApiKey.
type idKey struct {
	ID        uuid.UUID  `json:"id"`
	Prefix    string     `json:"prefix"`
	Secret    string     `json:"secret"`
	Scopes    []string   `json:"scopes"`
	CreatedBy uuid.UUID  `json:"createdBy"`
	ExpiresAt *time.Time `json:"expiresAt"`
	RevokedAt *time.Time `json:"revokedAt"`
}

func idCreateKey(t *testing.T, admin *apitest.Client, scopes ...string) idKey {
	t.Helper()
	res := admin.Do("POST", "/v1/api-keys", map[string]any{"name": "Partner " + uuid.NewString()[:8], "scopes": scopes}).Expect(http.StatusCreated)
	var k idKey
	res.JSON(&k)
	return k
}

// idKeyClient returns a client sending secret as X-API-Key.
func idKeyClient(env *apitest.Env, secret string) *apitest.Client {
	c := env.Anonymous()
	c.APIKey = secret
	return c
}

func idRetryAfter(t *testing.T, res *apitest.Response) int {
	t.Helper()
	n, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || n < 1 {
		t.Fatalf("Retry-After = %q, want a number of seconds >= 1", res.Header.Get("Retry-After"))
	}
	return n
}

type idUser struct {
	ID     uuid.UUID  `json:"id"`
	Email  string     `json:"email"`
	Role   string     `json:"role"`
	TeamID *uuid.UUID `json:"teamId"`
	Active bool       `json:"active"`
}

// idListIDs walks every page of a list endpoint and returns the item ids in
// order, failing on a repeated id.
func idListIDs(t *testing.T, c *apitest.Client, path string, query url.Values) []uuid.UUID {
	t.Helper()
	var ids []uuid.UUID
	seen := map[uuid.UUID]bool{}
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	for range 1000 {
		var page struct {
			Items []struct {
				ID uuid.UUID `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		idDecode(t, c.Do("GET", path+"?"+q.Encode(), nil), http.StatusOK, &page)
		for _, it := range page.Items {
			if seen[it.ID] {
				t.Fatalf("%s: %s listed twice", path, it.ID)
			}
			seen[it.ID] = true
			ids = append(ids, it.ID)
		}
		if page.NextCursor == nil {
			return ids
		}
		q.Set("cursor", *page.NextCursor)
	}
	t.Fatalf("%s: pagination does not end", path)
	return nil
}

// idDecode fails t (which, unlike the response's own helpers, may be a
// subtest) unless res has status, and decodes its body into v (if not nil).
func idDecode(t *testing.T, res *apitest.Response, status int, v any) {
	t.Helper()
	if res.Status != status {
		t.Fatalf("status %d, want %d: %s", res.Status, status, res.Body)
	}
	if v != nil {
		if err := json.Unmarshal(res.Body, v); err != nil {
			t.Fatalf("decode %s: %v", res.Body, err)
		}
	}
}

// idProblem fails t unless res is a problem+json with status and code.
func idProblem(t *testing.T, res *apitest.Response, status int, code string) apitest.Problem {
	t.Helper()
	var p apitest.Problem
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json (status %d, body %s)", ct, res.Status, res.Body)
	}
	idDecode(t, res, status, &p)
	if p.Code != code || p.Status != status {
		t.Fatalf("got %d %q, want %d %q: %s", p.Status, p.Code, status, code, res.Body)
	}
	return p
}

func idFields(p apitest.Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Field)
	}
	return out
}

func idSecret(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// ---- 2. data scope ----

func TestUserDataScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		east := env.Team("East", nil)
		eastOne := env.Team("East-1", &east.ID)
		west := env.Team("West", nil)

		admin, adminC := env.User(auth.RoleAdmin, nil)
		auditor, auditorC := env.User(auth.RoleAuditor, nil)
		sup, supC := env.User(auth.RoleSupervisor, &east.ID)
		repA, repAC := env.User(auth.RoleRep, &eastOne.ID)
		repB, repBC := env.User(auth.RoleRep, &west.ID)
		mate := idMember(env, auth.RoleRep, &eastOne.ID) // repA's team mate
		eastRep := idMember(env, auth.RoleRep, &east.ID) // in East, not East-1
		westSup := idMember(env, auth.RoleSupervisor, &west.ID)
		everyone := []*ent.User{admin, auditor, sup, repA, repB, mate, eastRep, westSup}

		visible := map[string]struct {
			c    *apitest.Client
			self *ent.User
			sees []*ent.User
		}{
			"repA":       {repAC, repA, []*ent.User{repA, mate}},
			"repB":       {repBC, repB, []*ent.User{repB, westSup}},
			"supervisor": {supC, sup, []*ent.User{sup, eastRep, repA, mate}},
			"admin":      {adminC, admin, everyone},
			"auditor":    {auditorC, auditor, everyone},
		}
		missing := adminC.Do("GET", "/v1/users/"+uuid.NewString(), nil).ExpectProblem(http.StatusNotFound, "not_found")
		for name, v := range visible {
			t.Run(name, func(t *testing.T) {
				var me idUser
				idDecode(t, v.c.Do("GET", "/v1/me", nil), http.StatusOK, &me)
				if me.ID != v.self.ID || me.Role != string(v.self.Role) {
					t.Errorf("GET /v1/me = %+v, want %s", me, v.self.ID)
				}
				for _, u := range everyone {
					res := v.c.Do("GET", "/v1/users/"+u.ID.String(), nil)
					if slices.Contains(v.sees, u) {
						var got idUser
						idDecode(t, res, http.StatusOK, &got)
						if got.ID != u.ID || got.Email != u.Email {
							t.Errorf("GET user %s = %+v", u.ID, got)
						}
						continue
					}
					// Hidden looks exactly like missing.
					p := idProblem(t, res, http.StatusNotFound, "not_found")
					if p.Detail != missing.Detail || p.Title != missing.Title {
						t.Errorf("hidden user answers %+v, a missing one %+v", p, missing)
					}
				}
				want := map[uuid.UUID]bool{}
				for _, u := range v.sees {
					want[u.ID] = true
				}
				got := map[uuid.UUID]bool{}
				for _, id := range idListIDs(t, v.c, "/v1/users", url.Values{"limit": {"2"}}) {
					got[id] = true
				}
				if len(got) != len(want) {
					t.Errorf("listUsers shows %d users, want %d", len(got), len(want))
				}
				for id := range want {
					if !got[id] {
						t.Errorf("listUsers lacks %s", id)
					}
				}
				for id := range got {
					if !want[id] {
						t.Errorf("listUsers shows %s, outside the caller's scope", id)
					}
				}
			})
		}

		// Filters never widen the scope.
		for _, q := range []url.Values{{"teamId": {west.ID.String()}}, {"role": {"supervisor"}}, {"teamId": {east.ID.String()}}} {
			if ids := idListIDs(t, repAC, "/v1/users", q); len(ids) != 0 {
				t.Errorf("repA listUsers?%s = %v, want nothing", q.Encode(), ids)
			}
		}
		if ids := idListIDs(t, supC, "/v1/users", url.Values{"teamId": {west.ID.String()}}); len(ids) != 0 {
			t.Errorf("East supervisor listUsers?teamId=West = %v, want nothing", ids)
		}
		if ids := idListIDs(t, supC, "/v1/users", url.Values{"teamId": {eastOne.ID.String()}}); len(ids) != 2 {
			t.Errorf("East supervisor listUsers?teamId=East-1 = %v, want repA and his mate", ids)
		}
	})
}

// ---- 3. access tokens ----

// idServerKey returns the key the server signs access tokens with.
func idServerKey(t *testing.T, env *apitest.Env) (ed25519.PrivateKey, string) {
	t.Helper()
	k, err := env.App.Store.Client.SigningKey.Query().Where(signingkey.RetiredAtIsNil()).Only(context.Background())
	if err != nil {
		t.Fatalf("load signing key: %v", err)
	}
	return ed25519.NewKeyFromSeed(k.PrivateKey), k.ID
}

func idMint(t *testing.T, method jwt.SigningMethod, key any, kid string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

func TestAccessTokens(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		admin, adminC := env.User(auth.RoleAdmin, nil)
		rep, repC := env.User(auth.RoleRep, nil)
		priv, kid := idServerKey(t, env)
		pub := priv.Public().(ed25519.PublicKey)
		_, otherKey, _ := ed25519.GenerateKey(rand.Reader)

		now := time.Now()
		claims := func(change func(jwt.MapClaims)) jwt.MapClaims {
			c := jwt.MapClaims{
				"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": rep.ID.String(),
				"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(), "jti": uuid.NewString(),
			}
			if change != nil {
				change(c)
			}
			return c
		}
		good := func(change func(jwt.MapClaims)) string {
			return idMint(t, jwt.SigningMethodEdDSA, priv, kid, claims(change))
		}
		// A real token with one byte of its signature changed.
		parts := strings.Split(repC.Bearer, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)/2] ^= 0x01
		flipped := parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
		// A real token whose payload was swapped for the admin's.
		adminPayload, _ := json.Marshal(claims(func(c jwt.MapClaims) { c["sub"] = admin.ID.String() }))
		swapped := parts[0] + "." + base64.RawURLEncoding.EncodeToString(adminPayload) + "." + parts[2]

		tests := []struct {
			name   string
			token  string
			accept bool
		}{
			{"issued by login", repC.Bearer, true},
			{"self-signed with the server key", good(nil), true},
			{"expired within the leeway", good(func(c jwt.MapClaims) {
				c["iat"], c["exp"] = now.Add(-15*time.Minute).Unix(), now.Add(-5*time.Second).Unix()
			}), true},
			{"expired beyond the leeway", good(func(c jwt.MapClaims) {
				c["iat"], c["exp"] = now.Add(-17*time.Minute).Unix(), now.Add(-2*time.Minute).Unix()
			}), false},
			{"alg none", idMint(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, claims(nil)), false},
			{"HS256 keyed with the public key", idMint(t, jwt.SigningMethodHS256, []byte(pub), kid, claims(nil)), false},
			{"HS256 keyed with the encoded public key", idMint(t, jwt.SigningMethodHS256,
				[]byte(base64.RawURLEncoding.EncodeToString(pub)), kid, claims(nil)), false},
			{"bad signature", flipped, false},
			{"payload swapped", swapped, false},
			{"other key under the server's kid", idMint(t, jwt.SigningMethodEdDSA, otherKey, kid, claims(nil)), false},
			{"unknown kid", idMint(t, jwt.SigningMethodEdDSA, otherKey, "not-a-known-kid", claims(nil)), false},
			{"no kid", idMint(t, jwt.SigningMethodEdDSA, priv, "", claims(nil)), false},
			{"wrong issuer", good(func(c jwt.MapClaims) { c["iss"] = "someone-else" }), false},
			{"no issuer", good(func(c jwt.MapClaims) { delete(c, "iss") }), false},
			{"wrong audience", good(func(c jwt.MapClaims) { c["aud"] = []string{"other-api"} }), false},
			{"no audience", good(func(c jwt.MapClaims) { delete(c, "aud") }), false},
			{"no exp", good(func(c jwt.MapClaims) { delete(c, "exp") }), false},
			{"issued in the future", good(func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Minute).Unix() }), false},
			{"not valid yet", good(func(c jwt.MapClaims) { c["nbf"] = now.Add(10 * time.Minute).Unix() }), false},
			{"subject not an id", good(func(c jwt.MapClaims) { c["sub"] = "admin" }), false},
			{"subject unknown", good(func(c jwt.MapClaims) { c["sub"] = uuid.NewString() }), false},
			{"no subject", good(func(c jwt.MapClaims) { delete(c, "sub") }), false},
			{"garbage", "not.a.token", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := idBearer(env, tt.token).Do("GET", "/v1/me", nil)
				if !tt.accept {
					idProblem(t, res, http.StatusUnauthorized, "unauthorized")
					if h := res.Header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer ") {
						t.Errorf("401 with WWW-Authenticate %q, want a Bearer challenge", h)
					}
					return
				}
				var me idUser
				idDecode(t, res, http.StatusOK, &me)
				if me.ID != rep.ID {
					t.Errorf("token authenticated %s, want %s", me.ID, rep.ID)
				}
			})
		}

		headers := []struct {
			name   string
			value  string
			accept bool
		}{
			{"lower-case scheme", "bearer " + repC.Bearer, true},
			{"no scheme", repC.Bearer, false},
			{"basic", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), false},
			{"empty bearer", "Bearer ", false},
		}
		for _, h := range headers {
			res := env.Anonymous().Do("GET", "/v1/me", nil, "Authorization", h.value)
			if h.accept {
				res.Expect(http.StatusOK)
			} else {
				res.ExpectProblem(http.StatusUnauthorized, "unauthorized")
			}
		}

		// Deactivation takes effect at once, for issued and self-made
		// tokens alike, and for the refresh token.
		selfMade := good(nil)
		adminC.Do("PATCH", "/v1/users/"+rep.ID.String(), map[string]any{"active": false}, "If-Match", adminC.ETag("/v1/users/"+rep.ID.String())).Expect(http.StatusOK)
		for _, tok := range []string{repC.Bearer, selfMade} {
			idBearer(env, tok).Do("GET", "/v1/me", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		}
		idRefresh(env, repC.Refresh).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		idLogin(env, rep.Email, apitest.Password).ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		// Reactivated, he must log in again: the old session stays dead.
		adminC.Do("PATCH", "/v1/users/"+rep.ID.String(), map[string]any{"active": true}, "If-Match", adminC.ETag("/v1/users/"+rep.ID.String())).Expect(http.StatusOK)
		idRefresh(env, repC.Refresh).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		idPair(t, idLogin(env, rep.Email, apitest.Password))
	})
}

// ---- 4. refresh tokens and logout ----

func TestRefreshRotation(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		u, c := env.User(auth.RoleRep, nil)
		other := idPair(t, idLogin(env, u.Email, apitest.Password)) // a second session

		r1 := c.Refresh
		p2 := idPair(t, idRefresh(env, r1))
		if p2.RefreshToken == r1 {
			t.Fatal("refresh returned the same refresh token")
		}
		var me idUser
		idBearer(env, p2.AccessToken).Do("GET", "/v1/me", nil).Expect(http.StatusOK).JSON(&me)
		if me.ID != u.ID {
			t.Fatalf("refreshed access token is for %s, want %s", me.ID, u.ID)
		}
		p3 := idPair(t, idRefresh(env, p2.RefreshToken)) // the new token works

		// Replaying a used token revokes the whole family...
		idRefresh(env, r1).ExpectProblem(http.StatusUnauthorized, "refresh_token_reused")
		// ...including its newest token, and the one used in between.
		idRefresh(env, p3.RefreshToken).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		idRefresh(env, p2.RefreshToken).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		idRefresh(env, r1).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")

		// Other sessions of the same user live on.
		idPair(t, idRefresh(env, other.RefreshToken))

		for _, tok := range []string{"unknown-token", idSecret("")} {
			idRefresh(env, tok).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		}
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		a, aC := env.User(auth.RoleRep, nil)
		_, bC := env.User(auth.RoleAdmin, nil)
		second := idPair(t, idLogin(env, a.Email, apitest.Password))

		p := idPair(t, idRefresh(env, aC.Refresh))

		// Nobody else can end a's session, not even an admin, and trying
		// tells nothing about it.
		bC.Do("POST", "/v1/auth/logout", map[string]any{"refreshToken": p.RefreshToken}).
			ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		env.Anonymous().Do("POST", "/v1/auth/logout", map[string]any{"refreshToken": p.RefreshToken}).
			ExpectProblem(http.StatusUnauthorized, "unauthorized")
		p = idPair(t, idRefresh(env, p.RefreshToken))

		idBearer(env, p.AccessToken).Do("POST", "/v1/auth/logout", map[string]any{"refreshToken": p.RefreshToken}).
			Expect(http.StatusNoContent)
		idRefresh(env, p.RefreshToken).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		idRefresh(env, aC.Refresh).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")

		// Only that session ended.
		idPair(t, idRefresh(env, second.RefreshToken))
	})
}

// ---- 5. API keys ----

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		env := apitest.New(t, databaseURL)
		admin, adminC := env.User(auth.RoleAdmin, nil)
		_, auditorC := env.User(auth.RoleAuditor, nil)

		res := adminC.Do("POST", "/v1/api-keys", map[string]any{"name": "Partner", "scopes": []string{"leads:write"}}).Expect(http.StatusCreated)
		var k idKey
		res.JSON(&k)
		if !strings.HasPrefix(k.Secret, auth.APIKeyPrefix) || len(k.Secret) < len(auth.APIKeyPrefix)+40 {
			t.Fatalf("secret %q does not look like a Shoal key", k.Secret)
		}
		if !strings.HasPrefix(k.Secret, k.Prefix) || len(k.Prefix) >= len(k.Secret)/2 {
			t.Errorf("prefix %q is not a short prefix of the secret", k.Prefix)
		}
		if k.CreatedBy != admin.ID || !slices.Equal(k.Scopes, []string{"leads:write"}) {
			t.Errorf("created key = %+v", k)
		}

		// The secret is never shown again.
		for _, c := range []*apitest.Client{adminC, auditorC} {
			list := c.Do("GET", "/v1/api-keys", nil).Expect(http.StatusOK)
			if strings.Contains(string(list.Body), k.Secret) || strings.Contains(string(list.Body), k.Secret[len(k.Prefix):]) {
				t.Fatalf("listApiKeys shows the secret: %s", list.Body)
			}
			var page struct{ Items []map[string]any }
			list.JSON(&page)
			found := false
			for _, it := range page.Items {
				if _, ok := it["secret"]; ok {
					t.Errorf("listApiKeys item has a secret member: %v", it)
				}
				found = found || it["id"] == k.ID.String()
			}
			if !found {
				t.Errorf("listApiKeys lacks %s", k.ID)
			}
		}

		// Both ways of sending a key authenticate it: the scope does not
		// allow managing users, so the answer is 403, not 401.
		viaHeader := idKeyClient(env, k.Secret)
		viaBearer := idBearer(env, k.Secret)
		for _, c := range []*apitest.Client{viaHeader, viaBearer} {
			c.Do("GET", "/v1/users", nil).ExpectProblem(http.StatusForbidden, "forbidden")
			c.Do("POST", "/v1/users", map[string]any{"email": "x@example.com", "name": "X", "role": "admin", "password": "password123"}).
				ExpectProblem(http.StatusForbidden, "forbidden")
			c.Do("GET", "/v1/me", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		}
		stored, err := env.App.Store.Client.APIKey.Get(ctx, k.ID)
		if err != nil {
			t.Fatal(err)
		}
		if stored.LastUsedAt == nil {
			t.Error("lastUsedAt not recorded")
		}
		for _, c := range []*apitest.Client{idKeyClient(env, k.Secret+"x"), idKeyClient(env, "shoal_"+idSecret("")), idBearer(env, "shoal_")} {
			c.Do("GET", "/v1/users", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		}

		// Revocation is effective on the next request.
		adminC.Do("DELETE", "/v1/api-keys/"+k.ID.String(), nil).Expect(http.StatusNoContent)
		for _, c := range []*apitest.Client{viaHeader, viaBearer} {
			c.Do("GET", "/v1/users", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		}
		adminC.Do("DELETE", "/v1/api-keys/"+k.ID.String(), nil).Expect(http.StatusNoContent)
		adminC.Do("DELETE", "/v1/api-keys/"+uuid.NewString(), nil).ExpectProblem(http.StatusNotFound, "not_found")

		// Expiry.
		adminC.Do("POST", "/v1/api-keys", map[string]any{"name": "Old", "scopes": []string{"leads:read"},
			"expiresAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		res = adminC.Do("POST", "/v1/api-keys", map[string]any{"name": "Soon", "scopes": []string{"leads:read"},
			"expiresAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}).Expect(http.StatusCreated)
		var soon idKey
		res.JSON(&soon)
		if soon.ExpiresAt == nil {
			t.Fatal("expiresAt not returned")
		}
		idKeyClient(env, soon.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		if err := env.App.Store.Client.APIKey.UpdateOneID(soon.ID).SetExpiresAt(time.Now().Add(-time.Second).UTC()).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		idKeyClient(env, soon.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")

		// Deactivating a user revokes his keys and sessions at once.
		admin2, admin2C := env.User(auth.RoleAdmin, nil)
		his := idCreateKey(t, admin2C, "customers:read")
		if his.CreatedBy != admin2.ID {
			t.Fatalf("createdBy = %s, want %s", his.CreatedBy, admin2.ID)
		}
		idKeyClient(env, his.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		adminC.Do("PATCH", "/v1/users/"+admin2.ID.String(), map[string]any{"active": false}, "If-Match", adminC.ETag("/v1/users/"+admin2.ID.String())).Expect(http.StatusOK)
		idKeyClient(env, his.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		admin2C.Do("GET", "/v1/me", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		idRefresh(env, admin2C.Refresh).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		got, err := env.App.Store.Client.APIKey.Get(ctx, his.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.RevokedAt == nil {
			t.Error("the deactivated user's key is not marked revoked")
		}
		// The other admin's own session is untouched.
		adminC.Do("GET", "/v1/me", nil).Expect(http.StatusOK)
	})
}

func TestAPIKeyRateLimit(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Auth: auth.Config{APIKeyRate: 1, APIKeyBurst: 3}}})
		_, adminC := env.User(auth.RoleAdmin, nil)
		a := idKeyClient(env, idCreateKey(t, adminC, "leads:read").Secret)
		b := idKeyClient(env, idCreateKey(t, adminC, "leads:read").Secret)

		passed := 0
		var limited *apitest.Response
		for range 20 {
			res := a.Do("GET", "/v1/users", nil)
			if res.Status == http.StatusTooManyRequests {
				limited = res
				break
			}
			res.ExpectProblem(http.StatusForbidden, "forbidden")
			passed++
		}
		if limited == nil {
			t.Fatal("key A was never rate limited")
		}
		if passed < 3 {
			t.Errorf("key A limited after %d requests, want the burst of 3 first", passed)
		}
		limited.ExpectProblem(http.StatusTooManyRequests, "rate_limited")
		idRetryAfter(t, limited)

		// Each key has its own bucket, and users are not limited by it.
		b.Do("GET", "/v1/users", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		adminC.Do("GET", "/v1/users", nil).Expect(http.StatusOK)
	})
}

// ---- 6. login ----

func TestLogin(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		a := idMember(env, auth.RoleRep, nil)
		b := idMember(env, auth.RoleRep, nil)

		p := idPair(t, idLogin(env, strings.ToUpper(a.Email), apitest.Password)) // emails compare case-insensitively
		idBearer(env, p.AccessToken).Do("GET", "/v1/me", nil).Expect(http.StatusOK)

		unknown := idLogin(env, "nobody@example.com", apitest.Password).ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		wrong := idLogin(env, a.Email, "wrong password").ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		if unknown.Detail != wrong.Detail || unknown.Title != wrong.Title {
			t.Errorf("an unknown email (%+v) and a wrong password (%+v) answer differently", unknown, wrong)
		}

		// A successful login clears the account's failures.
		for range 4 {
			idLogin(env, b.Email, "wrong password").ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		}
		idPair(t, idLogin(env, b.Email, apitest.Password))
		for range 4 {
			idLogin(env, b.Email, "wrong password").ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		}
		idPair(t, idLogin(env, b.Email, apitest.Password))

		// Five failures lock the account, even against the right password.
		for range 4 {
			idLogin(env, a.Email, "wrong password").ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		}
		for _, email := range []string{a.Email, strings.ToUpper(a.Email)} {
			res := idLogin(env, email, apitest.Password)
			res.ExpectProblem(http.StatusTooManyRequests, "login_throttled")
			if n := idRetryAfter(t, res); n > int(auth.DefaultConfig.LoginWindow.Seconds()) {
				t.Errorf("Retry-After = %d, longer than the window", n)
			}
		}

		// Another account from the same address still logs in, as often as
		// it likes.
		for range 10 {
			idPair(t, idLogin(env, b.Email, apitest.Password))
		}
	})
}

// ---- 7. secrets never leak ----

func TestSecretsNeverLeak(t *testing.T) {
	// It checks the stored hashes carry the production argon2 parameters,
	// which this binary otherwise replaces with cheap ones (apitest.Main);
	// the switch is process-wide, so the test is not parallel.
	defer auth.UseProductionHashParams()()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		_, adminC := env.User(auth.RoleAdmin, nil)

		type exchange struct {
			name   string
			res    *apitest.Response
			issued []string
		}
		var log []exchange
		record := func(name string, res *apitest.Response, issued ...string) *apitest.Response {
			log = append(log, exchange{name, res, issued})
			return res
		}
		secrets := map[string]string{ // secret → what it is
			apitest.Password: "fixture password",
			adminC.Bearer:    "admin access token",
			adminC.Refresh:   "admin refresh token",
		}

		pw1, pw2, pw3 := idSecret("Pw1-"), idSecret("Pw2-"), idSecret("Pw3-")
		secrets[pw1], secrets[pw2], secrets[pw3] = "password 1", "password 2", "password 3"
		var u1, u2 idUser
		record("create u1", adminC.Do("POST", "/v1/users", map[string]any{"email": "u1@example.com", "name": "U1", "role": "rep", "password": pw1})).
			Expect(http.StatusCreated).JSON(&u1)
		record("create u2", adminC.Do("POST", "/v1/users", map[string]any{"email": "u2@example.com", "name": "U2", "role": "supervisor", "password": pw2})).
			Expect(http.StatusCreated).JSON(&u2)

		res := idLogin(env, "u1@example.com", pw1)
		s1 := idPair(t, res)
		record("login u1", res, s1.AccessToken, s1.RefreshToken)
		record("login u2 with u1's password", idLogin(env, "u2@example.com", pw1)).Expect(http.StatusUnauthorized)
		res = idLogin(env, "u2@example.com", pw2)
		s2 := idPair(t, res)
		record("login u2", res, s2.AccessToken, s2.RefreshToken)

		res = idRefresh(env, s1.RefreshToken)
		s1b := idPair(t, res)
		record("refresh u1", res, s1b.AccessToken, s1b.RefreshToken)
		record("reuse u1's first refresh token", idRefresh(env, s1.RefreshToken)).Expect(http.StatusUnauthorized)
		res = idRefresh(env, s2.RefreshToken)
		s2b := idPair(t, res)
		record("refresh u2", res, s2b.AccessToken, s2b.RefreshToken)
		for _, s := range []idTokens{s1, s1b, s2, s2b} {
			secrets[s.AccessToken], secrets[s.RefreshToken] = "access token", "refresh token"
		}

		res = adminC.Do("POST", "/v1/api-keys", map[string]any{"name": "Partner", "scopes": []string{"leads:write", "leads:read"}})
		var key idKey
		res.Expect(http.StatusCreated).JSON(&key)
		record("create api key", res, key.Secret, strings.TrimPrefix(key.Secret, key.Prefix))
		secrets[key.Secret] = "API key"
		secrets[strings.TrimPrefix(key.Secret, key.Prefix)] = "API key minus its prefix"

		// Use every credential, and send secrets where they do not belong.
		record("me u2", idBearer(env, s2b.AccessToken).Do("GET", "/v1/me", nil)).Expect(http.StatusOK)
		record("key lists users", idKeyClient(env, key.Secret).Do("GET", "/v1/users", nil))
		record("key as bearer", idBearer(env, key.Secret).Do("GET", "/v1/users", nil))
		record("refresh token as bearer", idBearer(env, s2b.RefreshToken).Do("GET", "/v1/me", nil)).Expect(http.StatusUnauthorized)
		record("access token as refresh token", idRefresh(env, s2b.AccessToken)).Expect(http.StatusBadRequest)
		record("api key as refresh token", idRefresh(env, key.Secret)).Expect(http.StatusUnauthorized)
		record("password in an unknown member", env.Anonymous().Do("POST", "/v1/auth/login",
			map[string]any{"email": "u2@example.com", "password": pw2, "token": s2b.RefreshToken})).Expect(http.StatusBadRequest)
		record("password in a bad email", env.Anonymous().Do("POST", "/v1/auth/login",
			map[string]any{"email": pw2, "password": pw2})).Expect(http.StatusBadRequest)
		record("malformed login", env.Anonymous().Do("POST", "/v1/auth/login", `{"email":"u2@example.com","password":"`+pw2+`"`)).
			Expect(http.StatusBadRequest)
		record("short password", adminC.Do("POST", "/v1/users", map[string]any{"email": "u3@example.com", "name": "U3", "role": "rep", "password": pw3[:6]})).
			Expect(http.StatusBadRequest)
		record("list users", adminC.Do("GET", "/v1/users", nil)).Expect(http.StatusOK)
		record("list keys", adminC.Do("GET", "/v1/api-keys", nil)).Expect(http.StatusOK)
		record("list audit", adminC.Do("GET", "/v1/audit-events?limit=200", nil)).Expect(http.StatusOK)
		record("logout u2", idBearer(env, s2b.AccessToken).Do("POST", "/v1/auth/logout", map[string]any{"refreshToken": s2b.RefreshToken})).
			Expect(http.StatusNoContent)
		// After the logout: a new password ends all of u2's sessions.
		record("change password", adminC.Do("PATCH", "/v1/users/"+u2.ID.String(), map[string]any{"password": pw3}, "If-Match", adminC.ETag("/v1/users/"+u2.ID.String()))).Expect(http.StatusOK)
		record("spec", env.Anonymous().Do("GET", "/openapi.yaml", nil)).Expect(http.StatusOK)
		record("metrics", env.Anonymous().Do("GET", "/metrics", nil)).Expect(http.StatusOK)

		// Responses: a secret appears only in the response that issued it.
		for _, ex := range log {
			var headers strings.Builder
			_ = ex.res.Header.Write(&headers)
			text := string(ex.res.Body) + "\n" + headers.String()
			for s, what := range secrets {
				issued := slices.Contains(ex.issued, s)
				if issued && !strings.Contains(text, s) {
					t.Errorf("response %q does not carry the %s it issued", ex.name, what)
				}
				if !issued && strings.Contains(text, s) {
					t.Errorf("response %q leaks a %s: %s", ex.name, what, text)
				}
			}
		}

		// The server's log.
		logs := env.Logs.String()
		if !strings.Contains(logs, `"msg":"request"`) {
			t.Fatalf("the server logged nothing: %q", logs)
		}
		for s, what := range secrets {
			if strings.Contains(logs, s) {
				t.Errorf("the log contains a %s", what)
			}
		}

		// Every column of every table.
		db := idRawDB(env)
		for _, table := range migrate.Tables {
			for _, row := range idDumpTable(t, db, table.Name) {
				for col, v := range row {
					for s, what := range secrets {
						if strings.Contains(v, s) {
							t.Errorf("%s.%s holds a %s", table.Name, col, what)
						}
					}
				}
			}
		}

		// Passwords are stored as argon2id PHC strings with OWASP's
		// parameters.
		users, err := env.App.Store.Client.User.Query().All(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range users {
			if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
				t.Errorf("password hash of %s = %q, want argon2id m=19456,t=2,p=1", u.Email, u.PasswordHash)
			}
		}
		idPair(t, idLogin(env, "u2@example.com", pw3))
	})
}

// idRawDB returns a database/sql pool of the environment's database.
func idRawDB(env *apitest.Env) *sql.DB {
	dbs := env.App.Store.DBs()
	for _, name := range []string{"primary", "read"} {
		if db, ok := dbs[name]; ok {
			return db
		}
	}
	env.T.Fatalf("no database pool in %v", dbs)
	return nil
}

// idDumpTable returns every row of table with each value rendered as text
// (byte slices both as their bytes and as fmt renders them).
func idDumpTable(t *testing.T, db *sql.DB, table string) []map[string]string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), `SELECT * FROM "`+table+`"`)
	if err != nil {
		t.Fatalf("dump %s: %v", table, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatalf("scan %s: %v", table, err)
		}
		row := map[string]string{}
		for i, v := range vals {
			s := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				s += "\n" + string(b)
			}
			row[cols[i]] = s
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// ---- 8. validation ----

func TestRequestValidation(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		env := apitest.New(t, databaseURL)
		_, adminC := env.User(auth.RoleAdmin, nil)
		idMember(env, auth.RoleRep, nil)
		countUsers := func() int {
			n, err := env.App.Store.Client.User.Query().Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		before := countUsers()

		valid := func(change func(map[string]any)) map[string]any {
			b := map[string]any{"email": "new@example.com", "name": "New", "role": "rep", "password": "long enough password"}
			change(b)
			return b
		}
		tests := []struct {
			name   string
			body   map[string]any
			fields []string
		}{
			{"bad email", valid(func(b map[string]any) { b["email"] = "not-an-email" }), []string{"body/email"}},
			{"short password", valid(func(b map[string]any) { b["password"] = "short" }), []string{"body/password"}},
			{"unknown role", valid(func(b map[string]any) { b["role"] = "king" }), []string{"body/role"}},
			{"server-owned createdAt", valid(func(b map[string]any) { b["createdAt"] = "2020-01-01T00:00:00Z" }), []string{"body/createdAt"}},
			{"server-owned id", valid(func(b map[string]any) { b["id"] = uuid.NewString() }), []string{"body/id"}},
			{"unknown member", valid(func(b map[string]any) { b["isRoot"] = true }), []string{"body/isRoot"}},
			{"missing name", valid(func(b map[string]any) { delete(b, "name") }), []string{"body/name"}},
			{"all at once", valid(func(b map[string]any) {
				b["email"], b["password"], b["role"], b["createdAt"] = "not-an-email", "short", "king", "2020-01-01T00:00:00Z"
			}), []string{"body/email", "body/password", "body/role", "body/createdAt"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := adminC.Do("POST", "/v1/users", tt.body)
				p := idProblem(t, res, http.StatusBadRequest, "validation_failed")
				got := idFields(p)
				for _, f := range tt.fields {
					if !slices.Contains(got, f) {
						t.Errorf("errors name %v, want %s among them", got, f)
					}
				}
				for _, e := range p.Errors {
					if e.Code == "" || e.Message == "" {
						t.Errorf("field error without code or message: %+v", e)
					}
				}
				if p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-ID") {
					t.Errorf("problem requestId %q, header %q", p.RequestID, res.Header.Get("X-Request-ID"))
				}
				if n := countUsers(); n != before {
					t.Fatalf("a rejected request created a user: %d users, want %d", n, before)
				}
			})
		}

		for _, body := range []string{`{"email": "new@example.com", "name": `, `not json`, `[]`, `{"email": 1}`} {
			res := adminC.Do("POST", "/v1/users", body)
			if p := res.Problem(); res.Status != http.StatusBadRequest || p.Status != http.StatusBadRequest {
				t.Errorf("body %q: %d %+v, want a 400 problem", body, res.Status, p)
			}
		}
		if n := countUsers(); n != before {
			t.Fatalf("a malformed request created a user: %d users, want %d", n, before)
		}

		for _, q := range []string{"limit=0", "limit=201", "limit=-1", "limit=ten"} {
			p := adminC.Do("GET", "/v1/users?"+q, nil).ExpectProblem(http.StatusBadRequest, "validation_failed")
			if !slices.Contains(idFields(p), "query.limit") {
				t.Errorf("%s: errors name %v, want query.limit", q, idFields(p))
			}
		}

		// A cursor this server did not issue, or one tampered with.
		var first struct{ NextCursor *string }
		adminC.Do("GET", "/v1/users?limit=1", nil).Expect(http.StatusOK).JSON(&first)
		if first.NextCursor == nil {
			t.Fatal("no next cursor with two users and limit=1")
		}
		raw, err := base64.RawURLEncoding.DecodeString(*first.NextCursor)
		if err != nil {
			t.Fatalf("cursor %q is not base64url: %v", *first.NextCursor, err)
		}
		payload := strings.Replace(string(raw), `"i":"`, `"i":"0`, 1)
		forged := []string{
			base64.RawURLEncoding.EncodeToString([]byte(payload)),
			base64.RawURLEncoding.EncodeToString(append([]byte(`{"i":"`+uuid.NewString()+`"}`), raw[len(raw)-12:]...)),
			(*first.NextCursor)[:len(*first.NextCursor)-2],
			"bm9wZQ",
		}
		for _, path := range []string{"/v1/users", "/v1/teams", "/v1/api-keys", "/v1/audit-events"} {
			for _, c := range forged {
				adminC.Do("GET", path+"?cursor="+url.QueryEscape(c), nil).ExpectProblem(http.StatusBadRequest, "invalid_cursor")
			}
		}
		adminC.Do("GET", "/v1/users?limit=1&cursor="+url.QueryEscape(*first.NextCursor), nil).Expect(http.StatusOK)
	})
}

// ---- 9. audit log ----

type idAuditEvent struct {
	ID            uuid.UUID  `json:"id"`
	At            time.Time  `json:"at"`
	ActorType     string     `json:"actorType"`
	ActorID       *uuid.UUID `json:"actorId"`
	Operation     string     `json:"operation"`
	TargetType    string     `json:"targetType"`
	TargetID      string     `json:"targetId"`
	RequestID     string     `json:"requestId"`
	ClientAddress string     `json:"clientAddress"`
	Outcome       string     `json:"outcome"`
	Status        int        `json:"status"`
	Detail        string     `json:"detail"`
}

func idAuditEvents(t *testing.T, c *apitest.Client, q url.Values) []idAuditEvent {
	t.Helper()
	if q.Get("limit") == "" {
		q.Set("limit", "200")
	}
	var page struct {
		Items      []idAuditEvent
		NextCursor *string
	}
	idDecode(t, c.Do("GET", "/v1/audit-events?"+q.Encode(), nil), http.StatusOK, &page)
	if page.NextCursor != nil {
		t.Fatalf("more than one page of audit events for %s", q.Encode())
	}
	return page.Items
}

func TestAuditLog(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		admin, adminC := env.User(auth.RoleAdmin, nil)
		auditor, auditorC := env.User(auth.RoleAuditor, nil)
		rep, repC := env.User(auth.RoleRep, nil)

		reqID := func(res *apitest.Response) string {
			id := res.Header.Get("X-Request-ID")
			if id == "" {
				t.Fatal("no X-Request-ID")
			}
			return id
		}
		loginOK := reqID(idLogin(env, rep.Email, apitest.Password).Expect(http.StatusOK))
		loginBad := reqID(idLogin(env, rep.Email, "wrong password").Expect(http.StatusUnauthorized))
		res := adminC.Do("POST", "/v1/api-keys", map[string]any{"name": "Partner", "scopes": []string{"leads:read"}}, "X-Request-ID", "my-own-request-id")
		var key idKey
		res.Expect(http.StatusCreated).JSON(&key)
		created := reqID(res)
		if created != "my-own-request-id" {
			t.Errorf("X-Request-ID = %q, want the client's", created)
		}
		revoked := reqID(adminC.Do("DELETE", "/v1/api-keys/"+key.ID.String(), nil).Expect(http.StatusNoContent))
		promoted := reqID(adminC.Do("PATCH", "/v1/users/"+rep.ID.String(), map[string]any{"role": "supervisor"}, "If-Match", adminC.ETag("/v1/users/"+rep.ID.String())).Expect(http.StatusOK))

		// Who may read the log, and the denials are audited too.
		// The promotion ended the rep's sessions: he logs in again.
		repC = env.Login(rep.Email, apitest.Password)
		repC.Do("GET", "/v1/audit-events", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		denied := reqID(auditorC.Do("POST", "/v1/users", map[string]any{"email": "x@example.com", "name": "X", "role": "admin", "password": "password123"}))

		all := idAuditEvents(t, auditorC, url.Values{})
		byReq := map[string]idAuditEvent{}
		for _, e := range all {
			byReq[e.RequestID] = e
		}
		adminID, repID, auditorID := admin.ID, rep.ID, auditor.ID
		want := []struct {
			name      string
			requestID string
			actorType string
			actorID   *uuid.UUID
			operation string
			outcome   string
			status    int
			target    string
			detail    string
		}{
			{"login success", loginOK, "user", &repID, "login", "success", 200, rep.ID.String(), ""},
			{"login failure", loginBad, "anonymous", nil, "login", "denied", 401, rep.ID.String(), ""},
			{"createApiKey", created, "user", &adminID, "createApiKey", "success", 201, key.ID.String(), ""},
			{"revokeApiKey", revoked, "user", &adminID, "revokeApiKey", "success", 204, key.ID.String(), ""},
			{"updateUser", promoted, "user", &adminID, "updateUser", "success", 200, rep.ID.String(), "role=supervisor fields=role"},
			{"createUser denied", denied, "user", &auditorID, "createUser", "denied", 403, "", ""},
		}
		for _, w := range want {
			e, ok := byReq[w.requestID]
			if !ok {
				t.Errorf("%s: no audit event with request id %s", w.name, w.requestID)
				continue
			}
			if e.ActorType != w.actorType || e.Operation != w.operation || e.Outcome != w.outcome || e.Status != w.status || e.TargetID != w.target {
				t.Errorf("%s: event %+v, want actor type %s, operation %s, outcome %s, status %d, target %s",
					w.name, e, w.actorType, w.operation, w.outcome, w.status, w.target)
			}
			if w.actorID != nil && (e.ActorID == nil || *e.ActorID != *w.actorID) {
				t.Errorf("%s: actorId %v, want %s", w.name, e.ActorID, w.actorID)
			}
			if w.actorType == "anonymous" && e.ActorID != nil {
				t.Errorf("%s: anonymous event names actor %s", w.name, e.ActorID)
			}
			if e.ClientAddress != "127.0.0.1" {
				t.Errorf("%s: clientAddress %q, want 127.0.0.1", w.name, e.ClientAddress)
			}
			if w.detail != "" && e.Detail != w.detail {
				t.Errorf("%s: detail %q, want %q", w.name, e.Detail, w.detail)
			}
			if e.At.IsZero() || time.Since(e.At) > time.Minute {
				t.Errorf("%s: at = %v", w.name, e.At)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		for i := 1; i < len(all); i++ {
			if all[i].At.After(all[i-1].At) {
				t.Errorf("events not newest first: %v after %v", all[i].At, all[i-1].At)
			}
		}

		reqIDs := func(events []idAuditEvent) []string {
			var out []string
			for _, e := range events {
				out = append(out, e.RequestID)
			}
			return out
		}
		since, until := byReq[created].At, byReq[revoked].At
		filters := []struct {
			name    string
			q       url.Values
			match   func(idAuditEvent) bool
			include []string
			exclude []string
		}{
			{"actorId", url.Values{"actorId": {admin.ID.String()}},
				func(e idAuditEvent) bool { return e.ActorID != nil && *e.ActorID == admin.ID },
				[]string{created, revoked, promoted}, []string{loginOK, loginBad, denied}},
			{"operation", url.Values{"operation": {"login"}},
				func(e idAuditEvent) bool { return e.Operation == "login" },
				[]string{loginOK, loginBad}, []string{created, promoted}},
			{"targetId of the key", url.Values{"targetId": {key.ID.String()}},
				func(e idAuditEvent) bool { return e.TargetID == key.ID.String() },
				[]string{revoked, created}, []string{loginOK, promoted}},
			{"targetId of the rep", url.Values{"targetId": {rep.ID.String()}},
				func(e idAuditEvent) bool { return e.TargetID == rep.ID.String() },
				[]string{loginOK, loginBad, promoted}, []string{created}},
			{"targetType", url.Values{"targetType": {"apiKey"}},
				func(e idAuditEvent) bool { return e.TargetType == "apiKey" },
				[]string{revoked, created}, []string{promoted}},
			{"since and until", url.Values{"since": {since.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)}},
				func(e idAuditEvent) bool { return !e.At.Before(since) && e.At.Before(until) },
				[]string{created}, []string{revoked, promoted, loginBad}},
			{"since", url.Values{"since": {until.Format(time.RFC3339Nano)}},
				func(e idAuditEvent) bool { return !e.At.Before(until) },
				[]string{revoked, promoted, denied}, []string{created, loginOK}},
			{"until", url.Values{"until": {until.Format(time.RFC3339Nano)}},
				func(e idAuditEvent) bool { return e.At.Before(until) },
				[]string{loginOK, loginBad, created}, []string{revoked, promoted}},
			{"actorId and operation", url.Values{"actorId": {admin.ID.String()}, "operation": {"revokeApiKey"}},
				func(e idAuditEvent) bool {
					return e.Operation == "revokeApiKey" && e.ActorID != nil && *e.ActorID == admin.ID
				},
				[]string{revoked}, []string{created}},
			{"nothing matches", url.Values{"actorId": {uuid.NewString()}},
				func(idAuditEvent) bool { return false }, nil, []string{created}},
		}
		for _, f := range filters {
			t.Run("filter "+f.name, func(t *testing.T) {
				events := idAuditEvents(t, auditorC, f.q)
				got := reqIDs(events)
				for _, e := range events {
					if !f.match(e) {
						t.Errorf("event %+v does not match the filter", e)
					}
				}
				n := 0
				for _, e := range all {
					if f.match(e) {
						n++
					}
				}
				if len(events) != n {
					t.Errorf("%d events, want the %d of the full log that match", len(events), n)
				}
				for _, id := range f.include {
					if !slices.Contains(got, id) {
						t.Errorf("lacks the event of request %s", id)
					}
				}
				for _, id := range f.exclude {
					if slices.Contains(got, id) {
						t.Errorf("has the event of request %s", id)
					}
				}
			})
		}

		// Pages of two walk the whole log, newest first, without repeats.
		paged := idListIDs(t, auditorC, "/v1/audit-events", url.Values{"limit": {"2"}})
		if len(all) < 5 || len(paged) != len(all) {
			t.Fatalf("paging found %d events, one page %d", len(paged), len(all))
		}
		for i := range all {
			if paged[i] != all[i].ID {
				t.Fatalf("page walk differs at %d: %s, want %s", i, paged[i], all[i].ID)
			}
		}
		// An audit event's actor filter is paged the same way.
		if got := idListIDs(t, auditorC, "/v1/audit-events", url.Values{"limit": {"2"}, "actorId": {admin.ID.String()}}); len(got) != len(idAuditEvents(t, auditorC, url.Values{"actorId": {admin.ID.String()}})) {
			t.Errorf("filtered paging found %d events", len(got))
		}
	})
}

// ---- directory invariants under concurrency ----

// The next tests call the directory service straight from goroutines, so
// that the operations really meet inside the database rather than one after
// the other in the HTTP stack.

// TestLastAdminUnderConcurrency has two admins demote or deactivate each
// other at the same instant: one may win, never both.
func TestLastAdminUnderConcurrency(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		env := apitest.New(t, databaseURL)
		a, b := idMember(env, auth.RoleAdmin, nil), idMember(env, auth.RoleAdmin, nil)
		rep, auditor, no := auth.RoleRep, auth.RoleAuditor, false
		changes := []org.UserPatch{{Role: &rep}, {Active: &no}, {Role: &auditor}}
		lastAdmin := apperr.New(apperr.Conflict, "last_admin", "")
		for round := range 20 {
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, pair := range [][2]*ent.User{{a, b}, {b, a}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = env.App.Org.UpdateUser(ctx, auth.UserPrincipal(pair[0]), pair[1].ID, &anyVersion, changes[(round+i)%3])
				}()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil && !errors.Is(err, lastAdmin) {
					t.Fatalf("round %d: %v", round, err)
				}
			}
			if errs[0] == nil && errs[1] == nil {
				t.Fatalf("round %d: both admins were demoted", round)
			}
			if errs[0] != nil && errs[1] != nil {
				t.Fatalf("round %d: neither change went through: %v", round, errs)
			}
			if _, err := env.App.Store.Client.User.Update().Where(user.IDIn(a.ID, b.ID)).
				SetRole(user.RoleAdmin).SetActive(true).Save(ctx); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestTeamTreeUnderConcurrency moves teams while others move them back,
// creates sub-teams and puts users in them, then checks that the tree has
// no cycle and that every path (of teams and of their members) is right.
func TestTeamTreeUnderConcurrency(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		env := apitest.New(t, databaseURL)
		admin := auth.UserPrincipal(idMember(env, auth.RoleAdmin, nil))
		users := []*ent.User{idMember(env, auth.RoleRep, nil), idMember(env, auth.RoleRep, nil)}
		cycle := apperr.New(apperr.Conflict, "team_cycle", "")
		for round := range 12 {
			x, y := env.Team("X", nil), env.Team("Y", nil)
			sub := env.Team("X-1", &x.ID)
			calls := []func() error{
				func() error {
					_, err := env.App.Org.UpdateTeam(ctx, x.ID, &anyVersion, org.TeamPatch{ParentID: patch.Value(y.ID)})
					return err
				},
				func() error {
					_, err := env.App.Org.UpdateTeam(ctx, y.ID, &anyVersion, org.TeamPatch{ParentID: patch.Value(sub.ID)})
					return err
				},
				func() error {
					_, err := env.App.Org.CreateTeam(ctx, org.NewTeam{Name: "X-2", ParentID: &sub.ID})
					return err
				},
				func() error {
					_, err := env.App.Org.UpdateUser(ctx, admin, users[0].ID, &anyVersion, org.UserPatch{TeamID: patch.Value(sub.ID)})
					return err
				},
				func() error {
					_, err := env.App.Org.UpdateUser(ctx, admin, users[1].ID, &anyVersion, org.UserPatch{TeamID: patch.Value(y.ID)})
					return err
				},
			}
			errs := make([]error, len(calls))
			var wg sync.WaitGroup
			for i, call := range calls {
				wg.Add(1)
				go func() { defer wg.Done(); errs[i] = call() }()
			}
			wg.Wait()
			if errs[0] == nil && errs[1] == nil {
				t.Errorf("round %d: X moved under Y and Y under X's child at once", round)
			}
			for i, err := range errs {
				if err != nil && !(i < 2 && errors.Is(err, cycle)) {
					t.Errorf("round %d, call %d: %v", round, i, err)
				}
			}
		}
		idCheckTeamTree(t, env)
	})
}

// idCheckTeamTree fails unless every team's path is its parent's path plus
// its id, and every user's team path is his team's path.
func idCheckTeamTree(t *testing.T, env *apitest.Env) {
	t.Helper()
	ctx := context.Background()
	teams, err := env.App.Store.Client.Team.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[uuid.UUID]*ent.Team{}
	for _, tm := range teams {
		byID[tm.ID] = tm
	}
	for _, tm := range teams {
		want := "/" + tm.ID.String() + "/"
		if tm.ParentID != nil {
			want = byID[*tm.ParentID].Path + tm.ID.String() + "/"
		}
		if tm.Path != want {
			t.Errorf("team %s has path %s, want %s", tm.ID, tm.Path, want)
		}
		seen := map[uuid.UUID]bool{}
		for p := tm; p.ParentID != nil; p = byID[*p.ParentID] {
			if seen[p.ID] {
				t.Fatalf("team %s is in a cycle", tm.ID)
			}
			seen[p.ID] = true
		}
	}
	users, err := env.App.Store.Client.User.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		want := ""
		if u.TeamID != nil {
			want = byID[*u.TeamID].Path
		}
		if u.TeamPath != want {
			t.Errorf("user %s has team path %q, want %q", u.Email, u.TeamPath, want)
		}
	}
}

// anyVersion is If-Match "*": the concurrency tests change users and teams
// whatever their version, as a client that does not care would.
var anyVersion = "*"
