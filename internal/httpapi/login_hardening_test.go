package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// lhConcurrentLogins sends n logins at once (built by body(i)) and counts
// the answers by status.
func lhConcurrentLogins(env *apitest.Env, n int, body func(i int) map[string]any) map[int]int {
	env.T.Helper()
	statuses := make([]int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = env.Anonymous().Do("POST", "/v1/auth/login", body(i)).Status
		}()
	}
	close(start)
	wg.Wait()
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	return counts
}

// Not parallel: it counts password evaluations process-wide
// (auth.PasswordStats), which other tests' logins would add to.
func TestLoginThrottleHoldsUnderConcurrency(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Run("one account", func(t *testing.T) {
			env := apitest.New(t, databaseURL)
			u := idMember(env, auth.RoleRep, nil)
			before, _ := auth.PasswordStats()
			counts := lhConcurrentLogins(env, 200, func(int) map[string]any {
				return map[string]any{"email": u.Email, "password": "wrong password"}
			})
			after, _ := auth.PasswordStats()
			if evaluated := after - before; evaluated > int64(auth.DefaultConfig.LoginFailuresPerAccount) {
				t.Errorf("%d passwords evaluated, want at most %d", evaluated, auth.DefaultConfig.LoginFailuresPerAccount)
			}
			if counts[http.StatusUnauthorized] < 1 || counts[http.StatusUnauthorized] > auth.DefaultConfig.LoginFailuresPerAccount ||
				counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != 200 {
				t.Errorf("answers %v, want 1..5 × 401 and the rest 429", counts)
			}
		})
		t.Run("one address", func(t *testing.T) {
			env := apitest.New(t, databaseURL)
			before, _ := auth.PasswordStats()
			counts := lhConcurrentLogins(env, 200, func(i int) map[string]any {
				return map[string]any{"email": env.Unique("nobody") + "@example.com", "password": "wrong password"}
			})
			after, _ := auth.PasswordStats()
			if evaluated := after - before; evaluated > int64(auth.DefaultConfig.LoginFailuresPerAddress) {
				t.Errorf("%d passwords evaluated, want at most %d", evaluated, auth.DefaultConfig.LoginFailuresPerAddress)
			}
			if counts[http.StatusUnauthorized] < 1 || counts[http.StatusUnauthorized] > auth.DefaultConfig.LoginFailuresPerAddress ||
				counts[http.StatusUnauthorized]+counts[http.StatusTooManyRequests] != 200 {
				t.Errorf("answers %v, want 1..30 × 401 and the rest 429", counts)
			}
		})
	})
}

// When every password-check slot is taken, logins answer 503 server_busy
// with Retry-After at once, and those attempts do not count as failures.
// Not parallel: it counts password evaluations process-wide.
func TestLoginServerBusy(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		gate := auth.NewGate(2, 0, time.Second)
		env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Auth: auth.Config{Gate: gate}}})
		u := idMember(env, auth.RoleRep, nil)
		var releases []func()
		for range 2 {
			r, err := gate.Acquire(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			releases = append(releases, r)
		}
		before, _ := auth.PasswordStats()
		for range 10 {
			res := idLogin(env, u.Email, "wrong password")
			res.ExpectProblem(http.StatusServiceUnavailable, "server_busy")
			idRetryAfter(t, res)
		}
		if after, _ := auth.PasswordStats(); after != before {
			t.Errorf("%d passwords evaluated while the gate was full", after-before)
		}
		for _, r := range releases {
			r()
		}
		// Ten refused attempts did not lock the account.
		p := idPair(t, idLogin(env, u.Email, apitest.Password))
		idBearer(env, p.AccessToken).Do("GET", "/v1/me", nil).Expect(http.StatusOK)
	})
}

type lhSession struct {
	access, refresh string
}

func lhLogin(t *testing.T, env *apitest.Env, email, password string) lhSession {
	t.Helper()
	p := idPair(t, idLogin(env, email, password))
	return lhSession{p.AccessToken, p.RefreshToken}
}

