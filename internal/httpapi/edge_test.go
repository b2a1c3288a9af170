package httpapi_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func randomToken(n int) string {
	b := make([]byte, (n+1)/2)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))[:n]
}

// send makes a raw request, for methods and bodies apitest's client does
// not send.
func send(t *testing.T, method, target string, body io.Reader, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%.40s %.80s: %v", method, target, err)
	}
	return res
}

func readBody(t *testing.T, res *http.Response) []byte {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Request methods and paths are chosen by clients; none of them may become
// a label value, or a client can grow /metrics (and the server's memory)
// without bound.
func TestMetricsCardinalityBounded(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		for i := range 40 {
			// Huge random methods: each a new series on the old code.
			readBody(t, send(t, "X"+randomToken(20_000), env.URL+"/v1/leads", nil))
			// Random paths, known and unknown methods.
			readBody(t, send(t, "GET", env.URL+"/"+randomToken(64)+"/"+randomToken(8), nil))
			readBody(t, send(t, "PROPFIND"+randomToken(6), env.URL+"/v1/leads/"+randomToken(36), nil))
			if i%10 == 0 {
				readBody(t, send(t, "DELETE", env.URL+"/healthz", nil))
			}
		}
		res := send(t, "GET", env.URL+"/metrics", nil)
		body := readBody(t, res)
		if res.StatusCode != 200 {
			t.Fatalf("/metrics: %d", res.StatusCode)
		}
		var series []string
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "shoal_http_requests_total{") {
				series = append(series, line)
			}
		}
		// route_not_found, method_not_allowed, the "other" methods and the
		// one /metrics call: a handful, whatever the clients sent.
		if len(series) == 0 || len(series) > 8 {
			t.Errorf("%d request series:\n%s", len(series), strings.Join(series, "\n"))
		}
		for _, s := range series {
			if len(s) > 200 {
				t.Errorf("a series carries a client-chosen value: %.200s…", s)
			}
		}
		if !strings.Contains(string(body), `method="other"`) {
			t.Errorf("unknown methods not counted as other")
		}
		if len(body) > 256<<10 {
			t.Errorf("/metrics is %d bytes", len(body))
		}
	})
}

// Every answer says nosniff: successes, errors, the spec, the docs and the
// metrics.
func TestNosniffOnEveryResponse(t *testing.T) {
	t.Parallel()
	env := apitest.New(t, testdb.SQLite(t))
	cases := []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/openapi.yaml", "", 200},
		{"GET", "/docs", "", 200},
		{"GET", "/metrics", "", 200},
		{"GET", "/nope", "", 404},
		{"DELETE", "/healthz", "", 405},
		{"GET", "/v1/me", "", 401},
		{"POST", "/v1/auth/login", `{"email":`, 400},
	}
	for _, tc := range cases {
		var body io.Reader
		if tc.body != "" {
			body = strings.NewReader(tc.body)
		}
		res := send(t, tc.method, env.URL+tc.path, body, "Content-Type", "application/json")
		readBody(t, res)
		if res.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, res.StatusCode, tc.status)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("%s %s: X-Content-Type-Options %q", tc.method, tc.path, got)
		}
	}
}

// unsized hides the length of a body, so the client sends it chunked.
type unsized struct{ io.Reader }

// A body over the limit is 413 whether or not it announced its length.
func TestChunkedBodyTooLarge(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		_, admin := env.User("admin", nil)
		big := `{"email":"a@example.com","password":"` + strings.Repeat("x", 2<<20) + `"}`
		for _, tc := range []struct{ name, path, bearer string }{
			{"public operation", "/v1/auth/login", ""},
			{"guarded operation", "/v1/leads", admin.Bearer},
		} {
			t.Run(tc.name, func(t *testing.T) {
				for _, chunked := range []bool{false, true} {
					var body io.Reader = strings.NewReader(big)
					if chunked {
						body = unsized{body}
					}
					res := send(t, "POST", env.URL+tc.path, body, "Content-Type", "application/json", "Authorization", "Bearer "+tc.bearer)
					raw := readBody(t, res)
					var p apitest.Problem
					_ = json.Unmarshal(raw, &p)
					if res.StatusCode != 413 || p.Code != "payload_too_large" {
						t.Errorf("chunked=%v: %d %s", chunked, res.StatusCode, raw)
					}
				}
			})
		}
	})
}

