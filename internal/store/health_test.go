package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestUnavailableClassifies(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("create lead: %w", err) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"context canceled", wrap(context.Canceled), false},
		{"disk full", wrap(&pgconn.PgError{Code: "53100"}), true},
		{"out of memory", wrap(&pgconn.PgError{Code: "53200"}), true},
		{"connection failure", wrap(&pgconn.PgError{Code: "08006"}), true},
		{"admin shutdown", wrap(&pgconn.PgError{Code: "57P01"}), true},
		{"read-only transaction", wrap(&pgconn.PgError{Code: "25006"}), true},
		{"unique violation", wrap(&pgconn.PgError{Code: "23505"}), false},
		{"serialization failure", wrap(&pgconn.PgError{Code: "40001"}), false},
		{"bad connection", wrap(driver.ErrBadConn), true},
		{"network", wrap(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), true},
		{"read-only probe", wrap(ErrReadOnly), true},
	} {
		if got := Unavailable(tc.err); got != tc.want {
			t.Errorf("%s: Unavailable(%v) = %v", tc.name, tc.err, got)
		}
	}
}

// ProbeWrite fails, with an error Unavailable recognises, when the
// database answers pings but cannot take writes.
func TestProbeWrite(t *testing.T) {
	ctx := context.Background()
	t.Run("sqlite full", func(t *testing.T) {
		st, err := Open(ctx, testdb.SQLite(t))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if err := st.ProbeWrite(ctx); err != nil {
			t.Fatalf("healthy database: %v", err)
		}
		// The writer is one long-lived connection: a file that may not grow
		// past its current size is what a full disk looks like to it. Free
		// pages inside the file (River's migrations rebuild tables) would
		// still take a write, as they would on a full disk: drop them first.
		if _, err := st.writeDB.ExecContext(ctx, "VACUUM"); err != nil {
			t.Fatal(err)
		}
		var pages int
		if err := st.writeDB.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			t.Fatal(err)
		}
		if _, err := st.writeDB.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages)); err != nil {
			t.Fatal(err)
		}
		err = st.ProbeWrite(ctx)
		if err == nil || !Unavailable(err) {
			t.Fatalf("full database: ProbeWrite = %v (unavailable: %v)", err, Unavailable(err))
		}
		if err := st.Ping(ctx); err != nil {
			t.Fatalf("a full database still answers pings, or the probe would be pointless: %v", err)
		}
		if _, err := st.writeDB.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
			t.Fatal(err)
		}
		if err := st.ProbeWrite(ctx); err != nil {
			t.Fatalf("after freeing space: %v", err)
		}
	})
	t.Run("postgres read-only", func(t *testing.T) {
		dbURL := testdb.Postgres(t)
		st, err := Open(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.ProbeWrite(ctx); err != nil {
			t.Fatalf("healthy database: %v", err)
		}
		name := strings.TrimPrefix(mustParse(t, dbURL).Path, "/")
		if _, err := st.writeDB.ExecContext(ctx, "ALTER DATABASE "+name+" SET default_transaction_read_only = on"); err != nil {
			t.Fatal(err)
		}
		_ = st.Close()
		// New connections start read-only.
		st, err = Open(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		err = st.ProbeWrite(ctx)
		if !errors.Is(err, ErrReadOnly) || !Unavailable(err) {
			t.Fatalf("read-only database: ProbeWrite = %v", err)
		}
	})
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
