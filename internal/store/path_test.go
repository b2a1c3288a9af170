package store

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// A sqlite: URL's path is a file name as it is: characters that mean
// something in a file: URI (? starts the query, # the fragment, %HH an
// escape) are part of the name, and the database is that file and no
// other.
func TestSQLitePathIsTakenLiterally(t *testing.T) {
	for _, name := range []string{"a#b?c.db", "100%41.db", "x.db?mode=memory", "p&q=r #s.db"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			url := "sqlite:" + filepath.Join(dir, name)
			s, err := Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			tm, err := s.Client.Team.Create().SetName("east").SetPath("/east/").Save(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// The last connection to close checkpoints the WAL and
			// removes it with the shared-memory file: one file is left.
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, e := range entries {
				names = append(names, e.Name())
			}
			if len(names) != 1 || names[0] != name {
				t.Fatalf("directory holds %q, want only %q", names, name)
			}
			head := make([]byte, 16)
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Read(head)
			_ = f.Close()
			if err != nil || !bytes.Equal(head, []byte("SQLite format 3\x00")) {
				t.Fatalf("%s is not a SQLite database: %q, %v", name, head, err)
			}

			again, err := Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = again.Close() })
			if got, err := again.Reader.Team.Get(ctx, tm.ID); err != nil || got.Name != "east" {
				t.Fatalf("reopened: %v, %v", got, err)
			}
		})
	}
}
