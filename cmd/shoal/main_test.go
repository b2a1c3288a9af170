package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// server is a running `shoal serve`, driven through run() as main would.
type server struct {
	url string
	// metricsURL is the metrics listener's /metrics, when SHOAL_METRICS_ADDR is set.
	metricsURL string
	stop       func() error
}

// startServer runs `shoal serve` on port 0 against databaseURL and waits
// until it listens.
func startServer(t *testing.T, databaseURL string, env map[string]string) *server {
	t.Helper()
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		switch k {
		case "SHOAL_DATABASE_URL":
			return databaseURL
		case "SHOAL_ADDR":
			return "127.0.0.1:0"
		case "SHOAL_LOG_LEVEL":
			return "warn"
		}
		return ""
	}
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, []string{"serve"}, getenv, strings.NewReader(""), outW, io.Discard)
		_ = outW.CloseWithError(io.EOF)
		done <- err
	}()
	lines := bufio.NewScanner(outR)
	addr, metricsURL := "", ""
	for lines.Scan() {
		if m, ok := strings.CutPrefix(lines.Text(), "shoal metrics on "); ok {
			metricsURL = m
		}
		if a, ok := strings.CutPrefix(lines.Text(), "shoal listening on "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		cancel()
		t.Fatalf("server did not start: %v", <-done)
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	var stopped bool
	var stopErr error
	stop := func() error {
		if stopped {
			return stopErr
		}
		stopped = true
		cancel()
		select {
		case stopErr = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("server did not stop within 30s")
		}
		return stopErr
	}
	t.Cleanup(func() { _ = stop() })
	return &server{url: addr, metricsURL: metricsURL, stop: stop}
}

type problemBody struct {
	Type      string `json:"type"`
	Title     string `json:"title"`
	Status    int    `json:"status"`
	Detail    string `json:"detail"`
	Code      string `json:"code"`
	RequestID string `json:"requestId"`
	Errors    []struct {
		Field, Code, Message string
	} `json:"errors"`
}

func TestServeEndToEnd(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		srv := startServer(t, databaseURL, nil)

		t.Run("health and readiness", func(t *testing.T) {
			for _, path := range []string{"/healthz", "/readyz"} {
				res := get(t, srv.url+path, nil)
				body := readAll(t, res)
				if res.StatusCode != 200 || !strings.Contains(body, `"status":"ok"`) {
					t.Errorf("%s: %d %s", path, res.StatusCode, body)
				}
			}
		})

		t.Run("spec and docs", func(t *testing.T) {
			res := get(t, srv.url+"/openapi.yaml", nil)
			if body := readAll(t, res); res.StatusCode != 200 || !strings.Contains(body, "operationId: getHealth") {
				t.Errorf("spec: %d", res.StatusCode)
			}
			res = get(t, srv.url+"/docs", nil)
			if body := readAll(t, res); res.StatusCode != 200 || !strings.Contains(body, `<redoc spec-url="/openapi.yaml"`) {
				t.Errorf("docs: %d", res.StatusCode)
			}
			res = get(t, srv.url+"/metrics", nil)
			if body := readAll(t, res); res.StatusCode != 200 || !strings.Contains(body, `shoal_http_requests_total{method="GET",operation="getHealth",status="200"}`) {
				t.Errorf("metrics lack per-operation counts: %d", res.StatusCode)
			}
		})

		problems := []struct {
			name, method, path, body, lang string
			header                         map[string]string
			status                         int
			code                           string
		}{
			{name: "unknown route", method: "GET", path: "/nope", status: 404, code: "route_not_found"},
			{name: "wrong method", method: "DELETE", path: "/healthz", status: 405, code: "method_not_allowed"},
			{name: "wrong method in Chinese", method: "POST", path: "/healthz", lang: "zh-CN,zh;q=0.9", status: 405, code: "method_not_allowed"},
			{name: "too large", method: "POST", path: "/healthz", body: strings.Repeat("x", 2<<20), status: 413, code: "payload_too_large"},
			{name: "invalid body", method: "POST", path: "/v1/auth/login", body: `{"email":"not-an-email","extra":1}`, status: 400, code: "validation_failed"},
			{name: "malformed body", method: "POST", path: "/v1/auth/login", body: `{"email":`, status: 400, code: "validation_failed"},
			{name: "no credentials", method: "GET", path: "/v1/me", status: 401, code: "unauthorized"},
		}
		for _, tc := range problems {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequest(tc.method, srv.url+tc.path, strings.NewReader(tc.body))
				if tc.body != "" {
					req.Header.Set("Content-Type", "application/json")
				}
				if tc.lang != "" {
					req.Header.Set("Accept-Language", tc.lang)
				}
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				p := decodeProblem(t, res)
				if res.StatusCode != tc.status || p.Code != tc.code || p.Status != tc.status {
					t.Fatalf("got %d %+v, want %d %s", res.StatusCode, p, tc.status, tc.code)
				}
				if p.RequestID == "" || p.RequestID != res.Header.Get("X-Request-ID") {
					t.Errorf("problem requestId %q, header %q", p.RequestID, res.Header.Get("X-Request-ID"))
				}
				hasHan := strings.ContainsFunc(p.Detail, func(r rune) bool { return r >= 0x4e00 && r <= 0x9fff })
				if hasHan != (tc.lang != "") {
					t.Errorf("detail %q in the wrong language for Accept-Language %q", p.Detail, tc.lang)
				}
			})
		}

		t.Run("request id round trip", func(t *testing.T) {
			res := get(t, srv.url+"/healthz", map[string]string{"X-Request-ID": "trace-abc-123"})
			readAll(t, res)
			if got := res.Header.Get("X-Request-ID"); got != "trace-abc-123" {
				t.Errorf("X-Request-ID echoed as %q", got)
			}
			res = get(t, srv.url+"/healthz", map[string]string{"X-Request-ID": "bad id\twith spaces"})
			readAll(t, res)
			if got := res.Header.Get("X-Request-ID"); got == "" || strings.ContainsAny(got, " \t") {
				t.Errorf("unsafe request id not replaced: %q", got)
			}
		})

		t.Run("graceful shutdown drains in-flight requests", func(t *testing.T) {
			// Start a request whose body is still arriving, stop the server,
			// then finish the body: the request must still be answered.
			conn, err := net.Dial("tcp", strings.TrimPrefix(srv.url, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			body := `{"email":"nobody@example.com","password":"wrong password"}`
			fmt.Fprintf(conn, "POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:10])
			time.Sleep(100 * time.Millisecond)
			stopped := make(chan error, 1)
			go func() { stopped <- srv.stop() }()
			// Finish the body only once the shutdown has begun, which shows
			// as the listener refusing new connections.
			hostport := strings.TrimPrefix(srv.url, "http://")
			for deadline := time.Now().Add(10 * time.Second); ; {
				c, err := net.DialTimeout("tcp", hostport, time.Second)
				if err != nil {
					break
				}
				c.Close()
				if time.Now().After(deadline) {
					t.Fatal("server still accepting connections 10s after stop")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if _, err := io.WriteString(conn, body[10:]); err != nil {
				t.Fatalf("server closed the in-flight request: %v", err)
			}
			res, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response to the in-flight request: %v", err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized {
				t.Errorf("in-flight request answered %d, want 401", res.StatusCode)
			}
			if err := <-stopped; err != nil {
				t.Fatalf("run returned %v", err)
			}
			if c, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.url, "http://"), time.Second); err == nil {
				c.Close()
				t.Fatal("still accepting connections after shutdown")
			}
		})
	})
}

