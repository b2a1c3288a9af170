package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A path with the characters a URI gives meaning to opens that very file.
func TestOpenSQLitePathIsEscaped(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a#b?c%20d.db")
	s, err := Open(context.Background(), "sqlite:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.DB().Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		if e.Name() == "a#b?c%20d.db" {
			found = true
		}
	}
	if !found {
		t.Fatalf("database not at %s; directory holds %v", path, entries)
	}
}

// The statement cache must behave like uncached statements: the same query
// may run while its own rows are open, a failed statement does not poison
// the next run, and transactions see their own writes.
func TestStatementCache(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	db := s.DB()
	if _, err := db.Exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)"); err != nil {
		t.Fatal(err)
	}
	const ins = "INSERT INTO t (id, v) VALUES (?, ?)"
	for i, v := range []string{"a", "b", "c"} {
		if _, err := db.Exec(ins, i+1, v); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ins, 9, "a"); err == nil {
		t.Fatal("duplicate inserted")
	}
	if _, err := db.Exec(ins, 4, "d"); err != nil {
		t.Fatalf("insert after a constraint failure: %v", err)
	}

	// The same SELECT nested inside its own open rows, on one connection.
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback() }()
	const sel = "SELECT id, v FROM t WHERE id >= ? ORDER BY id"
	outer, err := tx.QueryContext(ctx, sel, 1)
	if err != nil {
		t.Fatal(err)
	}
	pairs := 0
	for outer.Next() {
		var id int
		var v string
		if err := outer.Scan(&id, &v); err != nil {
			t.Fatal(err)
		}
		inner, err := tx.QueryContext(ctx, sel, id)
		if err != nil {
			t.Fatal(err)
		}
		for inner.Next() {
			pairs++
		}
		if err := inner.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := outer.Close(); err != nil {
		t.Fatal(err)
	}
	if pairs != 4+3+2+1 {
		t.Fatalf("nested runs saw %d pairs, want 10", pairs)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE t SET v = ? WHERE id = ?", "z", 1); err != nil {
		t.Fatal(err)
	}
	var v string
	if err := tx.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", 1).Scan(&v); err != nil || v != "z" {
		t.Fatalf("read own write: %q, %v", v, err)
	}
	if err := tx.QueryRowContext(ctx, "SELECT v FROM t WHERE id = ?", 2).Scan(&v); err != nil || v != "b" {
		t.Fatalf("second run of a cached select: %q, %v", v, err)
	}
}

func TestCacheable(t *testing.T) {
	for q, want := range map[string]bool{
		"SELECT 1":                             true,
		"  insert into t values (1)":           true,
		"WITH x AS (SELECT 1) SELECT * FROM x": true,
		"UPDATE t SET a = 1;":                  true,
		"CREATE TABLE t (x)":                   false,
		"PRAGMA wal_checkpoint":                false,
		"BEGIN":                                false,
		"SELECT 1; SELECT 2":                   false,
	} {
		if got := cacheable(q); got != want {
			t.Errorf("cacheable(%q) = %v", q, got)
		}
	}
}