// A cursor works only for the list operation that issued it.
func TestCursorBoundToOperation(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		_, admin := env.User("admin", nil)
		for i := range 3 {
			admin.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("lead %d", i)}).Expect(201)
			admin.Do("POST", "/v1/customers", map[string]any{"name": fmt.Sprintf("customer %d", i)}).Expect(201)
		}
		env.User("rep", nil)
		env.User("rep", nil)
		next := func(path string) string {
			t.Helper()
			var page struct{ NextCursor *string }
			admin.Do("GET", path+"?limit=1", nil).Expect(200).JSON(&page)
			if page.NextCursor == nil {
				t.Fatalf("%s: no next cursor", path)
			}
			return *page.NextCursor
		}
		leads, users := next("/v1/leads"), next("/v1/users")
		for _, tc := range []struct{ cursor, path string }{
			{leads, "/v1/customers"},
			{leads, "/v1/users"},
			{leads, "/v1/teams"},
			{users, "/v1/teams"},
			{users, "/v1/leads"},
		} {
			admin.Do("GET", tc.path+"?cursor="+url.QueryEscape(tc.cursor), nil).ExpectProblem(400, "invalid_cursor")
		}
		// Each cursor still pages its own list.
		admin.Do("GET", "/v1/leads?limit=1&cursor="+url.QueryEscape(leads), nil).Expect(200)
		admin.Do("GET", "/v1/users?limit=1&cursor="+url.QueryEscape(users), nil).Expect(200)
	})
}

// Behind a trusted proxy each client has its own login throttle; without
// one, X-Forwarded-For is anyone's to forge and is ignored.
func TestTrustedProxiesSeparateClients(t *testing.T) {
	t.Parallel()
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	failLogins := func(env *apitest.Env, forwardedFor string, n int) {
		t.Helper()
		for i := range n {
			res := env.Anonymous().Do("POST", "/v1/auth/login",
				map[string]any{"email": fmt.Sprintf("nobody%d@example.com", i), "password": "wrong password"},
				"X-Forwarded-For", forwardedFor)
			if res.Status != 401 && res.Status != 429 {
				t.Fatalf("bad login %d: %d %s", i, res.Status, res.Body)
			}
		}
		env.Anonymous().Do("POST", "/v1/auth/login", map[string]any{"email": "nobody-more@example.com", "password": "wrong password"},
			"X-Forwarded-For", forwardedFor).ExpectProblem(429, "login_throttled")
	}
	login := func(env *apitest.Env, email, forwardedFor string) *apitest.Response {
		return env.Anonymous().Do("POST", "/v1/auth/login", map[string]any{"email": email, "password": apitest.Password},
			"X-Forwarded-For", forwardedFor)
	}
	testdb.Each(t, func(t *testing.T, dbURL string) {
		t.Run("trusted", func(t *testing.T) {
			env := apitest.New(t, dbURL, apitest.Options{Config: app.Config{TrustedProxies: []*net.IPNet{loopback}}})
			u, _ := env.User("rep", nil)
			failLogins(env, "203.0.113.7", 31)
			login(env, u.Email, "198.51.100.9").Expect(200)
			// A's address is the one throttled, even for a right password.
			login(env, u.Email, "203.0.113.7").ExpectProblem(429, "login_throttled")
		})
		t.Run("not configured", func(t *testing.T) {
			env := apitest.New(t, testdb.SQLite(t))
			if strings.HasPrefix(dbURL, "postgres") {
				env = apitest.New(t, testdb.Postgres(t))
			}
			u, _ := env.User("rep", nil)
			failLogins(env, "203.0.113.7", 31)
			login(env, u.Email, "198.51.100.9").ExpectProblem(429, "login_throttled")
		})
	})
}