func lhRevoked(t *testing.T, res *apitest.Response) int {
	t.Helper()
	var out struct {
		RevokedSessions *int `json:"revokedSessions"`
	}
	res.Expect(http.StatusOK).JSON(&out)
	if out.RevokedSessions == nil {
		t.Fatalf("no revokedSessions in %s", res.Body)
	}
	return *out.RevokedSessions
}

// An admin's password change, role change or deactivation of a user ends
// all his sessions: refresh tokens and the access tokens already issued.
func TestUserChangesEndSessions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		_, adminC := env.User(auth.RoleAdmin, nil)
		const newPassword = "a brand new passphrase"
		tests := []struct {
			name     string
			change   map[string]any
			password string // to log in with afterwards; "" when he cannot
		}{
			{"password", map[string]any{"password": newPassword}, newPassword},
			{"role", map[string]any{"role": auth.RoleSupervisor}, apitest.Password},
			{"deactivation", map[string]any{"active": false}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				u := idMember(env, auth.RoleRep, nil)
				a := lhLogin(t, env, u.Email, apitest.Password)
				b := lhLogin(t, env, u.Email, apitest.Password)
				// A used refresh token is not a session of its own.
				b2 := idPair(t, idRefresh(env, b.refresh))
				if n := lhRevoked(t, adminC.Do("PATCH", "/v1/users/"+u.ID.String(), tt.change, "If-Match", adminC.ETag("/v1/users/"+u.ID.String()))); n != 2 {
					t.Errorf("revokedSessions = %d, want 2", n)
				}
				for _, tok := range []string{a.access, b.access, b2.AccessToken} {
					idBearer(env, tok).Do("GET", "/v1/me", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
				}
				for _, tok := range []string{a.refresh, b2.RefreshToken} {
					idRefresh(env, tok).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
				}
				if tt.password == "" {
					idLogin(env, u.Email, apitest.Password).ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
					return
				}
				c := lhLogin(t, env, u.Email, tt.password)
				idBearer(env, c.access).Do("GET", "/v1/me", nil).Expect(http.StatusOK)
				idPair(t, idRefresh(env, c.refresh))
			})
		}
		// A change that ends nothing says nothing about sessions.
		u := idMember(env, auth.RoleRep, nil)
		var out map[string]any
		adminC.Do("PATCH", "/v1/users/"+u.ID.String(), map[string]any{"name": "Renamed"}, "If-Match", adminC.ETag("/v1/users/"+u.ID.String())).Expect(http.StatusOK).JSON(&out)
		if _, ok := out["revokedSessions"]; ok {
			t.Errorf("a rename answered revokedSessions: %v", out)
		}
	})
}

