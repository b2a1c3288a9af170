package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/testdb"
)

const replayed = "Idempotent-Replayed"

// sameAnswer fails unless b replays a: same status, body, Location, ETag
// and content type, and b (only) says it is a replay.
func sameAnswer(t *testing.T, what string, a, b *apitest.Response) {
	t.Helper()
	if a.Header.Get(replayed) != "" || b.Header.Get(replayed) != "true" {
		t.Fatalf("%s: Idempotent-Replayed %q then %q, want none then true", what, a.Header.Get(replayed), b.Header.Get(replayed))
	}
	if a.Status != b.Status || !bytes.Equal(a.Body, b.Body) {
		t.Fatalf("%s: replay %d %s, first %d %s", what, b.Status, b.Body, a.Status, a.Body)
	}
	for _, h := range []string{"Location", "ETag", "Content-Type", "Cache-Control"} {
		if a.Header.Get(h) != b.Header.Get(h) {
			t.Fatalf("%s: replay %s %q, first %q", what, h, b.Header.Get(h), a.Header.Get(h))
		}
	}
}

// TestIdempotencyKeys: a keyed create or claim replayed acts once and
// answers the first answer again; another body or path with the key is
// 422; another caller's key of the same name is independent; a refusal is
// not stored; malformed keys are 400; answers expire after 24 hours.
func TestIdempotencyKeys(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		clk := &clock.Adjustable{}
		env := apitest.New(t, url, apitest.Options{Config: app.Config{Clock: clk}})
		ctx := context.Background()
		team := env.Team(env.Unique("Idem "), nil)
		_, admin := env.User("admin", nil)
		_, rep := env.User("rep", &team.ID)
		_, other := env.User("rep", &team.ID)
		leads := func(name string) int {
			n, err := env.App.Store.Reader.Lead.Query().Where(lead.Name(name)).Count(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		// A create: the retry replays, one lead exists.
		key := uuid.NewString()
		name := env.Unique("Idem lead ")
		body := map[string]any{"name": name, "phone": fmt.Sprintf("139%08d", rand.IntN(1e8))}
		first := rep.Do("POST", "/v1/leads", body, "Idempotency-Key", key).Expect(http.StatusCreated)
		again := rep.Do("POST", "/v1/leads", body, "Idempotency-Key", key)
		sameAnswer(t, "createLead", first, again)
		if n := leads(name); n != 1 {
			t.Fatalf("%d leads named %q after a replay, want 1", n, name)
		}
		// The same key with another body: 422.
		rep.Do("POST", "/v1/leads", map[string]any{"name": name + " 2"}, "Idempotency-Key", key).
			ExpectProblem(http.StatusUnprocessableEntity, "idempotency_key_mismatch")
		// Another caller's key of the same name is his own.
		otherName := env.Unique("Other lead ")
		other.Do("POST", "/v1/leads", map[string]any{"name": otherName}, "Idempotency-Key", key).Expect(http.StatusCreated)
		if res := other.Do("POST", "/v1/leads", map[string]any{"name": otherName}, "Idempotency-Key", key); res.Header.Get(replayed) != "true" || leads(otherName) != 1 {
			t.Fatalf("other caller's retry: %d %s, replayed %q, %d leads", res.Status, res.Body, res.Header.Get(replayed), leads(otherName))
		}

		// A claim: the retry replays and the lead was claimed once.
		pool := admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": env.Unique("Idem pool "),
			"memberTeamIds": []string{team.ID.String()}}).Expect(http.StatusCreated).Map()["id"].(string)
		pooled := admin.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("Pooled "), "poolId": pool}).Expect(http.StatusCreated).Map()["id"].(string)
		claimKey := uuid.NewString()
		claimed := rep.Do("POST", "/v1/leads/"+pooled+"/claim", nil, "Idempotency-Key", claimKey).Expect(http.StatusOK)
		sameAnswer(t, "claimLead", claimed, rep.Do("POST", "/v1/leads/"+pooled+"/claim", nil, "Idempotency-Key", claimKey))
		// The same key and (empty) body on another path: 422, not claimed.
		pooled2 := admin.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("Pooled "), "poolId": pool}).Expect(http.StatusCreated).Map()["id"].(string)
		rep.Do("POST", "/v1/leads/"+pooled2+"/claim", nil, "Idempotency-Key", claimKey).
			ExpectProblem(http.StatusUnprocessableEntity, "idempotency_key_mismatch")
		other.Do("POST", "/v1/leads/"+pooled2+"/claim", nil).Expect(http.StatusOK)
		n, err := env.App.Store.Reader.DomainEvent.Query().
			Where(domainevent.Type("lead.claimed"), domainevent.SubjectID(uuid.MustParse(pooled))).Count(ctx)
		if err != nil || n != 1 {
			t.Fatalf("%d lead.claimed events after a replayed claim (%v), want 1", n, err)
		}

		// A refusal changed nothing and is not stored: the key runs again.
		refusedKey := uuid.NewString()
		rep.Do("POST", "/v1/leads", body, "Idempotency-Key", refusedKey).ExpectProblem(http.StatusConflict, "duplicate")
		fixed := env.Unique("Fixed lead ")
		rep.Do("POST", "/v1/leads", map[string]any{"name": fixed}, "Idempotency-Key", refusedKey).Expect(http.StatusCreated)

		// A secret in an answer is replayed but never stored in the clear.
		apiKey := uuid.NewString()
		created := admin.Do("POST", "/v1/api-keys", map[string]any{"name": "idem", "scopes": []string{"leads:read"}}, "Idempotency-Key", apiKey).
			Expect(http.StatusCreated)
		sameAnswer(t, "createApiKey", created, admin.Do("POST", "/v1/api-keys", map[string]any{"name": "idem", "scopes": []string{"leads:read"}}, "Idempotency-Key", apiKey))
		secret := created.Map()["secret"].(string)
		records, err := env.App.Store.Reader.IdempotencyRecord.Query().All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range records {
			if bytes.Contains(r.Answer, []byte(secret)) || bytes.Contains(r.Answer, []byte(name)) || strings.Contains(r.ID, apiKey) {
				t.Fatalf("an idempotency record holds an answer or a key in the clear")
			}
		}

		// Login (no caller yet) is keyed by the key alone; its body is part
		// of the request, so only the same credentials replay it.
		u, _ := env.User("rep", &team.ID)
		loginKey := uuid.NewString()
		login := map[string]any{"email": u.Email, "password": apitest.Password}
		firstLogin := env.Anonymous().Do("POST", "/v1/auth/login", login, "Idempotency-Key", loginKey).Expect(http.StatusOK)
		sameAnswer(t, "login", firstLogin, env.Anonymous().Do("POST", "/v1/auth/login", login, "Idempotency-Key", loginKey))
		if firstLogin.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("login answered Cache-Control %q", firstLogin.Header.Get("Cache-Control"))
		}

		// Malformed keys: 400, nothing done.
		for _, bad := range []string{strings.Repeat("k", 256), "clé"} {
			res := rep.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("Bad key ")}, "Idempotency-Key", bad)
			if p := res.ExpectProblem(http.StatusBadRequest, "validation_failed"); len(p.Errors) == 0 || !strings.Contains(p.Errors[0].Field, "Idempotency-Key") {
				t.Fatalf("key %q: %s", bad, res.Body)
			}
		}
		rep.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("Long key ")}, "Idempotency-Key", strings.Repeat("k", 255)).Expect(http.StatusCreated)

		// After 24 hours the answer is gone: the key acts again, and the
		// purge deletes what expired.
		clk.Advance(24*time.Hour + time.Second)
		res := rep.Do("POST", "/v1/leads", body, "Idempotency-Key", key)
		if res.Header.Get(replayed) != "" || res.Status != http.StatusConflict {
			// The first lead still exists: the create runs again and
			// meets it as a duplicate.
			t.Fatalf("after 24h: %d %s, replayed %q", res.Status, res.Body, res.Header.Get(replayed))
		}
		// The other caller's expired answer is replaced by the new run's.
		fresh := other.Do("POST", "/v1/leads", map[string]any{"name": otherName}, "Idempotency-Key", key).Expect(http.StatusCreated)
		if fresh.Header.Get(replayed) != "" || leads(otherName) != 2 {
			t.Fatalf("expired answer replayed: %s, %d leads", fresh.Body, leads(otherName))
		}
		sameAnswer(t, "after expiry", fresh, other.Do("POST", "/v1/leads", map[string]any{"name": otherName}, "Idempotency-Key", key))
		purged, err := env.App.Idempotency.Purge(ctx)
		if err != nil || purged == 0 {
			t.Fatalf("purge: %d, %v", purged, err)
		}
		if n, err := env.App.Store.Reader.IdempotencyRecord.Query().Count(ctx); err != nil || n != 1 {
			t.Fatalf("%d answers left after the purge (%v), want the one stored after the expiry", n, err)
		}
	})
}

