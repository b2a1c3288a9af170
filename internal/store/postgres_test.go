package store

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// OpenPostgresDB's connections encode a uuid.UUID as its bytes, not
// through pgx's driver.Valuer fallback (string, failed encode, parse), and
// the value round-trips.
func TestPostgresEncodesUUIDsDirectly(t *testing.T) {
	db, err := OpenPostgresDB(testdb.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	ctx := context.Background()
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	id := uuid.New()
	err = conn.Raw(func(dc any) error {
		plan := dc.(*stdlib.Conn).Conn().TypeMap().PlanEncode(pgtype.UUIDOID, pgtype.BinaryFormatCode, id)
		if got := fmt.Sprintf("%T", plan); got == "*pgtype.encodePlanDriverValuer" {
			return fmt.Errorf("uuid.UUID encodes through %s", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var back uuid.UUID
	if err := conn.QueryRowContext(ctx, "SELECT $1::uuid", id).Scan(&back); err != nil || back != id {
		t.Fatalf("round trip: %v, %v, want %v", back, err, id)
	}
}
