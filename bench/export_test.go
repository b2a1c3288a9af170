package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/pool"
)

const (
	mediaCSV  = "text/csv"
	mediaXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// exportBench is Shoal over n seeded pooled leads, with an admin logged in.
type exportBench struct {
	env    *apitest.Env
	client *http.Client
	admin  *sessions
	n      int
}

func newExportBench(tb testing.TB, databaseURL string, n int) *exportBench {
	tb.Helper()
	s := &exportBench{env: startSearchShoal(tb, databaseURL), client: newHTTPClient(2), n: n}
	tb.Cleanup(s.client.CloseIdleConnections)
	start := time.Now()
	seed := openRaw(tb, databaseURL, roleSeed)
	seedExportLeads(tb, seed, n)
	tb.Logf("seeded %d leads in %s", n, time.Since(start).Round(time.Millisecond))
	// The seeding pool's page cache (256 MB on SQLite) would count in
	// every peak RSS measured after it.
	_ = seed.Close()
	debug.FreeOSMemory()
	s.admin = newSessions(tb, s.env, s.client, "admin", 1)
	return s
}

// seedExportLeads inserts n pooled leads in the default lead pool with
// every text field of a lead filled, tags and notes included, so that a
// row is as wide as a real one.
func seedExportLeads(tb testing.TB, db *rawDB, n int) {
	tb.Helper()
	ctx := context.Background()
	leads := db.newInserter("leads",
		[]string{"id", "created_at", "updated_at", "pool_id", "name", "company", "phone", "email", "name_norm", "company_norm", "phone_norm", "email_norm", "region", "industry"},
		[][2]string{{"status", "'active'"}, {"version", "1"}, {"tags", `'["重点客户","展会"]'`}, {"reclaim_reason", "''"},
			{"source", "'website'"}, {"notes", "'客户对报价感兴趣，下周回访。'"}})
	poolID := pool.DefaultPoolID("lead")
	base := time.Now().UTC().Add(-time.Duration(n)*time.Millisecond - time.Hour)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	for i := range n {
		at := base.Add(time.Duration(i) * time.Millisecond)
		name, company, phone, email := searchLead(i)
		if err := leads.add(ctx, tx, uuid.Must(uuid.NewV7()), at, at, poolID, name, company, phone, email,
			dedupe.Name(name), dedupe.Name(company), dedupe.Phone(phone), dedupe.Email(email),
			searchCities[i%len(searchCities)], searchIndustry(i)); err != nil {
			tb.Fatalf("seed leads: %v", err)
		}
		if (i+1)%seedCommitEvery == 0 || i == n-1 {
			if err := leads.flush(ctx, tx); err != nil {
				tb.Fatalf("seed leads: %v", err)
			}
			if err := tx.Commit(); err != nil {
				tb.Fatalf("commit leads: %v", err)
			}
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				tb.Fatalf("begin: %v", err)
			}
		}
	}
	_ = tx.Rollback()
	db.settle(tb)
}

// exportRun is one pass over every lead: how many rows, how long, how
// many bytes, and the memory it took.
type exportRun struct {
	rows     int
	bytes    int64
	elapsed  time.Duration
	peakHeap uint64 // sampled HeapInuse, bytes
	peakRSS  uint64 // VmHWM since the run started, bytes (0: unknown)
}

func (r exportRun) rate() float64 { return float64(r.rows) / r.elapsed.Seconds() }

