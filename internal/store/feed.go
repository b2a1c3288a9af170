package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	atlas "ariga.io/atlas/sql/schema"
	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql/schema"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
)

// The event feed (listEvents) reads domain_events in an order in which an
// event never appears before one a reader has already been given, so that
// reading "after" the last event seen never skips or repeats one, also with
// many writers and several replicas.
//
// SQLite has one writer: transactions commit one after the other, and
// rowids grow with every insert (max(rowid)+1; events are never deleted),
// so rowid order is commit order and a reader sees a prefix of it. The
// feed reads by rowid: no column, no index, nothing more per write.
//
// PostgreSQL commits concurrently, and neither a UUIDv7 nor a sequence
// number taken in a transaction is in commit order: a transaction that
// took a lower number can commit after a reader has moved past a higher
// one, and "after" would skip it. Each row therefore also keeps its
// transaction's id (xid, the column default pg_current_xact_id()) and a
// sequence number (seq, an identity column), and the feed is ordered by
// (xid, seq) and shows only rows whose transaction is below the reading
// statement's snapshot xmin: every transaction below xmin has ended, and
// any transaction still to commit has an xid at or above it, so nothing
// can later appear before a row already shown. The price is a lag: an
// event shows once every transaction that took its xid before the event's
// had ended. (xid8 is the 64-bit, epoch-extended id: it does not wrap.)

// FeedPos is a position in the feed: the event at it, or the start (the
// zero value). On SQLite XID is 0 and Seq the rowid.
type FeedPos struct{ XID, Seq uint64 }

// String is the position's fixed-width form: 32 hex digits, so that
// positions compare as strings as they do in the feed.
func (p FeedPos) String() string { return fmt.Sprintf("%016x%016x", p.XID, p.Seq) }

// ParseFeedPos reads String's form.
func ParseFeedPos(s string) (FeedPos, bool) {
	if len(s) != 32 || strings.ToLower(s) != s {
		return FeedPos{}, false
	}
	x, err1 := strconv.ParseUint(s[:16], 16, 64)
	q, err2 := strconv.ParseUint(s[16:], 16, 64)
	if err1 != nil || err2 != nil || x > 1<<63-1 || q > 1<<63-1 {
		return FeedPos{}, false
	}
	return FeedPos{XID: x, Seq: q}, true
}

// FeedRow is one row of domain_events as the feed reads it.
type FeedRow struct {
	Pos         FeedPos
	ID          uuid.UUID
	Type        string
	SubjectKind string
	SubjectID   uuid.UUID
	Data        json.RawMessage
	At          time.Time
}

// feedIndex orders the feed on PostgreSQL.
const feedIndex = "domain_events_feed"

// feedMigrateLock is the advisory lock PostgreSQL replicas take while they
// add the feed's columns ("feed" in ASCII).
const feedMigrateLock = 0x66656564

// migrateFeed adds the feed's order columns and index on PostgreSQL (see
// above). They are not in the ent schema: their types and defaults have
// no meaning on SQLite, and ent inserts never name them. A database made
// before them gets them here; its existing rows take the migration's xid
// and a seq in their physical order.
func (s *Store) migrateFeed(ctx context.Context) error {
	if s.Dialect != dialect.Postgres {
		return nil
	}
	conn, err := s.writeDB.Conn(ctx)
	if err != nil {
		return fmt.Errorf("feed columns: %w", err)
	}
	defer discard(conn)
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", feedMigrateLock); err != nil {
		return fmt.Errorf("feed columns lock: %w", err)
	}
	// ALTER TABLE takes its exclusive lock before it looks whether the
	// column exists: on every start but the first it would stall the
	// writers of events for nothing, so look first.
	var have int
	if err := conn.QueryRowContext(ctx, `SELECT
 (SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()
   AND table_name = 'domain_events' AND column_name IN ('xid', 'seq'))
 + (SELECT count(*) FROM pg_indexes WHERE schemaname = current_schema() AND indexname = $1)`, feedIndex).Scan(&have); err != nil {
		return fmt.Errorf("feed columns: %w", err)
	}
	if have == 3 {
		_, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", feedMigrateLock)
		return err
	}
	for _, q := range []string{
		"ALTER TABLE domain_events ADD COLUMN IF NOT EXISTS xid xid8 NOT NULL DEFAULT pg_current_xact_id()",
		"ALTER TABLE domain_events ADD COLUMN IF NOT EXISTS seq bigint GENERATED ALWAYS AS IDENTITY",
		"CREATE INDEX IF NOT EXISTS " + feedIndex + " ON domain_events (xid, seq)",
	} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("feed columns: %w", err)
		}
	}
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", feedMigrateLock); err != nil {
		return fmt.Errorf("feed columns unlock: %w", err)
	}
	return nil
}

// keepFeedIndex keeps ent's migration (which drops indexes the schema does
// not declare) from dropping the feed's index, which it does not know.
func keepFeedIndex(next schema.Differ) schema.Differ {
	return schema.DiffFunc(func(current, desired *atlas.Schema) ([]atlas.Change, error) {
		changes, err := next.Diff(current, desired)
		if err != nil {
			return nil, err
		}
		out := changes[:0]
		for _, c := range changes {
			if m, ok := c.(*atlas.ModifyTable); ok && m.T != nil && m.T.Name == "domain_events" {
				kept := m.Changes[:0]
				for _, mc := range m.Changes {
					if d, ok := mc.(*atlas.DropIndex); ok && d.I != nil && d.I.Name == feedIndex {
						continue
					}
					kept = append(kept, mc)
				}
				if m.Changes = kept; len(kept) == 0 {
					continue
				}
			}
			out = append(out, c)
		}
		return out, nil
	})
}