// With SHOAL_METRICS_ADDR, /metrics is served there and not on the API
// listener, which may face the internet.
func TestServeMetricsOnOwnListener(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		srv := startServer(t, databaseURL, map[string]string{"SHOAL_METRICS_ADDR": "127.0.0.1:0"})
		if srv.metricsURL == "" {
			t.Fatal("no metrics listener announced")
		}
		readAll(t, get(t, srv.url+"/healthz", nil))
		res := get(t, srv.url+"/metrics", nil)
		if p := decodeProblem(t, res); res.StatusCode != 404 || p.Code != "route_not_found" {
			t.Errorf("API listener /metrics: %d %+v", res.StatusCode, p)
		}
		res = get(t, srv.metricsURL, nil)
		body := readAll(t, res)
		if res.StatusCode != 200 || !strings.Contains(body, `shoal_http_requests_total{method="GET",operation="getHealth",status="200"} 1`) {
			t.Errorf("metrics listener: %d, getHealth not counted", res.StatusCode)
		}
		if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("metrics listener: X-Content-Type-Options %q", got)
		}
		if err := srv.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
	})
	t.Run("flag", func(t *testing.T) {
		// The flags are read: a bad value of either fails the start.
		err := run(context.Background(), []string{"serve", "--metrics-addr", "not an address", "--trusted-proxies", "10.0.0.0/8,192.0.2.1"},
			func(k string) string {
				if k == "SHOAL_DATABASE_URL" {
					return testdb.SQLite(t)
				}
				return ""
			}, strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "metrics") {
			t.Errorf("a bad --metrics-addr was not used: %v", err)
		}
		err = run(context.Background(), []string{"serve", "--trusted-proxies", "10.0.0.0/33"}, func(string) string { return "" },
			strings.NewReader(""), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "trusted proxies") {
			t.Errorf("a bad --trusted-proxies was accepted: %v", err)
		}
	})
}

