package bench

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/webhookdelivery"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testkit"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

// The webhook benchmark measures deliveries per second to a local
// receiver: n leads are created (not timed), then the dispatch turns
// their lead.created events into deliveries and the job queue sends them
// all (timed, until the last is recorded delivered). The baseline, from
// the same run, is the receiver's own rate: n plain POSTs of a like body
// from as many concurrent senders as the delivery queue has workers. The
// ratio says what the queue, the signing and the recording cost.

type whBench struct {
	env      *apitest.Env
	rep      *auth.Principal
	receiver *httptest.Server
	got      atomic.Int64
	hook     uuid.UUID
}

func newWHBench(tb testing.TB, databaseURL string) *whBench {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := &whBench{}
	b.receiver = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		b.got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	tb.Cleanup(b.receiver.Close)
	b.env = apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger}})
	w := b.env.World
	admin := testkit.Principal(w.User("admin", nil))
	team := w.Team(w.Unique("t"), nil)
	b.rep = testkit.Principal(w.User("rep", &team.ID))
	c, err := b.env.App.Webhooks.Create(w.Ctx, admin, webhooks.Input{URL: b.receiver.URL, EventTypes: []string{"lead.created"}})
	if err != nil {
		tb.Fatal(err)
	}
	b.hook = c.ID
	w.WorkJobs() // start the queue before anything is timed
	return b
}

// leads creates n leads through the service.
func (b *whBench) leads(tb testing.TB, n int) {
	tb.Helper()
	run := uuid.NewString()[:8]
	r := hammer(4, n, func(_, i int) error {
		name := fmt.Sprintf("wh-%s-%d", run, i)
		_, err := b.env.App.Records.CreateLead(b.env.World.Ctx, b.rep, records.LeadInput{Name: &name})
		return err
	})
	mustSucceed(tb, "create leads", r)
}

// deliver dispatches what is new and works the queue until every delivery
// is delivered; it returns the time taken.
func (b *whBench) deliver(tb testing.TB) time.Duration {
	tb.Helper()
	start := time.Now()
	b.env.World.Dispatch()
	elapsed := time.Since(start)
	pending, err := b.env.App.Store.Client.WebhookDelivery.Query().
		Where(webhookdelivery.StatusNEQ(webhookdelivery.StatusDelivered)).Count(b.env.World.Ctx)
	if err != nil || pending > 0 {
		tb.Fatalf("%d deliveries not delivered (%v)", pending, err)
	}
	return elapsed
}

// baseline POSTs n bodies straight to the receiver from senders
// concurrent senders.
func (b *whBench) baseline(tb testing.TB, n, senders int) run {
	client := newHTTPClient(senders)
	defer client.CloseIdleConnections()
	body := []byte(`{"id":"00000000000000000000000000000001","type":"lead.created","data":{}}`)
	r := hammer(senders, n, func(_, _ int) error {
		res, err := client.Post(b.receiver.URL, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		return res.Body.Close()
	})
	mustSucceed(tb, "baseline posts", r)
	return r
}

func whLine(engine string, n int, elapsed time.Duration, base run) string {
	rate := float64(n) / elapsed.Seconds()
	return fmt.Sprintf("webhooks/%s: %d deliveries in %s = %.0f/s; receiver baseline %.0f POSTs/s; ratio %.3f [load %s]",
		engine, n, elapsed.Round(time.Millisecond), rate, base.rate(), rate/base.rate(), base.load)
}

// BenchmarkWebhookDeliveries measures deliveries per second on each
// engine against the receiver's own rate (see whBench).
func BenchmarkWebhookDeliveries(b *testing.B) {
	n := sized(200, 5_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			wb := newWHBench(b, e.url(b))
			var total time.Duration
			for range b.N {
				wb.leads(b, n)
				b.ResetTimer()
				total += wb.deliver(b)
				b.StopTimer()
			}
			base := wb.baseline(b, n, 16)
			b.ReportMetric(float64(n*b.N)/total.Seconds(), "deliveries/s")
			b.ReportMetric(base.rate(), "baseline-posts/s")
			line := whLine(e.name, n*b.N, total, base)
			fmt.Println(line)
			b.Log(line)
		})
	}
}

// TestWebhookDeliveriesBenchSmall runs the benchmark's body at a small
// size on both engines: every lead's event reaches the receiver once.
func TestWebhookDeliveriesBenchSmall(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			const n = 20
			wb := newWHBench(t, e.url(t))
			wb.leads(t, n)
			elapsed := wb.deliver(t)
			if got := wb.got.Load(); got != n {
				t.Fatalf("the receiver got %d deliveries, want %d", got, n)
			}
			t.Log(whLine(e.name, n, elapsed, wb.baseline(t, n, 4)))
		})
	}
}
