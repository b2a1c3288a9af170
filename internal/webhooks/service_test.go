package webhooks_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/webhookattempt"
	"github.com/shoalcrm/shoal/ent/webhookdelivery"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// received is one request a test receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is a webhook receiver on 127.0.0.1 answering with the status
// answer gives for the n-th request (1-based).
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []received
}

func newReceiver(t *testing.T, answer func(n int) int) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.Header.Clone(), body})
		n := len(r.got)
		r.mu.Unlock()
		w.WriteHeader(answer(n))
		_, _ = w.Write([]byte("answer " + http.StatusText(answer(n))))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) requests() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func ok(int) int { return http.StatusOK }

// world is a test world with a test clock, a fixed backoff jitter (factor
// 1.0), an admin and a rep.
type world struct {
	*testkit.World
	clock *clock.Adjustable
	admin *auth.Principal
	rep   *auth.Principal
}

func newWorld(t *testing.T, url string) *world {
	clk := &clock.Adjustable{}
	w := &world{World: testkit.New(t, url, app.Config{Clock: clk,
		Webhooks: webhooks.Config{Jitter: func() float64 { return 0.5 }}}), clock: clk}
	_, w.admin = w.Actor("admin", nil)
	team := w.Team(w.Unique("team"), nil)
	_, w.rep = w.Actor("rep", &team.ID)
	return w
}

func (w *world) hook(url string, types ...string) *webhooks.Created {
	w.T.Helper()
	c, err := w.App.Webhooks.Create(w.Ctx, w.admin, webhooks.Input{URL: url, EventTypes: types})
	if err != nil {
		w.T.Fatalf("create webhook: %v", err)
	}
	return c
}

func (w *world) lead() *records.LeadView {
	w.T.Helper()
	name, phone := w.Unique("lead"), "138"+uuid.NewString()[:8]
	v, err := w.App.Records.CreateLead(w.Ctx, w.rep, records.LeadInput{Name: &name, Phone: &phone})
	if err != nil {
		w.T.Fatalf("create lead: %v", err)
	}
	return v
}

func (w *world) deliveries(hook uuid.UUID) []*ent.WebhookDelivery {
	w.T.Helper()
	ds, err := w.Store.Client.WebhookDelivery.Query().Where(webhookdelivery.WebhookID(hook)).
		Order(ent.Asc(webhookdelivery.FieldEventID), ent.Asc(webhookdelivery.FieldCreatedAt)).All(w.Ctx)
	if err != nil {
		w.T.Fatal(err)
	}
	return ds
}

func (w *world) attempts(delivery uuid.UUID) []*ent.WebhookAttempt {
	w.T.Helper()
	as, err := w.Store.Client.WebhookAttempt.Query().Where(webhookattempt.DeliveryID(delivery)).
		Order(ent.Asc(webhookattempt.FieldNumber)).All(w.Ctx)
	if err != nil {
		w.T.Fatal(err)
	}
	return as
}

// TestDeliveriesAreSignedAndOnlyOfSubscribedTypes: the events after the
// webhook's creation, of its types, arrive once each, signed with its
// secret, with the documented headers and the feed's body.
func TestDeliveriesAreSignedAndOnlyOfSubscribedTypes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := newWorld(t, url)
		before := w.lead() // before the webhook: not sent
		r := newReceiver(t, ok)
		h := w.hook(r.URL, "lead.created", "lead.updated")
		leads := []*records.LeadView{w.lead(), w.lead(), w.lead()}
		w.Dispatch()
		w.Dispatch() // a second dispatch finds nothing new
		got := r.requests()
		if len(got) != len(leads) {
			t.Fatalf("received %d deliveries, want %d", len(got), len(leads))
		}
		seen := map[string]bool{}
		for _, g := range got {
			if err := webhooks.Verify(h.Secret, g.header.Get(webhooks.HeaderTimestamp), g.header.Get(webhooks.HeaderSignature),
				g.body, w.clock.Now(), 5*time.Minute); err != nil {
				t.Errorf("signature: %v", err)
			}
			var ev struct {
				ID      string `json:"id"`
				Type    string `json:"type"`
				Subject struct {
					Kind string    `json:"kind"`
					ID   uuid.UUID `json:"id"`
				} `json:"subject"`
			}
			if err := json.Unmarshal(g.body, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.Type != "lead.created" || g.header.Get(webhooks.HeaderEventType) != ev.Type || g.header.Get(webhooks.HeaderEventID) != ev.ID {
				t.Errorf("delivery headers %v for event %+v", g.header, ev)
			}
			if ev.Subject.ID == before.ID {
				t.Errorf("an event from before the webhook was sent")
			}
			seen[ev.Subject.ID.String()] = true
		}
		for _, l := range leads {
			if !seen[l.ID.String()] {
				t.Errorf("lead %s: no delivery", l.ID)
			}
		}
		for _, d := range w.deliveries(h.ID) {
			if d.Status != webhookdelivery.StatusDelivered || d.Attempts != 1 {
				t.Errorf("delivery %s: %s after %d attempts", d.ID, d.Status, d.Attempts)
			}
		}
	})
}

