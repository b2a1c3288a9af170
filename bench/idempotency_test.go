package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
)

// The idempotency benchmark measures what an Idempotency-Key costs
// createLead: the same creates, from claimWorkers concurrent reps, with a
// fresh key each and without. A keyed create looks its key up, keeps its
// transaction open while the handler answers (store.Hold), and writes its
// sealed answer in that transaction. Target: keyed ≤ 1.15 × plain time
// per create. The two kinds alternate in rounds, so that the database's
// growth and the machine's noise fall on both alike.

type idemBench struct {
	env    *apitest.Env
	client *http.Client
	reps   *sessions
	raw    *rawDB
	run    string // names the run's leads
}

func newIdemBench(tb testing.TB, databaseURL string, workers int) *idemBench {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env := apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger,
		Auth: auth.Config{UserRate: 1e6, UserBurst: 1e6}}})
	b := &idemBench{env: env, client: newHTTPClient(workers), raw: openRaw(tb, databaseURL, roleReader), run: uuid.NewString()[:8]}
	tb.Cleanup(b.client.CloseIdleConnections)
	b.reps = newSessions(tb, env, b.client, "rep", workers)
	return b
}

// creates makes n leads through POST /v1/leads, each with a fresh
// Idempotency-Key if keyed; round names them apart.
func (b *idemBench) creates(n int, keyed bool, round int) run {
	return hammer(len(b.reps.ids), n, func(w, i int) error {
		body := fmt.Sprintf(`{"name":"idem-%s-%t-%d-%d"}`, b.run, keyed, round, i)
		req, err := http.NewRequest(http.MethodPost, b.env.URL+"/v1/leads", bytes.NewReader([]byte(body)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+b.reps.token(w))
		if keyed {
			req.Header.Set("Idempotency-Key", uuid.NewString())
		}
		res, err := b.client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("create: %d %s", res.StatusCode, strings.TrimSpace(string(raw)))
		}
		return nil
	})
}

// compare runs rounds of n plain and n keyed creates, alternating, and
// returns both.
func (b *idemBench) compare(tb testing.TB, n, rounds int) (plain, keyed run) {
	for r := range rounds {
		p := b.creates(n, false, r)
		mustSucceed(tb, "plain creates", p)
		plain = plain.merge(p)
		k := b.creates(n, true, r)
		mustSucceed(tb, "keyed creates", k)
		keyed = keyed.merge(k)
	}
	return plain, keyed
}

// idemLine is the result: rates, latencies and the cost ratio (the keyed
// create's time over the plain one's, from the rates).
func idemLine(engine string, plain, keyed run) string {
	return fmt.Sprintf("idempotency/%s: plain %.0f/s (p50 %.2f ms, p99 %.2f ms) keyed %.0f/s (p50 %.2f ms, p99 %.2f ms) cost %.3f× (target ≤ 1.15) [load %s]",
		engine, plain.rate(), ms(plain.pct(0.5)), ms(plain.pct(0.99)), keyed.rate(), ms(keyed.pct(0.5)), ms(keyed.pct(0.99)),
		plain.rate()/keyed.rate(), keyed.load)
}

// BenchmarkIdempotencyKey compares createLead with and without an
// Idempotency-Key on each engine (see idemBench).
func BenchmarkIdempotencyKey(b *testing.B) {
	n := sized(200, 5_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			ib := newIdemBench(b, e.url(b), claimWorkers)
			ib.compare(b, n/4, 1) // warm up
			var plain, keyed run
			b.ResetTimer()
			for range b.N {
				p, k := ib.compare(b, n/4, 4)
				plain, keyed = plain.merge(p), keyed.merge(k)
			}
			b.StopTimer()
			b.ReportMetric(plain.rate(), "plain-creates/s")
			b.ReportMetric(keyed.rate(), "keyed-creates/s")
			b.ReportMetric(plain.rate()/keyed.rate(), "keyed/plain-cost")
			line := idemLine(e.name, plain, keyed)
			fmt.Println(line)
			b.Log(line)
		})
	}
}

// TestIdempotencyKeyBenchSmall runs the benchmark's body at a small size
// on both engines and checks that every create it timed made one lead, and
// every keyed one stored one answer.
func TestIdempotencyKeyBenchSmall(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			const n = 24
			ib := newIdemBench(t, e.url(t), 4)
			plain, keyed := ib.compare(t, n, 1)
			if plain.ok != n || keyed.ok != n {
				t.Fatalf("%d plain and %d keyed creates timed, want %d each", plain.ok, keyed.ok, n)
			}
			if got := ib.raw.count(t, ib.raw.q("SELECT COUNT(*) FROM leads WHERE name LIKE ?"), "idem-"+ib.run+"-%"); got != 2*n {
				t.Fatalf("%d leads, want %d", got, 2*n)
			}
			if got := ib.raw.count(t, "SELECT COUNT(*) FROM idempotency_records"); got != n {
				t.Fatalf("%d stored answers, want %d", got, n)
			}
			t.Log(idemLine(e.name, plain, keyed))
		})
	}
}
