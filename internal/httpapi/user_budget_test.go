package httpapi_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ubRateLimited reads shoal_rate_limited_total{principal=…} from /metrics.
func ubRateLimited(t *testing.T, env *apitest.Env, principal string) int {
	t.Helper()
	res, err := http.Get(env.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^shoal_rate_limited_total\{principal="` + principal + `"\} (\d+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestUserRequestBudget: a logged-in user has a token bucket like an API
// key's: after the burst he gets 429 rate_limited with Retry-After, other
// users are not affected, and refusals are counted per principal type.
func TestUserRequestBudget(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		// A refill far slower than the test, so that only the burst counts.
		env := apitest.New(t, dbURL, apitest.Options{Config: app.Config{Auth: auth.Config{
			UserRate: 0.001, UserBurst: 3, APIKeyRate: 0.001, APIKeyBurst: 1}}})
		_, a := env.User("rep", nil)
		_, b := env.User("rep", nil)
		_, admin := env.User("admin", nil)

		passed := 0
		var limited *apitest.Response
		for range 10 {
			res := a.Do("GET", "/v1/me", nil)
			if res.Status == http.StatusTooManyRequests {
				limited = res
				break
			}
			res.Expect(http.StatusOK)
			passed++
		}
		if limited == nil {
			t.Fatal("user A was never rate limited")
		}
		if passed != 3 {
			t.Errorf("user A limited after %d requests, want after the burst of 3", passed)
		}
		limited.ExpectProblem(http.StatusTooManyRequests, "rate_limited")
		idRetryAfter(t, limited)
		a.Do("GET", "/v1/leads", nil).ExpectProblem(http.StatusTooManyRequests, "rate_limited")
		if n := ubRateLimited(t, env, "user"); n != 2 {
			t.Errorf("shoal_rate_limited_total{principal=\"user\"} = %d, want 2", n)
		}

		// Another user has his own bucket.
		b.Do("GET", "/v1/me", nil).Expect(http.StatusOK)

		// API keys are counted under their own label.
		key := idKeyClient(env, idCreateKey(t, admin, "leads:read").Secret)
		key.Do("GET", "/v1/leads", nil).Expect(http.StatusOK)
		key.Do("GET", "/v1/leads", nil).ExpectProblem(http.StatusTooManyRequests, "rate_limited")
		if n := ubRateLimited(t, env, "apiKey"); n != 1 {
			t.Errorf("shoal_rate_limited_total{principal=\"apiKey\"} = %d, want 1", n)
		}
		if n := ubRateLimited(t, env, "user"); n != 2 {
			t.Errorf("shoal_rate_limited_total{principal=\"user\"} = %d after the key's refusal, want still 2", n)
		}
	})
}