// TestRetriesGrowThenSucceed: a receiver failing three times gets retries
// after growing delays (the test clock moved to each retry's time), and
// the fourth attempt's success is recorded.
func TestRetriesGrowThenSucceed(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := newWorld(t, url)
		r := newReceiver(t, func(n int) int {
			if n <= 3 {
				return http.StatusServiceUnavailable
			}
			return http.StatusOK
		})
		h := w.hook(r.URL, "lead.created")
		w.lead()
		w.Dispatch()
		var d *ent.WebhookDelivery
		for i := 1; i <= 3; i++ {
			ds := w.deliveries(h.ID)
			if len(ds) != 1 {
				t.Fatalf("%d deliveries, want 1", len(ds))
			}
			d = ds[0]
			if d.Status != webhookdelivery.StatusPending || d.Attempts != i || d.NextAttemptAt == nil {
				t.Fatalf("after attempt %d: %s, %d attempts, next %v", i, d.Status, d.Attempts, d.NextAttemptAt)
			}
			w.clock.Advance(d.NextAttemptAt.Sub(w.clock.Now()))
			w.RetryNow("webhook_deliver")
		}
		d = w.deliveries(h.ID)[0]
		if d.Status != webhookdelivery.StatusDelivered || d.Attempts != 4 {
			t.Fatalf("after the fourth attempt: %s, %d attempts", d.Status, d.Attempts)
		}
		as := w.attempts(d.ID)
		if len(as) != 4 {
			t.Fatalf("%d attempts recorded, want 4", len(as))
		}
		var last time.Duration
		for i, a := range as[:3] {
			if a.StatusCode == nil || *a.StatusCode != http.StatusServiceUnavailable || a.Error == nil || a.RetryAt == nil {
				t.Fatalf("attempt %d: %+v", i+1, a)
			}
			gap := a.RetryAt.Sub(a.At)
			if gap != webhooks.Backoff(i+1, func() float64 { return 0.5 }) || gap <= last {
				t.Errorf("attempt %d: retry after %s (previous %s)", i+1, gap, last)
			}
			last = gap
			if as[i+1].At.Before(*a.RetryAt) {
				t.Errorf("attempt %d at %s, before the retry time %s", i+2, as[i+1].At, a.RetryAt)
			}
		}
		if a := as[3]; a.StatusCode == nil || *a.StatusCode != http.StatusOK || a.Error != nil || a.RetryAt != nil ||
			a.Response == nil || *a.Response != "answer OK" {
			t.Errorf("the success: %+v", a)
		}
		hook, err := w.App.Webhooks.Get(w.Ctx, h.ID)
		if err != nil {
			t.Fatal(err)
		}
		if hook.FailingSince != nil || hook.LastSuccessAt == nil {
			t.Errorf("webhook after the success: failing since %v, last success %v", hook.FailingSince, hook.LastSuccessAt)
		}
	})
}

