package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ---- helpers of the event feed tests (prefix fd) ----

type fdEvent struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurredAt"`
	Subject    struct {
		Kind string `json:"kind"`
		ID   string `json:"id"`
	} `json:"subject"`
	Actor struct {
		Type string  `json:"type"`
		ID   *string `json:"id"`
	} `json:"actor"`
	Data map[string]any `json:"data"`
}

type fdPage struct {
	Items      []fdEvent `json:"items"`
	NextCursor string    `json:"nextCursor"`
}

// fdRead reads the feed as c with query until a read gives nothing new.
func fdRead(t *testing.T, c *apitest.Client, query url.Values) []fdEvent {
	t.Helper()
	var out []fdEvent
	for {
		var pg fdPage
		c.Do("GET", "/v1/events?"+query.Encode(), nil).Expect(http.StatusOK).JSON(&pg)
		out = append(out, pg.Items...)
		if pg.NextCursor == "" {
			t.Fatal("no nextCursor")
		}
		if query.Get("cursor") == pg.NextCursor {
			return out
		}
		query = cloneValues(query)
		query.Del("after")
		query.Set("cursor", pg.NextCursor)
	}
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// fdSettle reads the whole feed as admin once it shows every committed
// event (on PostgreSQL an event shows once every transaction that took its
// xid before it has ended, other tests' on the same server included), and
// checks it holds each once, in order.
func fdSettle(t *testing.T, env *apitest.Env, admin *apitest.Client) []fdEvent {
	t.Helper()
	total, err := env.App.Store.Client.DomainEvent.Query().Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var all []fdEvent
	for deadline := time.Now().Add(30 * time.Second); ; {
		if all = fdRead(t, admin, url.Values{"limit": {"200"}}); len(all) >= total || time.Now().After(deadline) {
			break
		}
	}
	fdExactlyOnce(t, all, total)
	return all
}

func fdExactlyOnce(t *testing.T, got []fdEvent, total int) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("event %s (%s) read after %s (%s)", got[i].ID, got[i].Type, got[i-1].ID, got[i-1].Type)
		}
	}
	if len(got) != total {
		t.Fatalf("read %d events, %d committed", len(got), total)
	}
}

// fdCall is a request from a writer goroutine (no t.Fatal there).
func fdCall(base, bearer, method, path string, body any, header ...string) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, base+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// TestEventFeedConcurrentWriters: sixteen writers create, change, follow
// up and claim leads through HTTP while a reader follows the feed with
// its cursor, on SQLite and on PostgreSQL with two replicas (writers and
// the reader's polls spread over both). What the reader read is every
// committed event, each once, in order.
func TestEventFeedConcurrentWriters(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		// The reader polls as fast as it can: no rate limit in the way.
		opts := apitest.Options{Config: app.Config{Auth: auth.Config{UserRate: 1e5, UserBurst: 1e5}}}
		env := apitest.New(t, databaseURL, opts)
		envs := []*apitest.Env{env}
		if strings.HasPrefix(databaseURL, "postgres") {
			envs = append(envs, apitest.New(t, databaseURL, opts))
		}
		_, admin := env.User(auth.RoleAdmin, nil)
		team := env.Team(env.Unique("Feed team "), nil).ID
		pool := admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": env.Unique("Feed pool "),
			"memberTeamIds": []string{team.String()}}).Expect(http.StatusCreated).Map()["id"].(string)
		const writers, rounds = 16, 3
		bearers := make([]string, writers)
		for i := range bearers {
			_, c := env.User(auth.RoleRep, &team)
			bearers[i] = c.Bearer
		}
		pooled := make([]string, writers*rounds)
		for i := range pooled {
			pooled[i] = admin.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("Pooled %d", i),
				"phone": fmt.Sprintf("135%08d", swSeq.Add(1)), "poolId": pool}).Expect(http.StatusCreated).Map()["id"].(string)
		}

		var wg sync.WaitGroup
		errs := make(chan error, writers)
		done := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				base, bearer := envs[i%len(envs)].URL, bearers[i]
				for r := range rounds {
					if err := fdWriteRound(base, bearer, pooled[i*rounds+r]); err != nil {
						errs <- fmt.Errorf("writer %d: %w", i, err)
						return
					}
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()

		readers := make([]*apitest.Client, len(envs))
		for i, e := range envs {
			readers[i] = e.Anonymous()
			readers[i].Bearer = admin.Bearer
		}
		var got []fdEvent
		cursor, polls := "", 0
		read := func() {
			q := url.Values{"limit": {"7"}}
			if cursor != "" {
				q.Set("cursor", cursor)
			}
			var pg fdPage
			readers[polls%len(readers)].Do("GET", "/v1/events?"+q.Encode(), nil).Expect(http.StatusOK).JSON(&pg)
			polls++
			got = append(got, pg.Items...)
			cursor = pg.NextCursor
		}
		for running := true; running; {
			select {
			case <-done:
				running = false
			default:
				read()
			}
		}
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		total, err := env.App.Store.Client.DomainEvent.Query().Count(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(30 * time.Second); len(got) < total && time.Now().Before(deadline); {
			read()
		}
		fdExactlyOnce(t, got, total)
		count := map[string]int{}
		for _, e := range got {
			count[e.Type]++
		}
		for _, typ := range []string{"lead.updated", "followup.created", "lead.claimed"} {
			if count[typ] != writers*rounds {
				t.Errorf("%d %s events, want %d", count[typ], typ, writers*rounds)
			}
		}
		t.Logf("%d events read in %d polls over %d replica(s)", len(got), polls, len(envs))
	})
}

