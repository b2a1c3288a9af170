package store

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/shoalcrm/shoal/ent"
)

// Under steady writes with readers always about, the WAL stays within
// twice its limit (past the limit the writer empties it when readers let
// it within a second; past twice the limit it waits for them) plus what
// one group commit adds before the writer looks (walSlack), instead of
// growing for as long as the load lasts. On an idle machine it stays
// within the limit and the slack.
func TestWALStaysBounded(t *testing.T) {
	const (
		limit   = 128 << 10
		writers = 8
		txs     = 100 // per writer
		payload = 2 << 10
		readers = 4
	)
	// walSlack is the most one transaction of the batcher writes past the
	// limit before the writer looks: at most one caller per writer, each
	// a row of payload bytes, on 4 KiB pages with a 24-byte frame header,
	// plus a rewritten interior page per caller; twice over for safety.
	const walSlack = 2 * writers * (payload + 2*(4096+24))
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wal.db")
	s, err := Open(ctx, "sqlite:"+path, WithWALLimit(limit))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.writeDB.ExecContext(ctx, "CREATE TABLE blob (id INTEGER PRIMARY KEY, body TEXT NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("x", payload)

	var largest atomic.Int64
	look := func() {
		if n := s.wal.bytes(); n > largest.Load() {
			largest.Store(n)
		}
	}
	stop := make(chan struct{})
	var readWG sync.WaitGroup
	for range readers {
		readWG.Add(1)
		go func() {
			defer readWG.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				var n int
				if err := s.readDB.QueryRowContext(ctx, "SELECT count(*) FROM blob").Scan(&n); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var writeWG sync.WaitGroup
	for range writers {
		writeWG.Add(1)
		go func() {
			defer writeWG.Done()
			for range txs {
				err := s.WithTx(ctx, func(tx *ent.Tx) error {
					_, err := tx.ExecContext(ctx, "INSERT INTO blob (body) VALUES (?)", body)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				look()
			}
		}()
	}
	writeWG.Wait()
	close(stop)
	readWG.Wait()
	look()

	written := int64(writers * txs * payload)
	if written < 3*(2*limit+walSlack) {
		t.Fatalf("the test writes too little (%d bytes) to show anything", written)
	}
	forced := map[string]float64{}
	for _, result := range []string{"done", "busy", "error"} {
		var m dto.Metric
		if err := s.wal.forced.WithLabelValues(result).Write(&m); err != nil {
			t.Fatal(err)
		}
		forced[result] = m.GetCounter().GetValue()
	}
	if got := largest.Load(); got > 2*limit+walSlack {
		t.Fatalf("WAL reached %d bytes; twice the limit %d + slack %d (forced checkpoints: %v)", got, limit, walSlack, forced)
	}
	if forced["done"] == 0 {
		t.Fatal("no forced checkpoint was counted")
	}
	t.Logf("largest WAL %d bytes for %d written; forced checkpoints: %v", largest.Load(), written, forced)
}