func TestRunCommands(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, nil, &out, io.Discard); err != nil || !strings.HasPrefix(out.String(), "shoal ") {
		t.Errorf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"frobnicate"}, func(string) string { return "" }, nil, io.Discard, io.Discard); err == nil {
		t.Error("unknown command accepted")
	}
	url := testdb.SQLite(t)
	out.Reset()
	getenv := func(k string) string {
		if k == "SHOAL_DATABASE_URL" {
			return url
		}
		return ""
	}
	if err := run(context.Background(), []string{"migrate"}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatalf("migrate: %v", err)
	}
}

func get(t *testing.T, url string, header map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func readAll(t *testing.T, res *http.Response) string {
	t.Helper()
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func decodeProblem(t *testing.T, res *http.Response) problemBody {
	t.Helper()
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("content type %q, want application/problem+json", ct)
	}
	var p problemBody
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatalf("decode problem: %v", err)
	}
	return p
}

func TestFirstAdminAndCommands(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		getenv := func(k string) string {
			if k == "SHOAL_DATABASE_URL" {
				return databaseURL
			}
			return ""
		}
		var out strings.Builder
		err := run(context.Background(), []string{"user", "create", "--email", "Boss@Example.com", "--role", "supervisor", "--password-stdin"},
			getenv, strings.NewReader("long enough password\n"), &out, io.Discard)
		if err != nil || !strings.Contains(out.String(), "created supervisor boss@example.com") {
			t.Fatalf("user create: %v %q", err, out.String())
		}
		if err := run(context.Background(), []string{"user", "create", "--email", "x@example.com", "--role", "king", "--password-stdin"},
			getenv, strings.NewReader("long enough password\n"), io.Discard, io.Discard); err == nil {
			t.Error("unknown role accepted")
		}
		srv := startServer(t, databaseURL, map[string]string{"SHOAL_ADMIN_EMAIL": "admin@example.com", "SHOAL_ADMIN_PASSWORD": "admin password 1"})
		// Users exist already (the supervisor), so no admin is created.
		res := postJSON(t, srv.url+"/v1/auth/login", `{"email":"admin@example.com","password":"admin password 1"}`)
		if res.StatusCode != 401 {
			t.Errorf("first admin created on a non-empty database: %d", res.StatusCode)
		}
		res = postJSON(t, srv.url+"/v1/auth/login", `{"email":"boss@example.com","password":"long enough password"}`)
		if res.StatusCode != 200 {
			t.Errorf("login as the created user: %d", res.StatusCode)
		}
	})
	t.Run("empty database", func(t *testing.T) {
		srv := startServer(t, testdb.SQLite(t), map[string]string{"SHOAL_ADMIN_EMAIL": "admin@example.com", "SHOAL_ADMIN_PASSWORD": "admin password 1"})
		res := postJSON(t, srv.url+"/v1/auth/login", `{"email":"admin@example.com","password":"admin password 1"}`)
		if res.StatusCode != 200 {
			t.Fatalf("first admin cannot log in: %d", res.StatusCode)
		}
	})
}

func TestSeedDemo(t *testing.T) {
	url := testdb.SQLite(t)
	getenv := func(k string) string {
		if k == "SHOAL_DATABASE_URL" {
			return url
		}
		return ""
	}
	var out strings.Builder
	if err := run(context.Background(), []string{"seed", "--demo", "--leads", "40", "--customers", "30"}, getenv, nil, &out, io.Discard); err != nil {
		t.Fatalf("seed: %v", err)
	}
	for _, want := range []string{"leads: 40", "customers: 30"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("seed output %q lacks %q", out.String(), want)
		}
	}
	if err := run(context.Background(), []string{"seed", "--demo"}, getenv, nil, io.Discard, io.Discard); err == nil {
		t.Error("seeding a non-empty database was accepted")
	}
}

