package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

// whReceiver is a webhook receiver on 127.0.0.1; fail tells whether the
// n-th request (1-based) is answered 503.
type whReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	bodies [][]byte
	heads  []http.Header
}

func newWHReceiver(t *testing.T, fail func(n int) bool) *whReceiver {
	r := &whReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies, r.heads = append(r.bodies, body), append(r.heads, req.Header.Clone())
		n := len(r.bodies)
		r.mu.Unlock()
		if fail != nil && fail(n) {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *whReceiver) got() ([][]byte, []http.Header) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.bodies), slices.Clone(r.heads)
}

type whWebhook struct {
	ID, URL, Secret string
	Active          bool
	EventTypes      []string
	FailingSince    *time.Time
}

type whDelivery struct {
	ID, EventID, EventType, Status, Reason string
	AttemptCount                           int
	Attempts                               []struct {
		Number     int
		At         time.Time
		StatusCode *int
		Response   *string
		Error      *string
		RetryAt    *time.Time
	}
}

func whDeliveries(t *testing.T, c *apitest.Client, hook string) []whDelivery {
	t.Helper()
	var page struct{ Items []whDelivery }
	c.Do("GET", "/v1/webhooks/"+hook+"/deliveries", nil).Expect(http.StatusOK).JSON(&page)
	return page.Items
}