// fdWriteRound creates a lead, changes it, logs a follow-up on it and
// claims a pooled lead.
func fdWriteRound(base, bearer, pooled string) error {
	n := swSeq.Add(1)
	status, raw, err := fdCall(base, bearer, "POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("Feed lead %d", n),
		"phone": fmt.Sprintf("134%08d", n)})
	if err != nil || status != http.StatusCreated {
		return fmt.Errorf("create lead: %d %s %v", status, raw, err)
	}
	var lead struct{ ID string }
	if err := json.Unmarshal(raw, &lead); err != nil {
		return err
	}
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PATCH", "/v1/leads/" + lead.ID, map[string]any{"region": "East"}, http.StatusOK},
		{"POST", "/v1/follow-ups", map[string]any{"subjectType": "lead", "subjectId": lead.ID, "channel": "call",
			"content": "called", "occurredAt": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}, http.StatusCreated},
		{"POST", "/v1/leads/" + pooled + "/claim", nil, http.StatusOK},
	}
	for _, s := range steps {
		status, raw, err := fdCall(base, bearer, s.method, s.path, s.body, "If-Match", "*")
		if err != nil || status != s.want {
			return fmt.Errorf("%s %s: %d %s %v", s.method, s.path, status, raw, err)
		}
	}
	return nil
}

