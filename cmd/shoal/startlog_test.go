package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

// startLogged runs `shoal serve` with env until it listens, stops it, and
// returns its log records (JSON lines) up to then.
func startLogged(t *testing.T, env map[string]string, args ...string) []map[string]any {
	t.Helper()
	getenv := func(k string) string { return env[k] }
	logs := &testkit.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(ctx, append([]string{"serve"}, args...), getenv, strings.NewReader(""), outW, logs)
		_ = outW.CloseWithError(io.EOF)
		done <- err
	}()
	listening := false
	lines := bufio.NewScanner(outR)
	for lines.Scan() {
		if strings.HasPrefix(lines.Text(), "shoal listening on ") {
			listening = true
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, outR) }()
	if !listening {
		cancel()
		t.Fatalf("server did not start: %v\n%s", <-done, logs.String())
	}
	// Everything logged before "listening" reached stdout is in logs.
	raw := logs.String()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop within 30s")
	}
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(raw), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, rec)
	}
	return out
}

// find returns the one record with msg, failing on none or several.
func find(t *testing.T, recs []map[string]any, msg string) map[string]any {
	t.Helper()
	var hit map[string]any
	for _, r := range recs {
		if r["msg"] == msg {
			if hit != nil {
				t.Fatalf("two %q records", msg)
			}
			hit = r
		}
	}
	if hit == nil {
		t.Fatalf("no %q record in %v", msg, recs)
	}
	return hit
}

// At start the server logs, one line each, where its database is, the
// address it listens on, and, while no admin exists, the command that
// creates one. A PostgreSQL password is never logged.
func TestServeLogsWhereAndHowAtStart(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		const secret = "s3cret-Pw-never-logged"
		wantLoc := ""
		if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
			abs, err := filepath.Abs(strings.TrimPrefix(path, "//"))
			if err != nil {
				t.Fatal(err)
			}
			wantLoc = "sqlite file " + abs
		} else {
			// The throwaway cluster trusts local connections and ignores
			// the password, which lets the test give one.
			url = strings.Replace(url, "postgres@", "postgres:"+secret+"@", 1) + "&password=" + secret
			wantLoc = "postgres://postgres@" + strings.SplitN(strings.SplitN(url, "@", 2)[1], "?", 2)[0]
		}
		env := map[string]string{"SHOAL_ADDR": "127.0.0.1:0", "SHOAL_LOG_LEVEL": "info", "SHOAL_SWEEP_INTERVAL": "0"}

		// The URL given as a flag: the suggested command must name it.
		recs := startLogged(t, env, "--database-url", url)
		raw, _ := json.Marshal(recs)
		if strings.Contains(string(raw), secret) {
			t.Fatalf("the password reached the log: %s", raw)
		}
		if got := find(t, recs, "database")["location"]; got != wantLoc {
			t.Errorf("database location %q, want %q", got, wantLoc)
		}
		if addr, _ := find(t, recs, "listening")["addr"].(string); !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
			t.Errorf("listening addr %q", addr)
		}
		cmd, _ := find(t, recs, "no admin yet; create one with")["command"].(string)
		want := "shoal user create --email admin@example.com --role admin --password-stdin --database-url '"
		if !strings.HasPrefix(cmd, want) && !strings.HasPrefix(cmd, "PGPASSWORD='…' "+want) {
			t.Errorf("admin command %q", cmd)
		}
		if strings.HasPrefix(url, "sqlite:") && cmd != want[:len(want)-1]+shellQuote(url) {
			t.Errorf("admin command %q does not name the database %q", cmd, url)
		}

		// The suggested command works as printed (the password on stdin),
		// and the next start has nothing to suggest.
		args := strings.Fields(strings.TrimPrefix(cmd, "PGPASSWORD='…' "))[1:]
		for i, a := range args {
			if strings.HasPrefix(a, "'") {
				args[i] = strings.Trim(a, "'")
			}
		}
		if strings.Contains(args[len(args)-1], "@") && !strings.HasPrefix(url, "sqlite:") {
			args[len(args)-1] = url // PGPASSWORD stands for what was left out
		}
		if err := run(context.Background(), args, env2getenv(env), strings.NewReader("first admin password 1\n"), io.Discard, io.Discard); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		recs = startLogged(t, env, "--database-url", url)
		for _, r := range recs {
			if r["msg"] == "no admin yet; create one with" {
				t.Errorf("an admin exists, yet the server suggests creating one: %v", r)
			}
		}
		find(t, recs, "database")
	})
}

func env2getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestDatabaseLocationAndAdminCommand(t *testing.T) {
	none := func(string) string { return "" }
	for _, c := range []struct {
		url, loc, cmd string
	}{
		{"", "", "shoal user create --email admin@example.com --role admin --password-stdin"},
		{"postgres://shoal:pw@db.internal:5432/crm?sslmode=require", "postgres://shoal@db.internal:5432/crm",
			"PGPASSWORD='…' shoal user create --email admin@example.com --role admin --password-stdin --database-url 'postgres://shoal@db.internal:5432/crm?sslmode=require'"},
		{"postgresql://db/crm?password=pw&sslmode=disable", "postgresql://db/crm",
			"PGPASSWORD='…' shoal user create --email admin@example.com --role admin --password-stdin --database-url 'postgresql://db/crm?sslmode=disable'"},
		{"sqlite:/var/lib/shoal/it's.db", "sqlite file /var/lib/shoal/it's.db",
			`shoal user create --email admin@example.com --role admin --password-stdin --database-url 'sqlite:/var/lib/shoal/it'\''s.db'`},
	} {
		if c.loc != "" {
			if got := databaseLocation(c.url); got != c.loc {
				t.Errorf("databaseLocation(%q) = %q, want %q", c.url, got, c.loc)
			}
		}
		if got := createAdminCommand(c.url, none); got != c.cmd {
			t.Errorf("createAdminCommand(%q) = %q, want %q", c.url, got, c.cmd)
		}
	}
	// From SHOAL_DATABASE_URL, the same environment finds it again.
	env := func(k string) string { return map[string]string{"SHOAL_DATABASE_URL": "postgres://u:pw@h/d"}[k] }
	if got := createAdminCommand("postgres://u:pw@h/d", env); strings.Contains(got, "pw") || strings.Contains(got, "database-url") {
		t.Errorf("with SHOAL_DATABASE_URL: %q", got)
	}
}
