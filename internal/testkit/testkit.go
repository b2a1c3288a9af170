// Package testkit builds the world a test needs below HTTP: a migrated
// database (cloned from a per-process template), Shoal's wired services
// over it, and teams, users and principals made through those services.
// Service-level tests use it directly; apitest puts the HTTP stack on top
// of the same world, so both kinds of test share one fixture builder.
package testkit

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/jobs"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// Password is the password of every user the helpers create.
const Password = "correct horse battery staple"

// World is Shoal's services over one test database.
type World struct {
	T     testing.TB
	Ctx   context.Context
	URL   string
	Store *store.Store
	App   *app.App
	// Logs holds everything the services logged.
	Logs *SyncBuffer

	startJobs sync.Once
	jobsErr   error
}

// New opens databaseURL (a fresh database gets the schema as a copy of the
// process's template; anything else is migrated), wires Shoal over it with
// cfg and closes the store when the test ends.
func New(t testing.TB, databaseURL string, cfg app.Config) *World {
	t.Helper()
	ctx := context.Background()
	cloned, err := testdb.FromTemplate(ctx, databaseURL, Migrate)
	if err != nil {
		t.Fatalf("database from template: %v", err)
	}
	st, err := store.Open(ctx, databaseURL)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if !cloned {
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("migrate: %v", err)
		}
	}
	logs := &SyncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.Version == "" {
		cfg.Version = "test"
	}
	if cfg.Jobs.PollInterval == 0 {
		// WorkJobs waits for the queue's polls: poll as often as allowed.
		cfg.Jobs.PollInterval = jobs.MinPollInterval
	}
	if cfg.Webhooks.Guard.Resolver == nil {
		// Test receivers listen on 127.0.0.1; the SSRF tests give a
		// resolver of their own and leave private targets refused.
		cfg.Webhooks.Guard.AllowPrivate = true
	}
	if cfg.Jobs.WebhookDispatchEvery == 0 {
		// Tests dispatch when they mean to (App.Webhooks.Dispatch).
		cfg.Jobs.WebhookDispatchEvery = -1
	}
	a, err := app.New(ctx, st, cfg)
	if err != nil {
		t.Fatalf("build app: %v", err)
	}
	t.Cleanup(func() {
		// The job queue stops before the store it works on closes
		// (cleanups run last-in first-out).
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Jobs.Stop(ctx); err != nil {
			t.Errorf("stop job queue: %v", err)
		}
	})
	return &World{T: t, Ctx: ctx, URL: databaseURL, Store: st, App: a, Logs: logs}
}

// WorkJobs works the job queue until no job due now is left: what a
// change enqueued (a re-judge after a rule change) is done when it
// returns. The first call starts the queue, which then runs until the test
// ends, as it does beside a real server.
func (w *World) WorkJobs() {
	w.T.Helper()
	w.startJobs.Do(func() {
		w.jobsErr = w.App.Jobs.Start(context.Background())
	})
	if w.jobsErr != nil {
		w.T.Fatalf("start job queue: %v", w.jobsErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.App.Jobs.Drain(ctx); err != nil {
		w.T.Fatalf("work jobs: %v", err)
	}
}

// Dispatch turns the events written so far into webhook deliveries and
// works them (and every other job due now).
func (w *World) Dispatch() {
	w.T.Helper()
	if _, err := w.App.Webhooks.Dispatch(w.Ctx); err != nil {
		w.T.Fatalf("dispatch webhooks: %v", err)
	}
	w.WorkJobs()
}

// RetryNow makes the jobs of kind that wait for a later time (a
// delivery's retry, River's snooze) due now, and works the queue: with a
// test clock moved past a retry's time, the retry happens.
func (w *World) RetryNow(kind string) {
	w.T.Helper()
	if err := w.App.Jobs.RunScheduledNow(w.Ctx, kind); err != nil {
		w.T.Fatalf("retry jobs now: %v", err)
	}
	w.WorkJobs()
}

// Migrate opens databaseURL, applies Shoal's schema and closes it: the
// testdb.MigrateFunc that builds template databases.
func Migrate(ctx context.Context, databaseURL string) error {
	st, err := store.Open(ctx, databaseURL)
	if err != nil {
		return err
	}
	if err := st.Migrate(ctx); err != nil {
		_ = st.Close()
		return err
	}
	return st.Close()
}

// Main is TestMain for packages whose tests build worlds: password hashes
// are cheap for the whole test binary (auth.UseTestHashParams; the tests
// about hashing cost live in internal/auth and do not use it), and the
// databases testdb started are stopped. Use it as os.Exit(testkit.Main(m)).
func Main(m *testing.M) int {
	auth.UseTestHashParams()
	return testdb.Main(m)
}

// uniqueSeq numbers names process-wide, so that several worlds on one
// database (replicas) never hand out the same email.
var uniqueSeq atomic.Int64

// Unique returns a string unique within the process, for names and emails.
func (w *World) Unique(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, uniqueSeq.Add(1))
}

// Team creates a team through the org service.
func (w *World) Team(name string, parent *uuid.UUID) *ent.Team {
	w.T.Helper()
	t, err := w.App.Org.CreateTeam(w.Ctx, org.NewTeam{Name: name, ParentID: parent})
	if err != nil {
		w.T.Fatalf("create team: %v", err)
	}
	return t
}

// User creates an active user with role in team (may be nil), with the
// password Password.
func (w *World) User(role string, team *uuid.UUID, caps ...org.Caps) *ent.User {
	w.T.Helper()
	in := org.NewUser{Email: w.Unique(role) + "@example.com", Name: w.Unique(role), Role: role, TeamID: team, Password: Password}
	if len(caps) > 0 {
		in.Caps = caps[0]
	}
	u, err := w.App.Org.CreateUser(w.Ctx, in)
	if err != nil {
		w.T.Fatalf("create user: %v", err)
	}
	return u
}

// Principal is the principal of u as authentication would build it.
func Principal(u *ent.User) *auth.Principal { return auth.UserPrincipal(u) }

// Actor creates a user and returns him with his principal.
func (w *World) Actor(role string, team *uuid.UUID, caps ...org.Caps) (*ent.User, *auth.Principal) {
	w.T.Helper()
	u := w.User(role, team, caps...)
	return u, Principal(u)
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
