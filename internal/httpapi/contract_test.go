package httpapi_test

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

var (
	rlPolicy = regexp.MustCompile(`^"(user|apiKey)";q=(\d+);w=(\d+)$`)
	rlState  = regexp.MustCompile(`^"(user|apiKey)";r=(\d+);t=(\d+)$`)
)

// rateLimit parses the RateLimit header fields of res: the policy name,
// quota, window, requests left and seconds to full.
func rateLimit(t *testing.T, res *apitest.Response) (name string, q, w, r, reset int) {
	t.Helper()
	p := rlPolicy.FindStringSubmatch(res.Header.Get("RateLimit-Policy"))
	st := rlState.FindStringSubmatch(res.Header.Get("RateLimit"))
	if p == nil || st == nil || p[1] != st[1] {
		t.Fatalf("RateLimit-Policy %q, RateLimit %q: not the draft's form", res.Header.Get("RateLimit-Policy"), res.Header.Get("RateLimit"))
	}
	n := func(s string) int { v, _ := strconv.Atoi(s); return v }
	return p[1], n(p[2]), n(p[3]), n(st[2]), n(st[3])
}

// Every answer to an authenticated request says what budget applies and
// what is left of it, errors and the 429 included; public operations,
// which no budget limits, say nothing.
func TestRateLimitHeaderFields(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		// A refill far slower than the test: only the burst counts.
		env := apitest.New(t, dbURL, apitest.Options{Config: app.Config{Auth: auth.Config{
			UserRate: 0.5, UserBurst: 4, APIKeyRate: 0.25, APIKeyBurst: 3}}})
		_, admin := env.User("admin", nil)
		_, rep := env.User("rep", nil)

		// The admin's own requests above used nothing of rep's bucket.
		for i := 3; i >= 0; i-- {
			res := rep.Do("GET", "/v1/me", nil).Expect(http.StatusOK)
			name, q, w, r, reset := rateLimit(t, res)
			if name != "user" || q != 4 || w != 8 || r != i || reset < 1 || reset > 8 {
				t.Fatalf("request %d: %q q=%d w=%d r=%d t=%d, want \"user\" q=4 w=8 r=%d 0<t<=8", 4-i, name, q, w, r, reset, i)
			}
		}
		res := rep.Do("GET", "/v1/me", nil)
		res.ExpectProblem(http.StatusTooManyRequests, "rate_limited")
		if _, _, _, r, _ := rateLimit(t, res); r != 0 {
			t.Errorf("429 says r=%d left", r)
		}

		key := idKeyClient(env, idCreateKey(t, admin, "leads:read").Secret)
		res = key.Do("GET", "/v1/leads", nil).Expect(http.StatusOK)
		if name, q, w, r, _ := rateLimit(t, res); name != "apiKey" || q != 3 || w != 12 || r != 2 {
			t.Errorf("API key: %q q=%d w=%d r=%d, want \"apiKey\" q=3 w=12 r=2", name, q, w, r)
		}
		// A refused call still spent a token and says so.
		res = key.Do("POST", "/v1/leads", map[string]any{"name": "x"})
		res.ExpectProblem(http.StatusForbidden, "insufficient_scope")
		if _, _, _, r, _ := rateLimit(t, res); r != 1 {
			t.Errorf("after a 403: r=%d, want 1", r)
		}

		for _, path := range []string{"/healthz", "/readyz", "/.well-known/jwks.json"} {
			res := env.Anonymous().Do("GET", path, nil).Expect(http.StatusOK)
			if res.Header.Get("RateLimit") != "" || res.Header.Get("RateLimit-Policy") != "" {
				t.Errorf("%s carries RateLimit %q / %q, but no budget applies", path, res.Header.Get("RateLimit"), res.Header.Get("RateLimit-Policy"))
			}
		}
	})
}

