package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// server is one HTTP server under test: PocketBase, or Shoal on one engine.
type server struct {
	name    string // pb, shoal, shoal-pg
	base    string // http://127.0.0.1:port
	cmd     *exec.Cmd
	exited  chan struct{}
	idsFile string
	// dbCPU, when set, reads the CPU ticks of the database server the
	// process uses (PostgreSQL); an embedded SQLite is in the process.
	dbCPU func() (int64, error)

	// login returns a fresh token for user i (0 is the admin).
	login func(ctx context.Context, i int) (string, error)
	users int

	tokensAt time.Time
	tokens   []string
}

func (s *server) isShoal() bool { return s.name != "pb" }

var client = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
}

// call sends a JSON request and decodes a 2xx answer into out; any other
// status is an error quoting the answer.
func call(ctx context.Context, method, url, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("%s %s: %s: %.300s", method, url, res.Status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, url, err)
		}
	}
	return nil
}

// leadBody is the lead every create sends; it must stay byte-for-byte the
// same as leadBody in peer.lua. u is TAG (3 digits), thread (2), counter (7).
func leadBody(tag string, thread, n int) json.RawMessage {
	u := fmt.Sprintf("%s%02d%07d", tag, thread, n)
	return json.RawMessage(fmt.Sprintf(
		`{"name":"Bench lead %s","company":"Bench %s Co","phone":"1%s",`+
			`"email":"lead%s@bench.example.com","source":"web form","region":"杭州",`+
			`"industry":"software","notes":"Asked for a demo after the webinar.",`+
			`"tags":["web","bench"]}`, u, u, u, u))
}

// tokensFor returns the tokens of the first n users, logging in again when
// the last ones are older than five minutes (Shoal's access tokens live 15).
func (s *server) tokensFor(ctx context.Context, n int) ([]string, error) {
	if len(s.tokens) < n || time.Since(s.tokensAt) > 5*time.Minute {
		s.tokens = s.tokens[:0]
		s.tokensAt = time.Now()
		for i := 0; i < n; i++ {
			t, err := s.login(ctx, i)
			if err != nil {
				return nil, fmt.Errorf("%s: log in user %d: %w", s.name, i, err)
			}
			s.tokens = append(s.tokens, t)
		}
	}
	return s.tokens[:n], nil
}

func userEmail(i int) string {
	if i == 0 {
		return adminEmail
	}
	return fmt.Sprintf("admin%02d@bench.example.com", i)
}

// prepare creates what the runs need: Shoal's extra users, PocketBase's
// collection and settings.
func (s *server) prepare(ctx context.Context, users int) error {
	tok, err := s.login(ctx, 0)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	if !s.isShoal() {
		return preparePocketBase(ctx, s.base, tok)
	}
	// The N-user runs use admins like the 1-user runs, so that the only
	// difference between them is how many users' rows the creates touch.
	for i := 1; i < users; i++ {
		u := map[string]any{"email": userEmail(i), "name": fmt.Sprintf("Bench admin %02d", i), "role": "admin", "password": userPassword}
		if err := call(ctx, "POST", s.base+"/v1/users", tok, u, nil); err != nil {
			return err
		}
	}
	return nil
}

// seed creates rows leads through the API and returns their ids. Shoal gets
// 16 parallel creates; PocketBase its batch API, 500 creates a transaction.
// Either way each row is what a create in the runs makes.
func (s *server) seed(ctx context.Context, rows int) ([]string, error) {
	tok, err := s.login(ctx, 0)
	if err != nil {
		return nil, err
	}
	if !s.isShoal() {
		return seedPocketBase(ctx, s.base, tok, rows)
	}
	const workers = 16
	ids := make([]string, rows)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := w; i < rows; i += workers {
				n++
				var out struct {
					ID string `json:"id"`
				}
				if err := call(ctx, "POST", s.base+"/v1/leads", tok, leadBody("000", w+1, n), &out); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
				ids[i] = out.ID
			}
		}()
	}
	wg.Wait()
	return ids, first
}