func TestChangeMyPassword(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		u := idMember(env, auth.RoleRep, nil)
		current := lhLogin(t, env, u.Email, apitest.Password)
		other := lhLogin(t, env, u.Email, apitest.Password)
		const newPassword = "a brand new passphrase"
		me := idBearer(env, current.access)

		// A weak new password is refused before anything changes.
		p := me.Do("POST", "/v1/me/password", map[string]any{"currentPassword": apitest.Password, "newPassword": "password1"}).
			ExpectProblem(http.StatusBadRequest, "weak_password")
		if len(p.Errors) != 1 || p.Errors[0].Field != "body/newPassword" {
			t.Errorf("weak_password errors = %+v, want body/newPassword", p.Errors)
		}
		me.Do("POST", "/v1/me/password", map[string]any{"currentPassword": "not my password", "newPassword": newPassword}).
			ExpectProblem(http.StatusUnauthorized, "invalid_credentials")

		res := me.Do("POST", "/v1/me/password", map[string]any{"currentPassword": apitest.Password, "newPassword": newPassword})
		var out struct {
			RevokedSessions int    `json:"revokedSessions"`
			AccessToken     string `json:"accessToken"`
			TokenType       string `json:"tokenType"`
			ExpiresIn       int    `json:"expiresIn"`
		}
		res.Expect(http.StatusOK).JSON(&out)
		if out.RevokedSessions != 1 || out.AccessToken == "" || out.TokenType != "Bearer" || out.ExpiresIn <= 0 {
			t.Fatalf("changeMyPassword answered %s", res.Body)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control = %q, want no-store", cc)
		}
		// The other session is over, both its tokens.
		idBearer(env, other.access).Do("GET", "/v1/me", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		idRefresh(env, other.refresh).ExpectProblem(http.StatusUnauthorized, "invalid_refresh_token")
		// The current one goes on with the new access token; the old one is over.
		me.Do("GET", "/v1/me", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		idBearer(env, out.AccessToken).Do("GET", "/v1/me", nil).Expect(http.StatusOK)
		next := idPair(t, idRefresh(env, current.refresh))
		idBearer(env, next.AccessToken).Do("GET", "/v1/me", nil).Expect(http.StatusOK)
		// The passwords.
		idLogin(env, u.Email, apitest.Password).ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		lhLogin(t, env, u.Email, newPassword)

		// Wrong current passwords count against the login throttle.
		v := idMember(env, auth.RoleRep, nil)
		vc := idBearer(env, lhLogin(t, env, v.Email, apitest.Password).access)
		for range auth.DefaultConfig.LoginFailuresPerAccount {
			vc.Do("POST", "/v1/me/password", map[string]any{"currentPassword": "not my password", "newPassword": newPassword}).
				ExpectProblem(http.StatusUnauthorized, "invalid_credentials")
		}
		res = vc.Do("POST", "/v1/me/password", map[string]any{"currentPassword": apitest.Password, "newPassword": newPassword})
		res.ExpectProblem(http.StatusTooManyRequests, "login_throttled")
		idRetryAfter(t, res)
		idLogin(env, v.Email, apitest.Password).ExpectProblem(http.StatusTooManyRequests, "login_throttled")

		// API keys have no password.
		_, adminC := env.User(auth.RoleAdmin, nil)
		key := idCreateKey(t, adminC, "leads:read")
		idKeyClient(env, key.Secret).Do("POST", "/v1/me/password", map[string]any{"currentPassword": "x", "newPassword": newPassword}).
			ExpectProblem(http.StatusForbidden, "forbidden")
	})
}

