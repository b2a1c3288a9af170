package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/shoalcrm/shoal/internal/store"
)

// progName is how the operator started this program, for commands the
// server suggests: "bin/shoal" after `make run`, "shoal" when installed.
// A binary `go run` built in a temporary directory is named by the
// command that builds it again.
func progName() string {
	name := os.Args[0]
	switch {
	case name == "" || strings.HasSuffix(name, ".test"):
		return "shoal"
	case strings.Contains(name, "go-build"):
		return "go run ./cmd/shoal"
	case !strings.ContainsRune(name, filepath.Separator):
		return name // found on PATH
	}
	if rel, err := filepath.Rel(".", name); err == nil && !strings.HasPrefix(rel, "..") && !filepath.IsAbs(rel) {
		return "./" + rel
	}
	return name
}

// databaseLocation says where the database is without any secret: the
// absolute path of a SQLite file, or a PostgreSQL server's user, host,
// port and database (never its password, nor the query, which may carry
// one).
func databaseLocation(databaseURL string) string {
	if databaseURL == "" {
		databaseURL = store.DefaultURL
	}
	if rest, ok := strings.CutPrefix(databaseURL, "sqlite:"); ok {
		path := strings.TrimPrefix(rest, "//")
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "sqlite file " + path
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return "an unreadable database url" // it may hold a password: never echo it
	}
	loc := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		loc.User = url.User(u.User.Username())
	}
	return loc.String()
}

// createAdminCommand is the command that creates the first admin on this
// server's database. The database is named only when it is not what the
// command finds by itself (the default, or SHOAL_DATABASE_URL in the same
// environment), and then without its password: PostgreSQL then takes it
// from PGPASSWORD.
func createAdminCommand(databaseURL string, getenv func(string) string) string {
	cmd := progName() + " user create --email admin@example.com --role admin --password-stdin"
	if databaseURL == "" || databaseURL == store.DefaultURL || databaseURL == getenv("SHOAL_DATABASE_URL") {
		return cmd
	}
	if strings.HasPrefix(databaseURL, "sqlite:") {
		return cmd + " --database-url " + shellQuote(databaseURL)
	}
	u, err := url.Parse(databaseURL)
	if err != nil {
		return cmd + " --database-url '…'"
	}
	prefix := ""
	if u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.User(u.User.Username())
			prefix = "PGPASSWORD='…' "
		}
	}
	q := u.Query()
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Del(k)
			prefix = "PGPASSWORD='…' "
		}
	}
	u.RawQuery = q.Encode()
	return prefix + cmd + " --database-url " + shellQuote(u.String())
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