// An API key calling an operation it lacks the scope for is told which
// scope would do; one calling an operation no scope allows is forbidden.
func TestInsufficientScope(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		_, admin := env.User("admin", nil)
		key := idKeyClient(env, idCreateKey(t, admin, "leads:read").Secret)

		res := key.Do("POST", "/v1/leads", map[string]any{"name": "x"})
		p := res.ExpectProblem(http.StatusForbidden, "insufficient_scope")
		if got, want := res.Header.Get("WWW-Authenticate"), `Bearer error="insufficient_scope", scope="leads:write"`; got != want {
			t.Errorf("WWW-Authenticate %q, want %q", got, want)
		}
		if !strings.Contains(p.Detail, "scope") {
			t.Errorf("detail %q does not speak of a scope", p.Detail)
		}
		var body struct{ Scopes []string }
		res.JSON(&body)
		if fmt.Sprint(body.Scopes) != "[leads:write]" {
			t.Errorf("scopes %v, want [leads:write]", body.Scopes)
		}
		// Only an admin may list users: no scope would help.
		res = key.Do("GET", "/v1/users", nil)
		res.ExpectProblem(http.StatusForbidden, "forbidden")
		if res.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("plain 403 has a challenge %q", res.Header.Get("WWW-Authenticate"))
		}
	})
}

// A body whose Content-Type the operation does not take is 415, not 400.
func TestUnsupportedMediaType(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		_, rep := env.User("rep", nil)
		for _, ct := range []string{"text/plain", "application/xml", "application/x-www-form-urlencoded"} {
			rep.Do("POST", "/v1/leads", `{"name":"x"}`, "Content-Type", ct).ExpectProblem(http.StatusUnsupportedMediaType, "unsupported_media")
		}
		// Parameters of the right type are fine.
		rep.Do("POST", "/v1/leads", `{"name":"媒体"}`, "Content-Type", "application/json; charset=utf-8").Expect(http.StatusCreated)
	})
}

// Every 201 says where the new resource lives, and the URL reads it back.
func TestCreatedLocation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		_, admin := env.User("admin", nil)
		_, rep := env.User("rep", nil)
		check := func(res *apitest.Response, prefix string, reader *apitest.Client) string {
			t.Helper()
			res.Expect(http.StatusCreated)
			id, _ := res.Map()["id"].(string)
			if got := res.Header.Get("Location"); got != prefix+id {
				t.Fatalf("Location %q, want %q", got, prefix+id)
			}
			if reader != nil {
				reader.Do("GET", prefix+id, nil).Expect(http.StatusOK)
			}
			return id
		}
		lead := check(rep.Do("POST", "/v1/leads", map[string]any{"name": "位置"}), "/v1/leads/", rep)
		cust := check(rep.Do("POST", "/v1/customers", map[string]any{"name": "位置客户"}), "/v1/customers/", rep)
		check(rep.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "联系人"}), "/v1/contacts/", rep)
		check(admin.Do("POST", "/v1/users", map[string]any{"email": env.Unique("loc") + "@example.com", "name": "位置", "role": "rep", "password": apitest.Password}), "/v1/users/", admin)
		check(admin.Do("POST", "/v1/teams", map[string]any{"name": "位置"}), "/v1/teams/", admin)
		check(admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": "位置池"}), "/v1/pools/", admin)
		check(admin.Do("POST", "/v1/api-keys", map[string]any{"name": "loc", "scopes": []string{"leads:read"}}), "/v1/api-keys/", nil)
		// Converting creates a customer: Location names it, with no body at all.
		check(rep.Do("POST", "/v1/leads/"+lead+"/convert", nil), "/v1/customers/", rep)
	})
}

// Operations whose body fields are all optional take no body at all.
func TestOptionalBodies(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		_, rep := env.User("rep", nil)
		for _, kind := range []string{"lead", "customer"} {
			id := rep.Do("POST", "/v1/"+kind+"s", map[string]any{"name": "无体" + kind}).Expect(http.StatusCreated).Map()["id"].(string)
			rep.Do("POST", "/v1/"+kind+"s/"+id+"/freeze", nil).Expect(http.StatusOK)
		}
	})
}
