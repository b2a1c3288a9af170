package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/records"
)

// endless is an export of a list that never ends, a page of 100 rows at a
// time, which counts the pages read.
func endless(pages *int, mu *sync.Mutex) exportOf[int] {
	return exportOf[int]{
		exportAudit: exportAudit{op: "listLeads", targetType: "lead"},
		noun:        "leads",
		columns:     []export.Column[int]{{EN: "n", ZH: "序号", Value: func(n int) string { return fmt.Sprint(n) }}},
		page: func(ctx context.Context, after *records.Cursor) ([]int, *records.Cursor, error) {
			mu.Lock()
			defer mu.Unlock()
			*pages++
			rows := make([]int, 100)
			for i := range rows {
				rows[i] = *pages*100 + i
			}
			return rows, &records.Cursor{ID: uuid.New()}, nil
		},
	}
}

// recorder keeps the audit rows an export writes.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	err    error
}

func (r *recorder) record(_ context.Context, ev audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return r.err
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStreamStopsWhenTheClientGoes: the goroutine feeding an export stops
// reading the list when the client stops reading (the handler closes the
// pipe) or the request's context ends, and records an incomplete export.
func TestStreamStopsWhenTheClientGoes(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"pipe closed", "context cancelled"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			pages := 0
			rec := &recorder{}
			body, cd, err := streamWith(ctx, wanted{format: export.CSV}, endless(&pages, &mu), time.Now(), rec.record, slog.New(slog.DiscardHandler))
			if err != nil || !strings.HasPrefix(*cd, "attachment; filename=leads-") {
				t.Fatalf("stream: %v, %v", cd, err)
			}
			if _, err := io.ReadFull(body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			if how == "pipe closed" {
				_ = body.Close()
			} else {
				cancel()
				go func() { _, _ = io.Copy(io.Discard, body) }() // the handler copies on until the pipe ends
			}
			waitFor(t, "the incomplete export's audit row", func() bool {
				rec.mu.Lock()
				defer rec.mu.Unlock()
				return len(rec.events) == 1
			})
			mu.Lock()
			stopped := pages
			mu.Unlock()
			ev := rec.events[0]
			if ev.Outcome != audit.Failure || !strings.HasSuffix(ev.Detail, " incomplete") || ev.Operation != "listLeads" {
				t.Fatalf("audit row %+v", ev)
			}
			// No page is read after the audit row.
			time.Sleep(20 * time.Millisecond)
			mu.Lock()
			defer mu.Unlock()
			if pages != stopped {
				t.Fatalf("%d pages read after the export stopped", pages-stopped)
			}
		})
	}
}

// TestStreamAuditsBeforeTheEnd: a complete export's audit row is written
// before the file's end; if it cannot be written the client gets no end.
func TestStreamAuditsBeforeTheEnd(t *testing.T) {
	t.Parallel()
	short := func(n int) exportOf[int] {
		e := endless(new(int), &sync.Mutex{})
		e.page = func(ctx context.Context, after *records.Cursor) ([]int, *records.Cursor, error) {
			if after != nil {
				return nil, nil, nil
			}
			rows := make([]int, n)
			return rows, &records.Cursor{}, nil
		}
		return e
	}
	rec := &recorder{}
	body, _, err := streamWith(context.Background(), wanted{format: export.XLSX, query: "ownerId"}, short(3), time.Now(), rec.record, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body); err != nil {
		t.Fatal(err)
	}
	if len(rec.events) != 1 || rec.events[0].Detail != "export format=xlsx rows=3 query=ownerId" || rec.events[0].Outcome != audit.Success {
		t.Fatalf("audit rows %+v", rec.events)
	}
	boom := errors.New("audit down")
	failing := &recorder{err: boom}
	body, _, err = streamWith(context.Background(), wanted{format: export.CSV}, short(3), time.Now(), failing.record, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body); !errors.Is(err, boom) {
		t.Fatalf("an export whose audit row failed ended with %v", err)
	}
}

func TestChooseMedia(t *testing.T) {
	t.Parallel()
	offers := []string{"application/json", string(export.XLSX), string(export.CSV)}
	for _, tc := range []struct {
		accept []string
		want   string
	}{
		{nil, "application/json"},
		{[]string{""}, "application/json"},
		{[]string{"*/*"}, "application/json"},
		{[]string{"text/csv"}, string(export.CSV)},
		{[]string{"text/csv", "application/json"}, "application/json"}, // two header lines, equal qualities: the earliest offer
		{[]string{"text/csv;q=0.9, application/json;q=0.8"}, string(export.CSV)},
		{[]string{"*/*;q=0.1, text/csv;q=0"}, "application/json"},
		{[]string{"text/*;q=0.5, */*;q=0.1"}, string(export.CSV)},
		{[]string{"TEXT/CSV"}, string(export.CSV)},
		{[]string{"text/html"}, ""},
		{[]string{"*/*;q=0"}, ""},
		{[]string{"garbage;;"}, "application/json"}, // malformed: as if not sent
		{[]string{"garbage"}, "application/json"},
		{[]string{"garbage, text/csv"}, string(export.CSV)},
	} {
		got, ok := chooseMedia(tc.accept, offers)
		if !ok {
			got = ""
		}
		if got != tc.want {
			t.Errorf("Accept %q: %q, want %q", tc.accept, got, tc.want)
		}
	}
}

// TestStreamSurvivesAPanic: a panic while exporting ends the export with
// an error, not the process.
func TestStreamSurvivesAPanic(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	pages := 0
	e := endless(&pages, &mu)
	e.columns = []export.Column[int]{{EN: "n", Value: func(n int) string {
		if n >= 200 {
			panic("a bad column")
		}
		return fmt.Sprint(n)
	}}}
	body, _, err := streamWith(context.Background(), wanted{format: export.CSV}, e, time.Now(), (&recorder{}).record, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(body); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Fatalf("read after a panic: %v", err)
	}
}