// A client that hangs up is a 499 logged at info, not a 500 error.
func TestClientGoneIs499(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		// Take every writer connection, so that /readyz waits for one.
		db := env.App.Store.DB()
		ctx := context.Background()
		var held []*sql.Conn
		for range db.Stats().MaxOpenConnections {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		waits := db.Stats().WaitCount
		reqCtx, hangUp := context.WithCancel(ctx)
		req, _ := http.NewRequestWithContext(reqCtx, "GET", env.URL+"/readyz", nil)
		done := make(chan error, 1)
		go func() {
			res, err := http.DefaultClient.Do(req)
			if err == nil {
				res.Body.Close()
			}
			done <- err
		}()
		eventually(t, "the request waits for a connection", func() bool { return db.Stats().WaitCount > waits })
		hangUp()
		if err := <-done; err == nil {
			t.Fatal("the request was answered")
		}
		eventually(t, "a 499 in the metrics", func() bool {
			return strings.Contains(string(readBody(t, send(t, "GET", env.URL+"/metrics", nil))),
				`shoal_http_requests_total{method="GET",operation="getReadiness",status="499"} 1`)
		})
		var sawAccess bool
		for _, line := range strings.Split(env.Logs.String(), "\n") {
			var entry struct {
				Level, Msg, Operation string
				Status                int
			}
			if json.Unmarshal([]byte(line), &entry) != nil || entry.Operation != "getReadiness" && entry.Msg != "client closed the request" {
				continue
			}
			if entry.Level != "INFO" {
				t.Errorf("logged at %s: %s", entry.Level, line)
			}
			if entry.Msg == "request" {
				sawAccess = entry.Status == 499
			}
		}
		if !sawAccess {
			t.Errorf("no access log line with status 499:\n%s", env.Logs.String())
		}
	})
}

// eventually polls cond until it holds or ten seconds pass. It is for
// effects of a client hanging up, which the server learns of on its own
// time and signals nowhere else.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A database that cannot take writes (full, unreachable) is a 503
// database_unavailable, on writes and on /readyz, not a 500.
func TestDatabaseUnavailable503(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	t.Run("sqlite full", func(t *testing.T) {
		env := apitest.New(t, testdb.SQLite(t))
		_, admin := env.User("admin", nil)
		env.Anonymous().Do("GET", "/readyz", nil).Expect(200)
		// The writer is one long-lived connection; pinning its file at its
		// current size is a full disk as far as SQLite can tell.
		db := env.App.Store.DB()
		var pages int
		if err := db.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
			t.Fatal(err)
		}
		var res *apitest.Response
		for i := 0; i < 500; i++ {
			res = admin.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("lead %d", i), "notes": strings.Repeat("n", 1500)})
			if res.Status != 201 {
				break
			}
		}
		res.ExpectProblem(503, "database_unavailable")
		env.Anonymous().Do("GET", "/readyz", nil).ExpectProblem(503, "database_unavailable")
		if _, err := db.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
			t.Fatal(err)
		}
		env.Anonymous().Do("GET", "/readyz", nil).Expect(200)
		admin.Do("POST", "/v1/leads", map[string]any{"name": "after"}).Expect(201)
	})
	t.Run("postgres unreachable", func(t *testing.T) {
		dbURL := testdb.Postgres(t)
		env := apitest.New(t, dbURL)
		_, admin := env.User("admin", nil)
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(u.Path, "/")
		u.Path = "/postgres"
		clusterAdmin, err := sql.Open("pgx", u.String())
		if err != nil {
			t.Fatal(err)
		}
		defer clusterAdmin.Close()
		if _, err := clusterAdmin.ExecContext(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS false"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _, _ = clusterAdmin.ExecContext(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true") })
		if _, err := clusterAdmin.ExecContext(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name); err != nil {
			t.Fatal(err)
		}
		admin.Do("POST", "/v1/leads", map[string]any{"name": "lost"}).ExpectProblem(503, "database_unavailable")
		env.Anonymous().Do("GET", "/readyz", nil).ExpectProblem(503, "database_unavailable")
		if _, err := clusterAdmin.ExecContext(ctx, "ALTER DATABASE "+name+" ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
		env.Anonymous().Do("GET", "/readyz", nil).Expect(200)
	})
}
