package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"entgo.io/ent/dialect"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// indexes lists the names of the indexes on table.
func indexes(t *testing.T, s *Store, table string) []string {
	t.Helper()
	q := "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name"
	if s.Dialect == dialect.Postgres {
		q = "SELECT indexname FROM pg_indexes WHERE tablename = $1 AND indexname NOT LIKE '%_pkey' ORDER BY indexname"
	}
	rows, err := s.writeDB.QueryContext(context.Background(), q, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Migrating a database made by an older Shoal drops the indexes the
// schema no longer has, and migrating again changes nothing.
func TestMigrateDropsRemovedIndexes(t *testing.T) {
	engines := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "m.db") },
		"postgres": func(t *testing.T) string { return testdb.Postgres(t) },
	}
	for name, url := range engines {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			want := indexes(t, s, "ownership_changes")
			total := func() int {
				q := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index'"
				if s.Dialect == dialect.Postgres {
					q = "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema()"
				}
				var n int
				if err := s.writeDB.QueryRowContext(ctx, q).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			}
			all := total()
			// What an older Shoal created.
			for _, stmt := range []string{
				"CREATE INDEX ownershipchange_to_owner_id_operation_at ON ownership_changes (to_owner_id, operation, at)",
				"CREATE INDEX domainevent_subject_kind_subject_id ON domain_events (subject_kind, subject_id)",
			} {
				if _, err := s.writeDB.ExecContext(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}
			for range 2 {
				if err := s.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				if got := indexes(t, s, "ownership_changes"); !slices.Equal(got, want) {
					t.Fatalf("ownership_changes indexes %v, want %v", got, want)
				}
				// The feed's order index only, on PostgreSQL (see feed.go).
				var wantEvents []string
				if s.Dialect == dialect.Postgres {
					wantEvents = []string{feedIndex}
				}
				if got := indexes(t, s, "domain_events"); !slices.Equal(got, wantEvents) {
					t.Fatalf("domain_events indexes %v, want %v", got, wantEvents)
				}
				if n := total(); n != all {
					t.Fatalf("%d indexes after migrating again, want the %d a fresh database has", n, all)
				}
			}
		})
	}
}