func startShoal(ctx context.Context, name, bin, dbURL, logFile string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: name, base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	env := append(os.Environ(),
		"SHOAL_DATABASE_URL="+dbURL,
		"SHOAL_ADDR="+fmt.Sprintf("127.0.0.1:%d", port),
		"SHOAL_LOG_LEVEL=warn",
		// A sweep that lands in one run and not another would be noise.
		"SHOAL_SWEEP_INTERVAL=0",
		"SHOAL_ADMIN_EMAIL="+adminEmail,
		"SHOAL_ADMIN_PASSWORD="+adminPassword,
		// The per-user token bucket (hardening) would answer most of a
		// load test 429; PocketBase runs with its rate limiter off by
		// default, so Shoal's is lifted too.
		"SHOAL_USER_RATE=1000000", "SHOAL_USER_BURST=1000000",
	)
	if err := s.start(env, logFile, bin, "serve"); err != nil {
		return nil, err
	}
	s.login = func(ctx context.Context, i int) (string, error) {
		pw := userPassword
		if i == 0 {
			pw = adminPassword
		}
		var out struct {
			AccessToken string `json:"accessToken"`
		}
		err := call(ctx, "POST", s.base+"/v1/auth/login", "", map[string]string{"email": userEmail(i), "password": pw}, &out)
		return out.AccessToken, err
	}
	return s, s.waitReady(ctx, s.base+"/readyz", logFile)
}

func startPocketBase(ctx context.Context, bin, dir string) (*server, error) {
	data := filepath.Join(dir, "pb_data")
	logFile := filepath.Join(dir, "pb.log")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := runCmd(ctx, nil, bin, "superuser", "upsert", adminEmail, adminPassword, "--dir", data); err != nil {
		return nil, fmt.Errorf("pocketbase superuser upsert: %w", err)
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{name: "pb", base: fmt.Sprintf("http://127.0.0.1:%d", port)}
	if err := s.start(os.Environ(), logFile, bin, "serve", fmt.Sprintf("--http=127.0.0.1:%d", port), "--dir", data); err != nil {
		return nil, err
	}
	s.login = func(ctx context.Context, i int) (string, error) {
		if i != 0 {
			return "", errors.New("PocketBase runs use the one superuser")
		}
		var out struct {
			Token string `json:"token"`
		}
		err := call(ctx, "POST", s.base+"/api/collections/_superusers/auth-with-password", "", map[string]string{"identity": adminEmail, "password": adminPassword}, &out)
		return out.Token, err
	}
	return s, s.waitReady(ctx, s.base+"/api/health", logFile)
}

// preparePocketBase turns on the batch API (for seeding) and turns off the
// request log, which PocketBase writes into its logs database for every
// request by default: Shoal runs at SHOAL_LOG_LEVEL=warn and logs no
// requests either. Then it creates the leads collection: Shoal's LeadCreate
// fields with Shoal's lengths, created/updated timestamps, an index on
// created. Its API rules stay unset, which means superusers only.
func preparePocketBase(ctx context.Context, base, tok string) error {
	settings := map[string]any{
		"batch": map[string]any{"enabled": true, "maxRequests": 1000, "timeout": 120, "maxBodySize": 0},
		"logs":  map[string]any{"maxDays": 0},
	}
	if err := call(ctx, "PATCH", base+"/api/settings", tok, settings, nil); err != nil {
		return err
	}
	text := func(name string, max int, required bool) map[string]any {
		return map[string]any{"name": name, "type": "text", "max": max, "required": required}
	}
	coll := map[string]any{
		"name": "leads",
		"type": "base",
		"fields": []any{
			text("name", 200, true),
			text("company", 200, false),
			text("phone", 40, false),
			map[string]any{"name": "email", "type": "email"},
			text("source", 200, false),
			text("region", 200, false),
			text("industry", 200, false),
			text("notes", 5000, false),
			map[string]any{"name": "tags", "type": "json", "maxSize": 10000},
			map[string]any{"name": "created", "type": "autodate", "onCreate": true},
			map[string]any{"name": "updated", "type": "autodate", "onCreate": true, "onUpdate": true},
		},
		"indexes": []string{"CREATE INDEX idx_leads_created ON leads (created)"},
	}
	return call(ctx, "POST", base+"/api/collections", tok, coll, nil)
}

func seedPocketBase(ctx context.Context, base, tok string, rows int) ([]string, error) {
	const batch = 500
	type item struct {
		Method string          `json:"method"`
		URL    string          `json:"url"`
		Body   json.RawMessage `json:"body"`
	}
	ids := make([]string, 0, rows)
	n := 0
	for len(ids) < rows {
		var reqs []item
		for len(ids)+len(reqs) < rows && len(reqs) < batch {
			n++
			reqs = append(reqs, item{"POST", "/api/collections/leads/records", leadBody("000", 1, n)})
		}
		var out []struct {
			Status int `json:"status"`
			Body   struct {
				ID string `json:"id"`
			} `json:"body"`
		}
		if err := call(ctx, "POST", base+"/api/batch", tok, map[string]any{"requests": reqs}, &out); err != nil {
			return nil, err
		}
		if len(out) != len(reqs) {
			return nil, fmt.Errorf("batch of %d answered %d results", len(reqs), len(out))
		}
		for _, r := range out {
			if r.Status < 200 || r.Status > 299 || r.Body.ID == "" {
				return nil, fmt.Errorf("batch create answered %d", r.Status)
			}
			ids = append(ids, r.Body.ID)
		}
	}
	return ids, nil
}

// buildPocketBase installs PocketBase's examples/base from the Go module
// proxy into dir, unless an earlier run left it there.
func buildPocketBase(ctx context.Context, dir, version string) (string, error) {
	bin := filepath.Join(dir, "base")
	if _, err := os.Stat(bin); err == nil {
		fmt.Printf("== PocketBase %s already built: %s\n", version, bin)
		return bin, nil
	}
	step("build PocketBase " + version + " into " + dir + " (about 2 minutes)")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	err := runCmd(ctx, []string{"GOBIN=" + dir}, "go", "install", "github.com/pocketbase/pocketbase/examples/base@"+version)
	if err != nil {
		return "", fmt.Errorf("build PocketBase: %w", err)
	}
	return bin, nil
}

func (s *server) start(env []string, logFile, bin string, args ...string) error {
	f, err := os.Create(logFile)
	if err != nil {
		return err
	}
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() {
		_ = s.cmd.Wait()
		f.Close()
		close(s.exited)
	}()
	return nil
}

// waitReady polls url until it answers 200; there is no other signal that a
// server is listening and has its database open.
func (s *server) waitReady(ctx context.Context, url, logFile string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if res, err := client.Do(req); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-s.exited:
			return fmt.Errorf("%s exited at start; see %s", s.name, logFile)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 2 minutes; see %s", s.name, logFile)
		}
	}
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// pgCluster is a throwaway PostgreSQL cluster started the way
// internal/testdb starts one: not durable (fsync off), so it measures Shoal
// rather than the disk.
type pgCluster struct {
	dir, bin, asUser, url string
}

