package testdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, for VACUUM INTO
)

// MigrateFunc applies Shoal's schema to the database at databaseURL and
// closes every connection it opened. testdb cannot import internal/store
// (whose own tests use testdb), so callers hand it in: apitest passes one
// built on store.Migrate.
type MigrateFunc func(ctx context.Context, databaseURL string) error

// FromTemplate gives the empty database at databaseURL (one SQLite or
// Postgres handed out) Shoal's schema by copying a template database that
// is migrated once per test process and engine, instead of migrating it:
// ent's migration inspects and creates every table and index, which costs
// far more than a copy. It reports false, changing nothing, when the
// database is not one testdb made, is not empty or is in use; the caller
// then migrates as before. migrate builds the template the first time.
func FromTemplate(ctx context.Context, databaseURL string, migrate MigrateFunc) (bool, error) {
	switch {
	case strings.HasPrefix(databaseURL, "sqlite:"):
		return sqliteFromTemplate(ctx, databaseURL, migrate)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		return postgresFromTemplate(ctx, databaseURL, migrate)
	}
	return false, nil
}

// templates are this process's migrated template databases.
var templates struct {
	mu sync.Mutex
	// dir holds the SQLite template; removed by Main.
	dir        string
	sqlitePath string
	// pgName is the PostgreSQL template database.
	pgName string
}

func sqliteFromTemplate(ctx context.Context, databaseURL string, migrate MigrateFunc) (bool, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "//")
	if !handedOut(databaseURL) {
		return false, nil
	}
	// Only a database nobody has opened yet: no file, no journal.
	for _, p := range []string{path, path + "-wal", path + "-journal"} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			return false, nil
		}
	}
	tmpl, err := sqliteTemplate(ctx, migrate)
	if err != nil {
		return false, err
	}
	if err := copyFile(tmpl, path); err != nil {
		return false, err
	}
	return true, nil
}

// sqliteTemplate migrates a SQLite database once and keeps a compact copy
// of it (VACUUM INTO: one self-contained file, no write-ahead log).
func sqliteTemplate(ctx context.Context, migrate MigrateFunc) (string, error) {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	if templates.sqlitePath != "" {
		return templates.sqlitePath, nil
	}
	if templates.dir == "" {
		dir, err := os.MkdirTemp("", "shoal-template-")
		if err != nil {
			return "", fmt.Errorf("template dir: %w", err)
		}
		templates.dir = dir
	}
	work := filepath.Join(templates.dir, "migrated.db")
	if err := migrate(ctx, "sqlite:"+work); err != nil {
		return "", fmt.Errorf("migrate sqlite template: %w", err)
	}
	out := filepath.Join(templates.dir, "template.db")
	db, err := sql.Open("sqlite", "file:"+work)
	if err != nil {
		return "", fmt.Errorf("open sqlite template: %w", err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", out); err != nil {
		return "", fmt.Errorf("vacuum sqlite template: %w", err)
	}
	templates.sqlitePath = out
	return out, nil
}

func copyFile(from, to string) error {
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		return fmt.Errorf("database directory: %w", err)
	}
	src, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("open template: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create database from template: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("copy template: %w", err)
	}
	return dst.Close()
}

func postgresFromTemplate(ctx context.Context, databaseURL string, migrate MigrateFunc) (bool, error) {
	if !handedOut(databaseURL) {
		return false, nil
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return false, nil
	}
	name := strings.TrimPrefix(u.Path, "/")
	if empty, err := postgresEmpty(ctx, databaseURL); err != nil || !empty {
		return false, err
	}
	tmpl, err := postgresTemplate(ctx, migrate)
	if err != nil {
		return false, err
	}
	base, err := cluster.url()
	if err != nil {
		return false, err
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return false, fmt.Errorf("connect to postgres: %w", err)
	}
	defer admin.Close()
	// DROP without FORCE: if anyone holds a connection (PostgreSQL waits a
	// few seconds for backends that are exiting) it fails and the caller
	// migrates instead.
	if _, err := admin.ExecContext(ctx, "DROP DATABASE "+name); err != nil {
		return false, nil
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name+" TEMPLATE "+tmpl); err != nil {
		return false, fmt.Errorf("create database from template: %w", err)
	}
	return true, nil
}

// postgresEmpty reports whether the database has no tables.
func postgresEmpty(ctx context.Context, databaseURL string) (bool, error) {
	db, err := sql.Open("pgx", databaseURL)
	if err != nil {
		return false, fmt.Errorf("connect to postgres: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var n int
	err = db.QueryRowContext(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')").Scan(&n)
	if err != nil {
		return false, fmt.Errorf("count tables: %w", err)
	}
	return n == 0, nil
}

// postgresTemplate creates and migrates the template database once. It has
// no open connection afterwards (migrate closes its own), which CREATE
// DATABASE … TEMPLATE requires.
func postgresTemplate(ctx context.Context, migrate MigrateFunc) (string, error) {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	if templates.pgName != "" {
		return templates.pgName, nil
	}
	base, err := cluster.url()
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("shoal_template_%d", os.Getpid())
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", fmt.Errorf("connect to postgres: %w", err)
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
		return "", fmt.Errorf("drop stale template: %w", err)
	}
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	u, _ := url.Parse(base)
	u.Path = "/" + name
	if err := migrate(ctx, u.String()); err != nil {
		return "", fmt.Errorf("migrate postgres template: %w", err)
	}
	templates.pgName = name
	return name, nil
}

// dropTemplates removes the templates (Main, at the end of the process).
func dropTemplates() {
	templates.mu.Lock()
	defer templates.mu.Unlock()
	if templates.dir != "" {
		_ = os.RemoveAll(templates.dir)
	}
	// A throwaway cluster goes as a whole; on a server of
	// SHOAL_TEST_POSTGRES_URL the template would stay behind.
	if templates.pgName != "" && cluster.dir == "" {
		if base, err := cluster.url(); err == nil {
			if admin, err := sql.Open("pgx", base); err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				_, _ = admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+templates.pgName)
				cancel()
				_ = admin.Close()
			}
		}
	}
}

// handedOut records the URLs SQLite and Postgres returned, so that
// FromTemplate never replaces a database testdb did not make.
var handed sync.Map

func handedOut(databaseURL string) bool {
	_, ok := handed.Load(databaseURL)
	return ok
}
