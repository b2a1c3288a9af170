package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
)

// importBench is Shoal with two admins: one creates leads one request at
// a time (the baseline), the other imports a file of leads.
type importBench struct {
	env               *apitest.Env
	client            *http.Client
	creator, importer *apitest.Client
	importerEmail     string
}

const importWorkers = 8

func newImportBench(tb testing.TB, databaseURL string) *importBench {
	tb.Helper()
	// As startShoal, with the per-user rate limit out of the way: the
	// baseline measures creating leads, not the limiter.
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env := apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger,
		Auth: auth.Config{UserRate: 1e6, UserBurst: 1e6}}})
	_, creator := env.User(auth.RoleAdmin, nil)
	u, importer := env.User(auth.RoleAdmin, nil)
	env.WorkJobs() // start the job queue
	return &importBench{env: env, client: newHTTPClient(importWorkers), creator: creator, importer: importer, importerEmail: u.Email}
}

// importLead is row i of a file (or request) of leads: a person, a
// company, a phone and an email, all distinct for distinct i; prefix
// keeps the files of one run apart.
func importLead(prefix string, i int) []string {
	name, company, _, _ := searchLead(i)
	h := fnv.New32a()
	_, _ = h.Write([]byte(prefix))
	return []string{name, prefix + company + fmt.Sprint(i), fmt.Sprintf("13%09d", int(h.Sum32()%1000)*200_000+i),
		fmt.Sprintf("%s%d@import.example.cn", strings.ToLower(prefix), i)}
}

// createHTTP creates n leads with createLead from importWorkers callers.
func (ib *importBench) createHTTP(prefix string, n int) run {
	return hammer(importWorkers, n, func(_, i int) error {
		r := importLead(prefix, i)
		body, _ := json.Marshal(map[string]string{"name": r[0], "company": r[1], "phone": r[2], "email": r[3]})
		req, err := http.NewRequest(http.MethodPost, ib.env.URL+"/v1/leads", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+ib.creator.Bearer)
		req.Header.Set("Content-Type", "application/json")
		res, err := ib.client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("createLead: %d %s", res.StatusCode, raw)
		}
		return nil
	})
}

// importResult is what getImport says of a finished import.
type importResult struct {
	ID, Status string
	Counts     struct{ Created, Invalid, Duplicates int }
}

// importCSV uploads a CSV of n leads with Chinese headers and waits for
// the import to end; the run's one operation is the whole import.
func (ib *importBench) importCSV(tb testing.TB, prefix string, n int) (run, importResult) {
	tb.Helper()
	var csv bytes.Buffer
	csv.WriteString("姓名,公司,手机,邮箱\n")
	for i := range n {
		csv.WriteString(strings.Join(importLead(prefix, i), ",") + "\n")
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("kind", "lead")
	fw, _ := mw.CreateFormFile("file", "leads.csv")
	_, _ = fw.Write(csv.Bytes())
	_ = mw.Close()

	var res importResult
	// A full-size import outlives an access token: log in afresh before
	// it and whenever the token expires while polling.
	ib.importer = ib.env.Login(ib.importerEmail, apitest.Password)
	start := time.Now()
	ib.importer.Do("POST", "/v1/imports", body.Bytes(), "Content-Type", mw.FormDataContentType()).Expect(http.StatusAccepted).JSON(&res)
	deadline := start.Add(time.Hour)
	for res.Status != "succeeded" && res.Status != "failed" {
		if time.Now().After(deadline) {
			tb.Fatalf("import still %s after an hour", res.Status)
		}
		time.Sleep(50 * time.Millisecond) // polling the job's progress, as a client does
		got := ib.importer.Do("GET", "/v1/imports/"+res.ID, nil)
		if got.Status == http.StatusUnauthorized {
			ib.importer = ib.env.Login(ib.importerEmail, apitest.Password)
			continue
		}
		got.Expect(http.StatusOK).JSON(&res)
	}
	d := time.Since(start)
	r := run{ok: 1, elapsed: d, lat: []time.Duration{d}, load: loadAvg()}
	if res.Status != "succeeded" || res.Counts.Created != n {
		r.ok, r.failed, r.firstErr = 0, 1, fmt.Errorf("import %s: %+v", res.Status, res.Counts)
	}
	return r, res
}

// importFigures is one engine's import against createLead, rows per
// second each, measured in the same run.
type importFigures struct {
	rows           int
	create, imp    run
	createdByHTTP  int
	importSeconds  float64
	createRowsPerS float64
	importRowsPerS float64
}

func (f importFigures) String() string {
	return fmt.Sprintf("%d-row CSV import in %.1f s = %.0f rows/s; createLead over HTTP (%d workers, %d leads) %.0f rows/s; import/createLead %.2f× (load %s)",
		f.rows, f.importSeconds, f.importRowsPerS, importWorkers, f.createdByHTTP, f.createRowsPerS, f.importRowsPerS/f.createRowsPerS, f.imp.load)
}

// BenchmarkImport imports a CSV of leads (100,000 rows under
// SHOAL_BENCH_FULL=1; target under 30 s on SQLite) and, as the baseline,
// creates leads with createLead over HTTP, on the same database in the
// same run.
func BenchmarkImport(b *testing.B) {
	n := sized(2_000, 100_000)
	m := sized(500, 5_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			ib := newImportBench(b, e.url(b))
			var f importFigures
			f.rows, f.createdByHTTP = n, m
			b.Run("createLead", func(b *testing.B) {
				for i := range b.N {
					f.create = ib.createHTTP(fmt.Sprintf("C%d", i), m)
					mustSucceed(b, "createLead", f.create)
				}
				f.createRowsPerS = f.create.rate()
				b.ReportMetric(f.createRowsPerS, "rows/s")
			})
			b.Run("import", func(b *testing.B) {
				for i := range b.N {
					f.imp, _ = ib.importCSV(b, fmt.Sprintf("I%d", i), n)
					mustSucceed(b, "import", f.imp)
				}
				f.importSeconds = f.imp.elapsed.Seconds()
				f.importRowsPerS = float64(n) / f.importSeconds
				b.ReportMetric(f.importRowsPerS, "rows/s")
				b.ReportMetric(f.importSeconds, "s")
			})
			if f.createRowsPerS > 0 && f.importRowsPerS > 0 {
				line := fmt.Sprintf("import/%s: %s", e.name, f)
				fmt.Println(line)
				b.Log(line)
			}
		})
	}
}

func checkImport(t *testing.T, databaseURL string) {
	const n = 200
	ib := newImportBench(t, databaseURL)
	c := ib.createHTTP("C", 20)
	mustSucceed(t, "createLead", c)
	r, res := ib.importCSV(t, "I", n)
	mustSucceed(t, "import", r)
	raw := openRaw(t, databaseURL, roleReader)
	if got := raw.count(t, "SELECT COUNT(*) FROM leads"); got != n+20 {
		t.Fatalf("%d leads, want %d", got, n+20)
	}
	// The same file again creates nothing.
	_, again := ib.importCSV(t, "I", n)
	if again.Status != "succeeded" || again.Counts.Created != 0 || again.Counts.Duplicates != n {
		t.Fatalf("re-run: %+v", again)
	}
	t.Logf("import (%d rows): %s in %v", n, res.Status, r.elapsed)
}