// TestIdempotencyConcurrentDuplicate: while a keyed request is held inside
// its transaction (the test hook), a duplicate, even with another body,
// answers 409 idempotency_key_in_use at once; once the first commits, a
// retry replays its answer.
func TestIdempotencyConcurrentDuplicate(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		_, rep := env.User("rep", nil)
		entered, release := make(chan struct{}), make(chan struct{})
		var armed atomic.Bool
		armed.Store(true)
		env.App.HTTP.SetIdempotencyHook(func(context.Context) {
			if armed.CompareAndSwap(true, false) {
				close(entered)
				<-release
			}
		})
		key := uuid.NewString()
		name := env.Unique("Held ")
		done := make(chan *apitest.Response, 1)
		go func() { done <- rep.Do("POST", "/v1/leads", map[string]any{"name": name}, "Idempotency-Key", key) }()
		<-entered
		// Each on a connection of its own: on SQLite the refusal's audit
		// row waits for the writer the held request keeps, so the server
		// is not done with a connection until the release.
		rep.Do("POST", "/v1/leads", map[string]any{"name": name}, "Idempotency-Key", key, "Connection", "close").
			ExpectProblem(http.StatusConflict, "idempotency_key_in_use")
		rep.Do("POST", "/v1/leads", map[string]any{"name": name + " other"}, "Idempotency-Key", key, "Connection", "close").
			ExpectProblem(http.StatusConflict, "idempotency_key_in_use")
		// Held: not committed, so not visible to a reader.
		if n, _ := env.App.Store.Reader.Lead.Query().Where(lead.Name(name)).Count(context.Background()); n != 0 {
			t.Fatalf("a held create is visible before its commit")
		}
		close(release)
		first := (<-done).Expect(http.StatusCreated)
		sameAnswer(t, "after the hold", first, rep.Do("POST", "/v1/leads", map[string]any{"name": name}, "Idempotency-Key", key))
	})
}