func (r exportRun) String() string {
	rss := "n/a"
	if r.peakRSS > 0 {
		rss = fmt.Sprintf("%.0f MB", mb(r.peakRSS))
	}
	return fmt.Sprintf("%.0f rows/s (%d rows, %.1f MB, %s), peak heap %.0f MB, peak RSS %s",
		r.rate(), r.rows, mb(uint64(r.bytes)), r.elapsed.Round(time.Millisecond), mb(r.peakHeap), rss)
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// measure runs f while sampling the heap every 10 ms, and reads the
// process's peak RSS, reset before f where the kernel allows
// (/proc/self/clear_refs). Shoal and the client share the process, so
// both are in the figures.
func measure(f func() (rows int, bytes int64, err error)) (exportRun, error) {
	runtime.GC()
	resetHWM := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	start := time.Now()
	rows, n, err := f()
	r := exportRun{rows: rows, bytes: n, elapsed: time.Since(start)}
	close(stop)
	wg.Wait()
	r.peakHeap = peak.Load()
	if resetHWM {
		r.peakRSS = vmHWM()
	}
	return r, err
}

// vmHWM is the process's peak resident set size, 0 if unknown.
func vmHWM() uint64 {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// jsonPages is the baseline: the same leads read the way a client without
// export reads them, GET /v1/leads in pages of 200 following nextCursor.
// ids, when not nil, collects the ids in order.
func (s *exportBench) jsonPages(ids *[]uuid.UUID) (int, int64, error) {
	q := url.Values{"limit": {"200"}}
	rows, total := 0, int64(0)
	for {
		body, err := call(s.client, http.MethodGet, s.env.URL+"/v1/leads?"+q.Encode(), s.admin.token(0), http.StatusOK)
		if err != nil {
			return rows, total, err
		}
		total += int64(len(body))
		var page struct {
			Items []struct {
				ID uuid.UUID `json:"id"`
			} `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return rows, total, err
		}
		rows += len(page.Items)
		if ids != nil {
			for _, it := range page.Items {
				*ids = append(*ids, it.ID)
			}
		}
		if page.NextCursor == nil {
			return rows, total, nil
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// export downloads every lead as media, handing the body to read as it
// arrives; it returns the bytes received.
func (s *exportBench) export(media string, read func(io.Reader) (int, error)) (int, int64, error) {
	req, err := http.NewRequest(http.MethodGet, s.env.URL+"/v1/leads", nil)
	if err != nil {
		return 0, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.admin.token(0))
	req.Header.Set("Accept", media)
	res, err := s.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer res.Body.Close()
	if ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); res.StatusCode != http.StatusOK || ct != media {
		raw, _ := io.ReadAll(res.Body)
		return 0, 0, fmt.Errorf("export %s: %d %s: %s", media, res.StatusCode, res.Header.Get("Content-Type"), raw)
	}
	counted := &countingReader{r: res.Body}
	rows, err := read(counted)
	if err == nil {
		_, err = io.Copy(io.Discard, counted)
	}
	return rows, counted.n, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countLines counts a CSV's records after the header (the seeded values
// hold no line breaks).
func countLines(r io.Reader) (int, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	n := 0
	for {
		_, err := br.ReadSlice('\n')
		switch err {
		case nil:
			n++
		case bufio.ErrBufferFull:
		case io.EOF:
			return n - 1, nil
		default:
			return n, err
		}
	}
}

// exportResult holds one engine's three passes.
type exportResult struct{ json, csv, xlsx exportRun }

func (r exportResult) String() string {
	return fmt.Sprintf("json pages (baseline) %s; csv %s (×%.1f rows/s); xlsx %s (×%.1f rows/s)",
		r.json, r.csv, r.csv.rate()/r.json.rate(), r.xlsx, r.xlsx.rate()/r.json.rate())
}

// BenchmarkExport exports n seeded leads as CSV and as XLSX through HTTP as
// an admin (rows/s and peak memory), next to the baseline of reading the
// same leads through the JSON list, page by page.
func BenchmarkExport(b *testing.B) {
	n := sized(2_500, 1_000_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := newExportBench(b, e.url(b), n)
			var res exportResult
			for _, side := range []struct {
				name string
				into *exportRun
				run  func() (int, int64, error)
			}{
				{"json", &res.json, func() (int, int64, error) { return s.jsonPages(nil) }},
				{"csv", &res.csv, func() (int, int64, error) { return s.export(mediaCSV, countLines) }},
				{"xlsx", &res.xlsx, func() (int, int64, error) {
					return s.export(mediaXLSX, func(io.Reader) (int, error) { return n, nil })
				}},
			} {
				b.Run(side.name, func(b *testing.B) {
					for range b.N {
						r, err := measure(side.run)
						if err != nil {
							b.Fatal(err)
						}
						if r.rows != n {
							b.Fatalf("%s: %d rows, want %d", side.name, r.rows, n)
						}
						*side.into = r
						b.ReportMetric(r.rate(), "rows/s")
						b.ReportMetric(mb(r.peakHeap), "peak-heap-MB")
						b.ReportMetric(mb(r.peakRSS), "peak-rss-MB")
					}
				})
			}
			s.checkAudited(b, mediaXLSX, n)
			line := fmt.Sprintf("export/%s (%d leads): %s", e.name, n, res)
			fmt.Println(line)
			b.Log(line)
		})
	}
}

// checkAudited fails unless the latest export audit row says rows=n in
// media's format: the XLSX pass only counts bytes, Shoal's own count of
// what it wrote is the check that every row went out.
func (s *exportBench) checkAudited(tb testing.TB, media string, n int) {
	tb.Helper()
	body, err := call(s.client, http.MethodGet, s.env.URL+"/v1/audit-events?operation=listLeads&limit=1", s.admin.token(0), http.StatusOK)
	if err != nil {
		tb.Fatal(err)
	}
	var page struct {
		Items []struct {
			Detail string `json:"detail"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		tb.Fatal(err)
	}
	ext := "csv"
	if media == mediaXLSX {
		ext = "xlsx"
	}
	if want := fmt.Sprintf("export format=%s rows=%d", ext, n); len(page.Items) != 1 || page.Items[0].Detail != want {
		tb.Fatalf("latest export audit row %+v, want %q", page.Items, want)
	}
}

// checkExport runs the export benchmark's body at a small size, over more
// than one of the export's pages, and checks that both files hold the
// JSON list's ids in its order.
func checkExport(t *testing.T, databaseURL string) {
	const n = 2_500
	s := newExportBench(t, databaseURL, n)
	var want []uuid.UUID
	if rows, _, err := s.jsonPages(&want); err != nil || rows != n {
		t.Fatalf("json: %d rows, %v", rows, err)
	}
	idsOf := func(rows [][]string) []uuid.UUID {
		var ids []uuid.UUID
		for _, r := range rows[1:] {
			ids = append(ids, uuid.MustParse(r[0]))
		}
		return ids
	}
	var csvIDs, xlsxIDs []uuid.UUID
	if _, _, err := s.export(mediaCSV, func(r io.Reader) (int, error) {
		rows, err := csv.NewReader(r).ReadAll()
		if err == nil {
			csvIDs = idsOf(rows)
		}
		return len(rows), err
	}); err != nil {
		t.Fatal(err)
	}
	s.checkAudited(t, mediaCSV, n)
	if _, _, err := s.export(mediaXLSX, func(r io.Reader) (int, error) {
		raw, err := io.ReadAll(r)
		if err != nil {
			return 0, err
		}
		f, err := excelize.OpenReader(bytes.NewReader(raw))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		rows, err := f.GetRows(f.GetSheetList()[0])
		if err == nil {
			xlsxIDs = idsOf(rows)
		}
		return len(rows), err
	}); err != nil {
		t.Fatal(err)
	}
	s.checkAudited(t, mediaXLSX, n)
	if !slices.Equal(csvIDs, want) || !slices.Equal(xlsxIDs, want) {
		t.Fatalf("export ids differ from the JSON list's: csv %d, xlsx %d, json %d", len(csvIDs), len(xlsxIDs), len(want))
	}
	r, err := measure(func() (int, int64, error) { return s.export(mediaCSV, countLines) })
	if err != nil || r.rows != n || r.peakHeap == 0 {
		t.Fatalf("measured export: %+v, %v", r, err)
	}
}