// An admin who loses the role loses his API keys' reach too: at once when
// demoted through the API, and on the next use when the change was made
// around it (here straight in the database).
func TestDemotedAdminKeysStop(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		env := apitest.New(t, databaseURL)
		_, adminC := env.User(auth.RoleAdmin, nil)
		a2, a2C := env.User(auth.RoleAdmin, nil)
		a3, a3C := env.User(auth.RoleAdmin, nil)
		k2 := idCreateKey(t, a2C, "leads:read")
		k3 := idCreateKey(t, a3C, "leads:read")
		for _, k := range []idKey{k2, k3} {
			idKeyClient(env, k.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		}

		adminC.Do("PATCH", "/v1/users/"+a2.ID.String(), map[string]any{"role": auth.RoleSupervisor}, "If-Match", adminC.ETag("/v1/users/"+a2.ID.String())).Expect(http.StatusOK)
		idKeyClient(env, k2.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		if got, err := env.App.Store.Client.APIKey.Get(ctx, k2.ID); err != nil || got.RevokedAt == nil {
			t.Errorf("demoted admin's key: %v, revokedAt %v; want revoked", err, got)
		}

		if err := env.App.Store.Client.User.UpdateOneID(a3.ID).SetRole("rep").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		idKeyClient(env, k3.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
		// Promoted again, the key he kept works again (it was never revoked).
		if err := env.App.Store.Client.User.UpdateOneID(a3.ID).SetRole("admin").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		idKeyClient(env, k3.Secret).Do("GET", "/v1/users", nil).ExpectProblem(http.StatusForbidden, "forbidden")
	})
}

func TestWeakPasswordsRefused(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		ctx := context.Background()
		env := apitest.New(t, databaseURL)
		// The first admin from SHOAL_ADMIN_PASSWORD obeys the policy too.
		created, err := env.App.Org.EnsureAdmin(ctx, "root@example.com", "qwertyuiop")
		if created || !apperr.HasCode(err, "weak_password") {
			t.Fatalf("EnsureAdmin with a common password = %v, %v; want weak_password", created, err)
		}
		_, adminC := env.User(auth.RoleAdmin, nil)
		tests := []struct {
			name, email, password string
		}{
			{"common", "weak1@example.com", "password1"},
			{"common in full width", "weak2@example.com", "ｐａｓｓｗｏｒｄ１"},
			{"the email", "weak3@example.com", "Weak3@Example.com"},
			{"the local part", "weak.four@example.com", "WEAK.FOUR"},
			{"short after NFKC", "weak5@example.com", strings.Repeat("e\u0301", 4)},
			{"long after NFKC", "weak6@example.com", strings.Repeat("ﬃ", 100)},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				p := adminC.Do("POST", "/v1/users", map[string]any{"email": tt.email, "name": "W", "role": "rep", "password": tt.password}).
					ExpectProblem(http.StatusBadRequest, "weak_password")
				if len(p.Errors) != 1 || p.Errors[0].Field != "body/password" {
					t.Errorf("errors = %+v, want one on body/password", p.Errors)
				}
				if _, err := env.App.Org.CreateUser(ctx, org.NewUser{Email: tt.email, Name: "W", Role: "rep", Password: tt.password}); !apperr.HasCode(err, "weak_password") {
					t.Errorf("CreateUser = %v, want weak_password", err)
				}
			})
		}
		// Longer than 256 characters is refused by the contract already.
		adminC.Do("POST", "/v1/users", map[string]any{"email": "weak7@example.com", "name": "W", "role": "rep", "password": strings.Repeat("aB3$", 65)}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		if _, err := env.App.Org.CreateUser(ctx, org.NewUser{Email: "weak7@example.com", Name: "W", Role: "rep", Password: strings.Repeat("aB3$", 65)}); !apperr.HasCode(err, "weak_password") {
			t.Errorf("CreateUser with 260 characters = %v, want weak_password", err)
		}
		// updateUser compares with the user's own email.
		rep := idMember(env, auth.RoleRep, nil)
		adminC.Do("PATCH", "/v1/users/"+rep.ID.String(), map[string]any{"password": strings.ToUpper(rep.Email)}, "If-Match", adminC.ETag("/v1/users/"+rep.ID.String())).
			ExpectProblem(http.StatusBadRequest, "weak_password")
		adminC.Do("PATCH", "/v1/users/"+rep.ID.String(), map[string]any{"password": "iloveyou"}, "If-Match", adminC.ETag("/v1/users/"+rep.ID.String())).
			ExpectProblem(http.StatusBadRequest, "weak_password")
	})
}

// An access token may not live longer than the configured lifetime, even
// when signed with the real key.
func TestAccessTokenLifetimeBounded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		rep, _ := env.User(auth.RoleRep, nil)
		priv, kid := idServerKey(t, env)
		now := time.Now()
		mint := func(lifetime time.Duration, iat bool) string {
			c := jwt.MapClaims{"iss": auth.Issuer, "aud": []string{auth.Audience}, "sub": rep.ID.String(),
				"exp": now.Add(lifetime).Unix(), "jti": uuid.NewString()}
			if iat {
				c["iat"] = now.Unix()
			}
			return idMint(t, jwt.SigningMethodEdDSA, priv, kid, c)
		}
		idBearer(env, mint(auth.AccessTokenTTL, true)).Do("GET", "/v1/me", nil).Expect(http.StatusOK)
		for _, tok := range []string{mint(auth.AccessTokenTTL+time.Second, true), mint(30*24*time.Hour, true), mint(time.Minute, false)} {
			// Twice: the verified-token cache must not let it through either.
			for range 2 {
				idBearer(env, tok).Do("GET", "/v1/me", nil).ExpectProblem(http.StatusUnauthorized, "unauthorized")
			}
		}
	})
}

func TestTokenAnswersAreNotStored(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		u := idMember(env, auth.RoleRep, nil)
		login := idLogin(env, u.Email, apitest.Password)
		refresh := idRefresh(env, idPair(t, login).RefreshToken)
		idPair(t, refresh)
		for name, res := range map[string]*apitest.Response{"login": login, "refreshToken": refresh} {
			if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("%s: Cache-Control = %q, want no-store", name, cc)
			}
		}
	})
}
