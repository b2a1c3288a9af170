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

// Under steady writes with readers always about, the WAL stays within its
// limit plus what one group commit adds before the writer checks it
// (walSlack), instead of growing for as long as the load lasts.
func TestWALStaysBounded(t *testing.T) {
	const (
		limit   = 128 << 10
		writers = 8
		txs     = 80 // per writer
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
	if written < 3*(limit+walSlack) {
		t.Fatalf("the test writes too little (%d bytes) to show anything", written)
	}
	if got := largest.Load(); got > limit+walSlack {
		t.Fatalf("WAL reached %d bytes; limit %d + slack %d", got, limit, walSlack)
	}
	var done dto.Metric
	if err := s.wal.forced.WithLabelValues("done").Write(&done); err != nil {
		t.Fatal(err)
	}
	if done.GetCounter().GetValue() == 0 {
		t.Fatal("no forced checkpoint was counted")
	}
	t.Logf("largest WAL %d bytes for %d written; %v forced checkpoints", largest.Load(), written, done.GetCounter().GetValue())
}