func startPostgres(ctx context.Context) (*pgCluster, error) {
	c := &pgCluster{bin: "/usr/lib/postgresql/15/bin"}
	if _, err := os.Stat(filepath.Join(c.bin, "initdb")); err != nil {
		return nil, fmt.Errorf("PostgreSQL 15 binaries not found in %s (or pass -postgres=false): %w", c.bin, err)
	}
	dir, err := os.MkdirTemp("", "shoal-peer-pg-")
	if err != nil {
		return nil, err
	}
	c.dir = dir
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		out, err := exec.Command("id", "-u", "postgres").Output()
		if err != nil {
			return nil, errors.New("running as root and there is no postgres user to run PostgreSQL as")
		}
		uid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		out, _ = exec.Command("id", "-g", "postgres").Output()
		gid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		c.asUser = "postgres"
	}
	data := filepath.Join(dir, "data")
	if err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", port, dir)
	if err := c.run(ctx, "pg_ctl", "-D", data, "-w", "-t", "60", "-l", filepath.Join(dir, "log"), "-o", opts, "start"); err != nil {
		return nil, err
	}
	if err := c.run(ctx, "createdb", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "postgres", "shoal"); err != nil {
		c.stop()
		return nil, err
	}
	c.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/shoal?sslmode=disable", port)
	return c, nil
}

func (c *pgCluster) run(ctx context.Context, tool string, args ...string) error {
	path := filepath.Join(c.bin, tool)
	if c.asUser != "" {
		return runCmd(ctx, nil, "runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	}
	return runCmd(ctx, nil, path, args...)
}

func (c *pgCluster) stop() {
	// Not ctx: the cluster must stop even when the run was interrupted.
	_ = c.run(context.Background(), "pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	_ = os.RemoveAll(c.dir)
}

// cpuTicks is the CPU time of the whole cluster: the postmaster with its
// reaped children, plus its live children (the backends).
func (c *pgCluster) cpuTicks() (int64, error) {
	b, err := os.ReadFile(filepath.Join(c.dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %w", err)
	}
	st, err := readStat(pid)
	if err != nil {
		return 0, err
	}
	total := st.utime + st.stime + st.cutime + st.cstime
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		child, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cs, err := readStat(child); err == nil && cs.ppid == pid {
			total += cs.utime + cs.stime
		}
	}
	return total, nil
}

func runCmd(ctx context.Context, env []string, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func lookPath(name string) (string, error) { return exec.LookPath(name) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