func postJSON(t *testing.T, url, body string) *http.Response {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// serveHelperEnv makes TestServeHelperProcess run `shoal serve` in a child
// process, as main would: the test binary stands in for the shoal binary.
const serveHelperEnv = "SHOAL_TEST_SERVE_HELPER"

// TestServeHelperProcess is not a test: it is the child process of
// TestSecondServeOnOneSQLiteFileFails.
func TestServeHelperProcess(t *testing.T) {
	if os.Getenv(serveHelperEnv) != "1" {
		t.Skip("helper process only")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := run(ctx, []string{"serve"}, os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "shoal:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Two servers on one SQLite file would each keep rules the other changes:
// the second fails at start, naming the first one's pid, while the short
// commands still work beside the first (which sees what they wrote). When
// the first stops, the file is free again.
func TestSecondServeOnOneSQLiteFileFails(t *testing.T) {
	url := testdb.SQLite(t)
	child := exec.Command(os.Args[0], "-test.run=^TestServeHelperProcess$", "-test.count=1")
	child.Env = append(os.Environ(), serveHelperEnv+"=1", "SHOAL_DATABASE_URL="+url, "SHOAL_ADDR=127.0.0.1:0", "SHOAL_LOG_LEVEL=warn")
	// A pipe of our own rather than StdoutPipe, which Wait would close
	// under the reader.
	out, childOut, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	child.Stdout = childOut
	var childErr strings.Builder
	child.Stderr = &childErr
	err = child.Start()
	_ = childOut.Close()
	if err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	t.Cleanup(func() {
		_ = child.Process.Kill()
		<-exited
	})
	lines := bufio.NewScanner(out)
	addr := ""
	for lines.Scan() {
		if a, ok := strings.CutPrefix(lines.Text(), "shoal listening on "); ok {
			addr = a
			break
		}
	}
	if addr == "" {
		t.Fatalf("first server did not start: %v %s", <-exited, childErr.String())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()

	getenv := func(k string) string {
		switch k {
		case "SHOAL_DATABASE_URL":
			return url
		case "SHOAL_ADDR":
			return "127.0.0.1:0"
		}
		return ""
	}
	// On the old code the second server starts: stop it then, not never.
	second, stopSecond := context.WithCancel(context.Background())
	secondOut, secondW := io.Pipe()
	secondErr := make(chan error, 1)
	go func() {
		err := run(second, []string{"serve"}, getenv, strings.NewReader(""), secondW, io.Discard)
		_ = secondW.CloseWithError(io.EOF)
		secondErr <- err
	}()
	started := false
	for lines := bufio.NewScanner(secondOut); lines.Scan(); {
		if strings.HasPrefix(lines.Text(), "shoal listening on ") {
			started = true
			stopSecond()
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, secondOut) }()
	err = <-secondErr
	stopSecond()
	if started {
		t.Fatal("a second server started on the same SQLite file")
	}
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(child.Process.Pid)) {
		t.Fatalf("second serve: %v; want store.ErrLocked naming pid %d", err, child.Process.Pid)
	}

	if err := run(context.Background(), []string{"user", "create", "--email", "late@example.com", "--role", "rep", "--password-stdin"},
		getenv, strings.NewReader("long enough password\n"), io.Discard, io.Discard); err != nil {
		t.Fatalf("user create beside a running server: %v", err)
	}
	if res := postJSON(t, addr+"/v1/auth/login", `{"email":"late@example.com","password":"long enough password"}`); res.StatusCode != 200 {
		t.Fatalf("the running server does not see the user the CLI created: %d", res.StatusCode)
	}
	// The WAL's size and the checkpoints that bound it are in /metrics.
	res := get(t, addr+"/metrics", nil)
	if body := readAll(t, res); !strings.Contains(body, "\nshoal_sqlite_wal_bytes ") ||
		!strings.Contains(body, `shoal_sqlite_wal_forced_checkpoints_total{result="done"} 0`) {
		t.Errorf("metrics lack the SQLite WAL: %d", res.StatusCode)
	}

	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-exited; err != nil {
		t.Fatalf("first server: %v %s", err, childErr.String())
	}
	exited <- nil // for the cleanup
	srv := startServer(t, url, nil)
	if err := srv.stop(); err != nil {
		t.Fatalf("serve after the first stopped: %v", err)
	}
}
