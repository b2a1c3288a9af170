package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"entgo.io/ent/dialect"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestFeedPosRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []FeedPos{{}, {XID: 1, Seq: 2}, {XID: 1<<63 - 1, Seq: 1<<63 - 1}} {
		got, ok := ParseFeedPos(p.String())
		if !ok || got != p {
			t.Errorf("ParseFeedPos(%q) = %v, %v", p.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "0", "zz000000000000000000000000000000", "0000000000000000000000000000000A",
		"00000000000000000000000000000000a", "ffffffffffffffff0000000000000000"} {
		if _, ok := ParseFeedPos(bad); ok {
			t.Errorf("ParseFeedPos(%q) accepted", bad)
		}
	}
	if (FeedPos{XID: 2}).String() <= (FeedPos{XID: 1, Seq: 1 << 40}).String() {
		t.Error("positions do not compare as strings in feed order")
	}
}

// The feed reads events in order after a position, filtered by type; on
// PostgreSQL a database made before the feed's columns gets them, its
// rows included, and migrating again keeps them.
func TestReadFeed(t *testing.T) {
	t.Parallel()
	engines := map[string]func(t *testing.T) string{
		"sqlite":   func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "f.db") },
		"postgres": func(t *testing.T) string { return testdb.Postgres(t) },
	}
	for name, url := range engines {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := Open(ctx, url(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			write := func(types ...string) {
				t.Helper()
				err := s.WithTx(ctx, func(tx *ent.Tx) error {
					for _, typ := range types {
						if err := tx.DomainEvent.Create().SetType(typ).SetSubjectKind("lead").SetSubjectID(uuid.New()).
							SetData(map[string]any{"data": map[string]any{}}).SetAt(time.Now()).Exec(ctx); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			write("a.one")
			if s.Dialect == dialect.Postgres {
				// As a database made before the feed: no columns, no index.
				for _, q := range []string{"DROP INDEX " + feedIndex, "ALTER TABLE domain_events DROP COLUMN xid",
					"ALTER TABLE domain_events DROP COLUMN seq"} {
					if _, err := s.writeDB.ExecContext(ctx, q); err != nil {
						t.Fatal(err)
					}
				}
				write("a.two")
				for range 2 {
					if err := s.Migrate(ctx); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				write("a.two")
			}
			write("b.one", "a.three")
			write("b.two")
			// On PostgreSQL the rows show once every transaction that took
			// its xid before theirs has ended (other tests' too).
			var all []FeedRow
			for deadline := time.Now().Add(30 * time.Second); len(all) < 5 && time.Now().Before(deadline); {
				if all, err = s.ReadFeed(ctx, FeedPos{}, nil, 100); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			for i, r := range all {
				got = append(got, r.Type)
				if i > 0 && r.Pos.String() <= all[i-1].Pos.String() {
					t.Errorf("position %s after %s", r.Pos, all[i-1].Pos)
				}
				if r.At.IsZero() || r.SubjectKind != "lead" || len(r.Data) == 0 {
					t.Errorf("row %+v", r)
				}
			}
			if want := "a.one a.two b.one a.three b.two"; strings.Join(got, " ") != want {
				t.Fatalf("feed %q, want %q", strings.Join(got, " "), want)
			}
			rest, err := s.ReadFeed(ctx, all[1].Pos, []string{"a.three", "b.two"}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(rest) != 1 || rest[0].Type != "a.three" || rest[0].Pos != all[3].Pos {
				t.Fatalf("after %s, types a.three b.two, limit 1: %+v", all[1].Pos, rest)
			}
		})
	}
}
