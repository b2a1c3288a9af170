// Package testdb gives tests real databases: a fresh SQLite file per test and,
// when PostgreSQL is available, a fresh database on a throwaway cluster that
// is started once per test process.
//
// PostgreSQL is found through SHOAL_TEST_POSTGRES_URL (an existing server the
// tests may create databases on) or the initdb/pg_ctl binaries on PATH or
// under /usr/lib/postgresql/*/bin. Without it the PostgreSQL variants are
// skipped, unless SHOAL_REQUIRE_POSTGRES=1, when they fail.
package testdb

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver for creating databases
)

// Main runs the tests of a package and stops the PostgreSQL cluster if one was
// started. Use it from TestMain: os.Exit(testdb.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	dropTemplates()
	cluster.stop()
	return code
}

// Each runs fn as a subtest once per available database engine, named
// "sqlite" and "postgres", each with a fresh, empty database URL.
func Each(t *testing.T, fn func(t *testing.T, databaseURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, Postgres(t)) })
}

// SQLite returns the URL of a fresh SQLite database file in a temp dir.
func SQLite(t testing.TB) string {
	t.Helper()
	u := "sqlite:" + filepath.Join(t.TempDir(), "shoal.db")
	handed.Store(u, true)
	return u
}

// Postgres returns the URL of a fresh, empty PostgreSQL database, or skips the
// test when PostgreSQL is not available (fails with SHOAL_REQUIRE_POSTGRES=1).
func Postgres(t testing.TB) string {
	t.Helper()
	base, err := cluster.url()
	if err != nil {
		if os.Getenv("SHOAL_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL required (SHOAL_REQUIRE_POSTGRES=1) but unavailable: %v", err)
		}
		t.Skipf("PostgreSQL unavailable, skipping (set SHOAL_TEST_POSTGRES_URL or install PostgreSQL; SHOAL_REQUIRE_POSTGRES=1 makes this fail): %v", err)
	}
	name := fmt.Sprintf("shoal_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	handed.Store(u.String(), true)
	return u.String()
}

var dbSeq atomic.Int64

var cluster pgCluster

// pgCluster is the throwaway PostgreSQL server of this test process.
type pgCluster struct {
	once    sync.Once
	baseURL string
	err     error
	dir     string
	bin     string
	asUser  string
}

func (c *pgCluster) url() (string, error) {
	c.once.Do(func() {
		if u := os.Getenv("SHOAL_TEST_POSTGRES_URL"); u != "" {
			c.baseURL = u
			return
		}
		c.baseURL, c.err = c.start()
	})
	return c.baseURL, c.err
}

func (c *pgCluster) start() (string, error) {
	bin, err := findPostgresBin()
	if err != nil {
		return "", err
	}
	c.bin = bin
	dir, err := os.MkdirTemp("", "shoal-pg-")
	if err != nil {
		return "", fmt.Errorf("temp dir: %w", err)
	}
	c.dir = dir
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", fmt.Errorf("chown cluster dir: %w", err)
		}
		c.asUser = "postgres"
	}
	// The owner's pid lets a later test process stop this cluster if this
	// one dies without stopping it (killed, or a test timeout's panic, which
	// skips Main's cleanup).
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", fmt.Errorf("write owner pid: %w", err)
	}
	c.reapOrphans(dir)
	data := filepath.Join(dir, "data")
	if out, err := c.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return "", fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -p %d -k %s -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", port, dir)
	if out, err := c.run("pg_ctl", "-D", data, "-w", "-t", "60", "-l", filepath.Join(dir, "log"), "-o", opts, "start"); err != nil {
		return "", fmt.Errorf("pg_ctl start: %w: %s", err, out)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
}

// reapOrphans stops and removes the clusters of test processes that are
// gone. A cluster without an owner.pid (still starting, or made by an older
// testdb) is left alone.
func (c *pgCluster) reapOrphans(self string) {
	dirs, _ := filepath.Glob(filepath.Join(filepath.Dir(self), "shoal-pg-*"))
	for _, dir := range dirs {
		if dir == self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			_, _ = c.run("pg_ctl", "-D", filepath.Join(dir, "data"), "-m", "immediate", "-w", "stop")
		}
		_ = os.RemoveAll(dir)
	}
}

func (c *pgCluster) stop() {
	if c.dir == "" {
		return
	}
	if c.bin != "" {
		_, _ = c.run("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "-w", "stop")
	}
	_ = os.RemoveAll(c.dir)
}

func (c *pgCluster) run(tool string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, tool)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir
	return cmd.CombinedOutput()
}

func findPostgresBin() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "initdb")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	addr := l.Addr().String()
	_, p, _ := strings.Cut(addr, ":")
	return strconv.Atoi(p)
}
