package store

import (
	"context"
	"database/sql"
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

// On PostgreSQL an event of a transaction that took its xid earlier but
// commits later never appears after one already shown: while the earlier
// transaction is open, the later one's event is held back; once it ends,
// both show, the earlier first. Without the xmin guard the reader would
// be shown the later event, and reading after it would skip the other.
func TestReadFeedHoldsBackBehindOpenTransactions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := Open(ctx, testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	insert := func(tx interface {
		ExecContext(context.Context, string, ...any) (sql.Result, error)
	}, typ string) {
		t.Helper()
		if _, err := tx.ExecContext(ctx, `INSERT INTO domain_events (id, type, subject_kind, subject_id, data, at)
VALUES ($1, $2, 'lead', $3, '{}', now())`, uuid.New(), typ, uuid.New()); err != nil {
			t.Fatal(err)
		}
	}
	early, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = early.Rollback() }()
	if _, err := early.ExecContext(ctx, "SELECT pg_current_xact_id()"); err != nil { // takes its xid now
		t.Fatal(err)
	}
	late, err := s.writeDB.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	insert(late, "late")
	if err := late.Commit(); err != nil {
		t.Fatal(err)
	}
	rows, err := s.ReadFeed(ctx, FeedPos{}, nil, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 0 {
		t.Fatalf("while an earlier transaction is open the feed shows %+v", rows)
	}
	insert(early, "early")
	if err := early.Commit(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); len(rows) < 2 && time.Now().Before(deadline); {
		if rows, err = s.ReadFeed(ctx, FeedPos{}, nil, 10); err != nil {
			t.Fatal(err)
		}
	}
	if len(rows) != 2 || rows[0].Type != "early" || rows[1].Type != "late" {
		t.Fatalf("after both ended the feed shows %+v, want early then late", rows)
	}
}