// TestWebhookOverHTTP: create (the secret shown once), a lead created
// over HTTP reaches the receiver signed with that secret and with the
// body listEvents shows, the delivery and its attempt are listed; ping
// and redeliver send again; update (with If-Match, rotating the secret)
// and delete.
func TestWebhookOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		_, admin := env.User("admin", nil)
		team := env.Team(env.Unique("t"), nil)
		_, rep := env.User("rep", &team.ID)
		r := newWHReceiver(t, nil)

		rep.Do("POST", "/v1/webhooks", map[string]any{"url": r.URL, "eventTypes": []string{"lead.created"}}).
			ExpectProblem(http.StatusForbidden, "forbidden")
		admin.Do("POST", "/v1/webhooks", map[string]any{"url": r.URL, "eventTypes": []string{"lead.made"}}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		var hook whWebhook
		res := admin.Do("POST", "/v1/webhooks", map[string]any{"url": r.URL, "eventTypes": []string{"lead.created", "lead.claimed"}, "description": "CRM bridge"}).
			Expect(http.StatusCreated)
		res.JSON(&hook)
		if len(hook.Secret) < 40 || !hook.Active || res.Header.Get("ETag") == "" || res.Header.Get("Location") != "/v1/webhooks/"+hook.ID {
			t.Fatalf("created: %s %v", res.Body, res.Header)
		}
		for _, path := range []string{"/v1/webhooks/" + hook.ID, "/v1/webhooks"} {
			if body := admin.Do("GET", path, nil).Expect(http.StatusOK).Body; strings.Contains(string(body), hook.Secret) {
				t.Errorf("GET %s shows the secret", path)
			}
		}

		lead := rep.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("wh"), "phone": "13900001111"}).Expect(http.StatusCreated).Map()
		env.World.Dispatch()
		bodies, heads := r.got()
		if len(bodies) != 1 {
			t.Fatalf("receiver got %d requests, want 1", len(bodies))
		}
		h := heads[0]
		if err := webhooks.Verify(hook.Secret, h.Get("Shoal-Timestamp"), h.Get("Shoal-Signature"), bodies[0], time.Now(), 5*time.Minute); err != nil {
			t.Fatalf("signature: %v", err)
		}
		var feed struct{ Items []map[string]any }
		admin.Do("GET", "/v1/events?type=lead.created&limit=200", nil).Expect(http.StatusOK).JSON(&feed)
		var want map[string]any
		for _, e := range feed.Items {
			if e["subject"].(map[string]any)["id"] == lead["id"] {
				want = e
			}
		}
		var sent map[string]any
		if err := json.Unmarshal(bodies[0], &sent); err != nil {
			t.Fatal(err)
		}
		if want == nil || !jsonEqual(t, want, sent) {
			t.Errorf("delivered %s\nlistEvents shows %v", bodies[0], want)
		}
		if h.Get("Shoal-Event-Id") != want["id"] || h.Get("Shoal-Event-Type") != "lead.created" || h.Get("Shoal-Delivery-Id") == "" {
			t.Errorf("headers %v", h)
		}
		ds := whDeliveries(t, admin, hook.ID)
		if len(ds) != 1 || ds[0].Status != "delivered" || ds[0].AttemptCount != 1 || len(ds[0].Attempts) != 1 ||
			*ds[0].Attempts[0].StatusCode != 200 || *ds[0].Attempts[0].Response != "ok" {
			t.Fatalf("deliveries %+v", ds)
		}

		// Ping, redeliver: the receiver gets both.
		ping := admin.Do("POST", "/v1/webhooks/"+hook.ID+"/ping", nil).Expect(http.StatusAccepted).Map()
		if ping["eventType"] != "webhook.pinged" || ping["reason"] != "ping" {
			t.Errorf("ping %v", ping)
		}
		again := admin.Do("POST", "/v1/webhooks/"+hook.ID+"/deliveries/"+ds[0].ID+"/redeliver", nil).Expect(http.StatusAccepted).Map()
		if again["eventId"] != ds[0].EventID || again["reason"] != "redelivery" || again["redeliveryOf"] != ds[0].ID {
			t.Errorf("redelivery %v", again)
		}
		env.WorkJobs()
		bodies, heads = r.got()
		if len(bodies) != 3 || heads[1].Get("Shoal-Event-Type") == heads[2].Get("Shoal-Event-Type") {
			t.Fatalf("after ping and redeliver: %d requests", len(bodies))
		}
		if n := len(whDeliveries(t, admin, hook.ID)); n != 3 {
			t.Errorf("%d deliveries listed, want 3", n)
		}
		admin.Do("POST", "/v1/webhooks/"+hook.ID+"/deliveries/"+hook.ID+"/redeliver", nil).ExpectProblem(http.StatusNotFound, "not_found")

		// Update: If-Match required; rotate the secret; deactivate.
		path := "/v1/webhooks/" + hook.ID
		admin.Do("PATCH", path, map[string]any{"active": false}).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")
		var rotated whWebhook
		admin.Do("PATCH", path, map[string]any{"rotateSecret": true, "eventTypes": []string{"*"}}, "If-Match", admin.ETag(path)).
			Expect(http.StatusOK).JSON(&rotated)
		if rotated.Secret == "" || rotated.Secret == hook.Secret || !slices.Equal(rotated.EventTypes, []string{"*"}) {
			t.Errorf("rotated %+v", rotated)
		}
		admin.Do("PATCH", path, map[string]any{"active": false}, "If-Match", admin.ETag(path)).Expect(http.StatusOK)
		admin.Do("POST", path+"/ping", nil).ExpectProblem(http.StatusConflict, "webhook_inactive")
		admin.Do("DELETE", path, nil, "If-Match", admin.ETag(path)).Expect(http.StatusNoContent)
		admin.Do("GET", path, nil).ExpectProblem(http.StatusNotFound, "not_found")
		admin.Do("GET", path+"/deliveries", nil).ExpectProblem(http.StatusNotFound, "not_found")
	})
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestWebhookRetriesOverHTTP: a receiver failing twice gets retries with
// growing delays (the test clock moved to each), and the later success
// is recorded in listWebhookDeliveries.
func TestWebhookRetriesOverHTTP(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		clk := &clock.Adjustable{}
		env := apitest.New(t, url, apitest.Options{Config: app.Config{Clock: clk}})
		_, admin := env.User("admin", nil)
		r := newWHReceiver(t, func(n int) bool { return n <= 2 })
		var hook whWebhook
		admin.Do("POST", "/v1/webhooks", map[string]any{"url": r.URL, "eventTypes": []string{"lead.created"}}).Expect(http.StatusCreated).JSON(&hook)
		admin.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("retry"), "email": env.Unique("r") + "@example.com"}).Expect(http.StatusCreated)
		env.World.Dispatch()
		for i := 0; i < 2; i++ {
			ds := whDeliveries(t, admin, hook.ID)
			a := ds[0].Attempts[len(ds[0].Attempts)-1]
			if ds[0].Status != "pending" || a.RetryAt == nil || *a.StatusCode != 503 {
				t.Fatalf("after attempt %d: %+v", i+1, ds[0])
			}
			clk.Advance(a.RetryAt.Sub(clk.Now()))
			env.World.RetryNow("webhook_deliver")
		}
		ds := whDeliveries(t, admin, hook.ID)
		as := ds[0].Attempts
		if ds[0].Status != "delivered" || len(as) != 3 || *as[2].StatusCode != 200 {
			t.Fatalf("deliveries %+v", ds)
		}
		first, second := as[0].RetryAt.Sub(as[0].At), as[1].RetryAt.Sub(as[1].At)
		if first <= 0 || second <= first {
			t.Errorf("retry delays %s then %s: not growing", first, second)
		}
	})
}