// ReadFeed returns up to limit events after pos in feed order, only those
// of the given types when types is not empty. It reads through the reader
// pool, in one statement (one snapshot).
func (s *Store) ReadFeed(ctx context.Context, after FeedPos, types []string, limit int) ([]FeedRow, error) {
	var (
		q    strings.Builder
		args []any
	)
	if s.Dialect == dialect.Postgres {
		// The xid is read as text under another name: ORDER BY xid
		// would otherwise sort by the output column, as text.
		q.WriteString("SELECT " + s.feedColumns() + `
WHERE (e.xid, e.seq) > ($1::text::xid8, $2) AND e.xid < pg_snapshot_xmin(pg_current_snapshot())`)
		args = append(args, strconv.FormatUint(after.XID, 10), int64(after.Seq))
		if len(types) > 0 {
			q.WriteString(" AND e.type = ANY($3::text[])")
			args = append(args, "{"+strings.Join(types, ",")+"}")
		}
		fmt.Fprintf(&q, " ORDER BY e.xid, e.seq LIMIT %d", limit)
	} else {
		q.WriteString("SELECT " + s.feedColumns() + " WHERE e.rowid > ?")
		args = append(args, int64(after.Seq))
		if len(types) > 0 {
			raw, _ := json.Marshal(types)
			q.WriteString(" AND e.type IN (SELECT value FROM json_each(?))")
			args = append(args, string(raw))
		}
		fmt.Fprintf(&q, " ORDER BY e.rowid LIMIT %d", limit)
	}
	rows, err := s.readDB.QueryContext(ctx, q.String(), args...)
	if err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	return scanFeed(rows)
}

// scanFeed reads the rows of a query of feedColumns.
func scanFeed(rows *sql.Rows) ([]FeedRow, error) {
	defer rows.Close()
	var out []FeedRow
	for rows.Next() {
		var (
			r    FeedRow
			xid  string
			seq  int64
			data []byte
			at   sql.NullTime
		)
		if err := rows.Scan(&xid, &seq, &r.ID, &r.Type, &r.SubjectKind, &r.SubjectID, &data, &at); err != nil {
			return nil, fmt.Errorf("read feed: %w", err)
		}
		x, err := strconv.ParseUint(xid, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("read feed: xid %q: %w", xid, err)
		}
		r.Pos, r.Data, r.At = FeedPos{XID: x, Seq: uint64(seq)}, data, at.Time.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read feed: %w", err)
	}
	return out, nil
}

// feedColumns are the columns scanFeed reads, and the table.
func (s *Store) feedColumns() string {
	if s.Dialect == dialect.Postgres {
		return `e.xid::text AS xid_text, e.seq, e.id, e.type, e.subject_kind, e.subject_id, e.data, e.at FROM domain_events e`
	}
	return `'0', e.rowid, e.id, e.type, e.subject_kind, e.subject_id, e.data, e.at FROM domain_events e`
}

// FeedRowByID returns the event whose row id is id, as the feed reads it
// (a webhook delivery builds its body from it at each attempt).
func (s *Store) FeedRowByID(ctx context.Context, id uuid.UUID) (FeedRow, error) {
	q := "SELECT " + s.feedColumns() + " WHERE e.id = ?"
	if s.Dialect == dialect.Postgres {
		q = "SELECT " + s.feedColumns() + " WHERE e.id = $1"
	}
	rows, err := s.readDB.QueryContext(ctx, q, id)
	if err != nil {
		return FeedRow{}, fmt.Errorf("read event: %w", err)
	}
	out, err := scanFeed(rows)
	if err != nil {
		return FeedRow{}, err
	}
	if len(out) == 0 {
		return FeedRow{}, fmt.Errorf("read event %s: %w", id, sql.ErrNoRows)
	}
	return out[0], nil
}

// FeedPosOf returns the feed position of the event row id written in tx
// (its xid and seq on PostgreSQL, its rowid on SQLite), known as soon as
// the row is inserted.
func (s *Store) FeedPosOf(ctx context.Context, tx *ent.Tx, id uuid.UUID) (FeedPos, error) {
	q := "SELECT xid::text, seq FROM domain_events WHERE id = $1"
	if s.Dialect != dialect.Postgres {
		q = "SELECT '0', rowid FROM domain_events WHERE id = ?"
	}
	rows, err := tx.QueryContext(ctx, q, id)
	if err != nil {
		return FeedPos{}, fmt.Errorf("event position: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return FeedPos{}, fmt.Errorf("event position: %w", err)
		}
		return FeedPos{}, fmt.Errorf("event position %s: %w", id, sql.ErrNoRows)
	}
	var (
		xid string
		seq int64
	)
	if err := rows.Scan(&xid, &seq); err != nil {
		return FeedPos{}, fmt.Errorf("event position: %w", err)
	}
	x, err := strconv.ParseUint(xid, 10, 64)
	if err != nil {
		return FeedPos{}, fmt.Errorf("event position: xid %q: %w", xid, err)
	}
	return FeedPos{XID: x, Seq: uint64(seq)}, rows.Close()
}