// TestEventFeedScope: admins and auditors read every event; a rep the
// events of the records he sees (his own, the pooled ones of his pools;
// follow-ups through their record), none of other reps' records nor of
// the organisation; an API key with events:read bound to a pool its
// pool's; a key without it gets 403 insufficient_scope. Filters by type
// (repeated or comma list) and after; bad parameters are 400s.
func TestEventFeedScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		env := apitest.New(t, databaseURL)
		_, admin := env.User(auth.RoleAdmin, nil)
		_, auditor := env.User(auth.RoleAuditor, nil)
		team := env.Team(env.Unique("Feed team "), nil).ID
		_, repA := env.User(auth.RoleRep, &team)
		_, repB := env.User(auth.RoleRep, nil)
		pool := admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": env.Unique("Feed pool "),
			"memberTeamIds": []string{team.String()}}).Expect(http.StatusCreated).Map()["id"].(string)
		var phones []string
		create := func(c *apitest.Client, extra map[string]any) string {
			phone := fmt.Sprintf("133%08d", swSeq.Add(1))
			phones = append(phones, phone)
			b := map[string]any{"name": "Feed lead", "phone": phone}
			for k, v := range extra {
				b[k] = v
			}
			return c.Do("POST", "/v1/leads", b).Expect(http.StatusCreated).Map()["id"].(string)
		}
		leadA, leadB := create(repA, nil), create(repB, nil)
		leadP := create(admin, map[string]any{"poolId": pool})
		logFollowUp(repA, "lead", leadA, time.Now().Add(-time.Minute)).Expect(http.StatusCreated)
		keyPool := idKeyClient(env, admin.Do("POST", "/v1/api-keys", map[string]any{"name": "Feed partner",
			"scopes": []string{"events:read"}, "poolId": pool}).Expect(http.StatusCreated).Map()["secret"].(string))
		keyLeads := idKeyClient(env, idCreateKey(t, admin, "leads:read").Secret)

		admin.Do("PATCH", "/v1/leads/"+leadA, map[string]any{"company": "Feed Secret Co"}, "If-Match", "*").Expect(http.StatusOK)
		all := fdSettle(t, env, admin)
		// No field value is in any payload: names of changed fields only.
		raw, _ := json.Marshal(all)
		for _, v := range append(phones, "Feed Secret Co", "Feed lead") {
			if strings.Contains(string(raw), v) {
				t.Errorf("the feed shows the value %q", v)
			}
		}
		if got := fdRead(t, auditor, url.Values{}); len(got) != len(all) {
			t.Errorf("auditor read %d events, admin %d", len(got), len(all))
		}
		subjects := func(es []fdEvent) []string {
			var out []string
			for _, e := range es {
				out = append(out, e.Type+" "+e.Subject.ID)
			}
			return out
		}
		for _, c := range []struct {
			name   string
			client *apitest.Client
			want   []string
		}{
			{"rep A", repA, []string{"lead.created " + leadA, "lead.created " + leadP, "followup.created " + leadA, "lead.updated " + leadA}},
			{"rep B", repB, []string{"lead.created " + leadB}},
			{"key of the pool", keyPool, []string{"lead.created " + leadP}},
		} {
			got := fdRead(t, c.client, url.Values{"limit": {"1"}})
			names := subjects(got)
			// A follow-up's subject is the follow-up: name its record.
			for i, e := range got {
				if e.Type == "followup.created" {
					names[i] = e.Type + " " + fmt.Sprint(e.Data["recordId"])
				}
			}
			if !slices.Equal(names, c.want) {
				t.Errorf("%s read %v, want %v", c.name, names, c.want)
			}
		}
		keyLeads.Do("GET", "/v1/events", nil).ExpectProblem(http.StatusForbidden, "insufficient_scope")

		// Types: repeated, or a comma list; after an event id.
		want := []string{"lead.created " + leadA, "lead.created " + leadB, "lead.created " + leadP}
		for _, q := range []url.Values{
			{"type": {"lead.created"}},
			{"type": {"lead.created,lead.claimed"}},
			{"type": {"lead.created", "lead.claimed"}},
		} {
			if got := subjects(fdRead(t, admin, q)); !slices.Equal(got, want) {
				t.Errorf("admin, %s: %v, want %v", q.Encode(), got, want)
			}
		}
		first := fdRead(t, admin, url.Values{"type": {"lead.created"}, "limit": {"1"}})[0]
		if got := subjects(fdRead(t, admin, url.Values{"type": {"lead.created"}, "after": {first.ID}})); !slices.Equal(got, want[1:]) {
			t.Errorf("admin, after %s: %v, want %v", first.ID, got, want[1:])
		}

		for _, q := range []string{"type=lead.exploded", "type=lead.created,nope", "after=xyz",
			"after=" + first.ID + "&cursor=abc", "cursor=abc", "limit=0"} {
			res := repA.Do("GET", "/v1/events?"+q, nil)
			if res.Status != http.StatusBadRequest {
				t.Errorf("%s: %d %s, want 400", q, res.Status, res.Body)
			}
		}
		p := repA.Do("GET", "/v1/events?type=lead.exploded", nil).ExpectProblem(http.StatusBadRequest, "validation_failed")
		if !strings.Contains(fmt.Sprint(p), "unknown_event_type") {
			t.Errorf("unknown type: %+v", p)
		}
	})
}