// fakeResolver resolves names from a map, so no DNS is involved.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// TestWebhookTargetsRefused: loopback, link-local (the metadata address),
// private addresses and a name resolving to one are refused with 422
// webhook_target_forbidden, on create and on update.
func TestWebhookTargetsRefused(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		res := fakeResolver{
			"intranet.example": {netip.MustParseAddr("10.1.2.3")},
			"partner.example":  {netip.MustParseAddr("203.0.113.10")},
			"sneaky.example":   {netip.MustParseAddr("203.0.113.11"), netip.MustParseAddr("192.168.1.1")},
			"metadata.example": {netip.MustParseAddr("169.254.169.254")},
		}
		env := apitest.New(t, url, apitest.Options{Config: app.Config{Webhooks: webhooks.Config{Guard: webhooks.Guard{Resolver: res}}}})
		_, admin := env.User("admin", nil)
		for _, target := range []string{
			"http://127.0.0.1:8080/hook", "http://[::1]/hook", "http://169.254.169.254/latest/meta-data/",
			"http://10.0.0.1/hook", "https://172.16.5.4/", "http://192.168.0.10/", "http://intranet.example/hook",
			"http://sneaky.example/hook", "http://metadata.example/", "http://localhost/hook", "http://[::ffff:127.0.0.1]/",
		} {
			admin.Do("POST", "/v1/webhooks", map[string]any{"url": target, "eventTypes": []string{"*"}}).
				ExpectProblem(http.StatusUnprocessableEntity, "webhook_target_forbidden")
		}
		admin.Do("POST", "/v1/webhooks", map[string]any{"url": "ftp://partner.example/x", "eventTypes": []string{"*"}}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		var hook whWebhook
		admin.Do("POST", "/v1/webhooks", map[string]any{"url": "https://partner.example/hook", "eventTypes": []string{"*"}}).
			Expect(http.StatusCreated).JSON(&hook)
		path := "/v1/webhooks/" + hook.ID
		admin.Do("PATCH", path, map[string]any{"url": "http://intranet.example/hook"}, "If-Match", admin.ETag(path)).
			ExpectProblem(http.StatusUnprocessableEntity, "webhook_target_forbidden")
		var again whWebhook
		admin.Do("GET", path, nil).Expect(http.StatusOK).JSON(&again)
		if again.URL != "https://partner.example/hook" {
			t.Errorf("a refused update changed the url to %s", again.URL)
		}
	})
}

// TestWebhookRotationAndKeyRevocation: after rotateSecret, deliveries
// carry a signature with the new and with the old secret; a webhook made
// by an API key with webhooks:manage is disabled (key_revoked, with an
// event) once the key is revoked, and nothing more is sent to it.
func TestWebhookRotationAndKeyRevocation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		_, admin := env.User("admin", nil)
		r := newWHReceiver(t, nil)
		k := idCreateKey(t, admin, "webhooks:manage")
		key := idKeyClient(env, k.Secret)
		var hook whWebhook
		key.Do("POST", "/v1/webhooks", map[string]any{"url": r.URL, "eventTypes": []string{"lead.created"}}).Expect(http.StatusCreated).JSON(&hook)
		path := "/v1/webhooks/" + hook.ID
		var rotated whWebhook
		key.Do("PATCH", path, map[string]any{"rotateSecret": true}, "If-Match", key.ETag(path)).Expect(http.StatusOK).JSON(&rotated)

		admin.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("rot"), "email": env.Unique("rot") + "@example.com"}).Expect(http.StatusCreated)
		env.World.Dispatch()
		bodies, heads := r.got()
		if len(bodies) != 1 {
			t.Fatalf("%d deliveries, want 1", len(bodies))
		}
		sig := heads[0].Get("Shoal-Signature")
		if strings.Count(sig, "v1=") != 2 {
			t.Errorf("signature header %q: want the new and the old secret's", sig)
		}
		for _, secret := range []string{hook.Secret, rotated.Secret} {
			if err := webhooks.Verify(secret, heads[0].Get("Shoal-Timestamp"), sig, bodies[0], time.Now(), time.Minute); err != nil {
				t.Errorf("verify: %v", err)
			}
		}

		admin.Do("DELETE", "/v1/api-keys/"+k.ID.String(), nil).Expect(http.StatusNoContent)
		admin.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("rot"), "email": env.Unique("rot") + "@example.com"}).Expect(http.StatusCreated)
		env.World.Dispatch()
		if bodies, _ := r.got(); len(bodies) != 1 {
			t.Errorf("%d deliveries after the key was revoked, want still 1", len(bodies))
		}
		var after struct {
			Active         bool
			DisabledReason string
		}
		admin.Do("GET", path, nil).Expect(http.StatusOK).JSON(&after)
		if after.Active || after.DisabledReason != "key_revoked" {
			t.Errorf("after the revocation: %+v", after)
		}
		var feed struct{ Items []struct{ Type string } }
		admin.Do("GET", "/v1/events?type=webhook.disabled", nil).Expect(http.StatusOK).JSON(&feed)
		if len(feed.Items) != 1 {
			t.Errorf("%d webhook.disabled events, want 1", len(feed.Items))
		}
	})
}