// TestFailedAfterADayDisabledAfterThree: a receiver that always fails
// gets its delivery marked failed once it is a day old; after three days
// of failures the webhook is disabled, with an event saying so.
func TestFailedAfterADayDisabledAfterThree(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := newWorld(t, url)
		r := newReceiver(t, func(int) int { return http.StatusInternalServerError })
		h := w.hook(r.URL, "lead.created")
		for day := 0; day < 4; day++ {
			w.lead()
			w.Dispatch()
			// Retry at each retry's time until the delivery is done.
			for i := 0; i < 100; i++ {
				ds := w.deliveries(h.ID)
				d := ds[len(ds)-1]
				if d.Status != webhookdelivery.StatusPending {
					break
				}
				w.clock.Advance(d.NextAttemptAt.Sub(w.clock.Now()))
				w.RetryNow("webhook_deliver")
			}
			hook, err := w.App.Webhooks.Get(w.Ctx, h.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !hook.Active {
				if day < 2 {
					t.Fatalf("disabled on day %d", day)
				}
				if hook.DisabledReason == nil || *hook.DisabledReason != "failing" {
					t.Errorf("disabled reason %v", hook.DisabledReason)
				}
				break
			}
			if day == 3 {
				t.Fatal("still active after four days of failures")
			}
		}
		ds := w.deliveries(h.ID)
		for _, d := range ds {
			if d.Status != webhookdelivery.StatusFailed {
				t.Errorf("delivery %s is %s", d.ID, d.Status)
			}
		}
		first := ds[0]
		as := w.attempts(first.ID)
		if age := as[len(as)-1].At.Sub(first.CreatedAt); age < webhooks.RetryFor {
			t.Errorf("the first delivery failed after %s of retries, want at least %s", age, webhooks.RetryFor)
		}
		if len(as) < 15 {
			t.Errorf("the first delivery had %d attempts", len(as))
		}
		n, err := w.Store.Client.DomainEvent.Query().All(w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		disabled := 0
		for _, e := range n {
			if e.Type == "webhook.disabled" && e.SubjectID == h.ID {
				disabled++
			}
		}
		if disabled != 1 {
			t.Errorf("%d webhook.disabled events, want 1", disabled)
		}
	})
}

// TestDeliveriesInOrderPerSubject: while a subject's first delivery waits
// for its retry, the subject's later event is held back (another
// subject's is not); once the first succeeds the later follows, so the
// receiver sees each subject's events in feed order.
func TestDeliveriesInOrderPerSubject(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := newWorld(t, url)
		r := newReceiver(t, func(n int) int {
			if n == 1 {
				return http.StatusBadGateway
			}
			return http.StatusOK
		})
		h := w.hook(r.URL, "lead.created", "lead.updated")
		first := w.lead()
		w.Dispatch() // the first lead's creation: fails once
		if n := len(r.requests()); n != 1 {
			t.Fatalf("%d requests, want 1", n)
		}
		notes := "called back"
		anyVersion := "*"
		if _, err := w.App.Records.UpdateLead(w.Ctx, w.rep, first.ID, &anyVersion, records.LeadInput{Notes: &notes}); err != nil {
			t.Fatal(err)
		}
		other := w.lead()
		w.Dispatch()
		subjects := func() []string {
			var out []string
			for _, g := range r.requests() {
				var ev struct {
					Type    string
					Subject struct{ ID uuid.UUID }
				}
				if err := json.Unmarshal(g.body, &ev); err != nil {
					t.Fatal(err)
				}
				out = append(out, ev.Subject.ID.String()+" "+ev.Type)
			}
			return out
		}
		got := subjects()
		if slices.Contains(got, first.ID.String()+" lead.updated") {
			t.Fatalf("the update was sent before the creation was delivered: %v", got)
		}
		if !slices.Contains(got, other.ID.String()+" lead.created") {
			t.Fatalf("another subject's event was held back: %v", got)
		}
		for i := 0; i < 20; i++ {
			pending, err := w.Store.Client.WebhookDelivery.Query().Where(webhookdelivery.WebhookID(h.ID),
				webhookdelivery.StatusEQ(webhookdelivery.StatusPending)).Count(w.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			if pending == 0 {
				break
			}
			w.clock.Advance(time.Minute)
			w.RetryNow("webhook_deliver")
		}
		got = subjects()
		var mine []string
		for _, s := range got {
			if s[:36] == first.ID.String() {
				mine = append(mine, s[37:])
			}
		}
		if !slices.Equal(mine, []string{"lead.created", "lead.created", "lead.updated"}) {
			t.Errorf("the first lead's deliveries arrived as %v", mine)
		}
	})
}
