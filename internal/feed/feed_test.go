package feed_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/feed"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func ptr[T any](v T) *T { return &v }

var seq atomic.Int64

// writeRound has p create a lead, change it, log a follow-up on it, and
// create a customer with a contact: six events in five transactions.
func writeRound(ctx context.Context, w *testkit.World, p *auth.Principal) (lead uuid.UUID, err error) {
	n := seq.Add(1)
	l, err := w.App.Records.CreateLead(ctx, p, records.LeadInput{Name: ptr(fmt.Sprintf("Feed lead %d", n)),
		Company: ptr(fmt.Sprintf("Feed Co %d", n)), Phone: ptr(fmt.Sprintf("136%08d", n))})
	if err != nil {
		return uuid.Nil, fmt.Errorf("create lead: %w", err)
	}
	if _, err := w.App.Records.UpdateLead(ctx, p, l.ID, ptr("*"), records.LeadInput{Region: ptr("East")}); err != nil {
		return uuid.Nil, fmt.Errorf("update lead: %w", err)
	}
	if _, err := w.App.Records.CreateFollowUp(ctx, p, records.FollowUpInput{SubjectType: "lead", SubjectID: l.ID,
		Channel: "call", Content: "called", OccurredAt: w.App.Pools.Clock().Now()}); err != nil {
		return uuid.Nil, fmt.Errorf("follow-up: %w", err)
	}
	c, err := w.App.Records.CreateCustomer(ctx, p, records.CustomerInput{Name: ptr(fmt.Sprintf("Feed customer %d", n))})
	if err != nil {
		return uuid.Nil, fmt.Errorf("create customer: %w", err)
	}
	if _, err := w.App.Records.CreateContact(ctx, p, c.ID, records.ContactInput{Name: ptr("Li Lei")}); err != nil {
		return uuid.Nil, fmt.Errorf("create contact: %w", err)
	}
	return l.ID, nil
}

// readAll reads the feed as p from after until a read gives nothing new,
// checking that ids only grow.
func readAll(t *testing.T, ctx context.Context, w *testkit.World, p *auth.Principal, after feed.Pos, types []string, limit int) ([]feed.Event, feed.Pos) {
	t.Helper()
	var out []feed.Event
	for {
		pg, err := w.App.Feed.List(ctx, p, feed.Query{After: after, Types: types, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range pg.Items {
			if e.ID <= after.String() {
				t.Fatalf("event %s after position %s", e.ID, after)
			}
		}
		out = append(out, pg.Items...)
		if pg.Next == after {
			return out, after
		}
		after = pg.Next
	}
}

// settle reads the whole feed as admin once it shows every committed
// event: on PostgreSQL an event shows once every transaction that took its
// xid before it has ended, including other tests' on the same server.
func settle(t *testing.T, ctx context.Context, w *testkit.World, admin *auth.Principal) []feed.Event {
	t.Helper()
	total, err := w.Store.Client.DomainEvent.Query().Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var all []feed.Event
	for deadline := time.Now().Add(30 * time.Second); ; {
		if all, _ = readAll(t, ctx, w, admin, feed.Pos{}, nil, 200); len(all) >= total || time.Now().After(deadline) {
			break
		}
	}
	checkExactlyOnce(t, all, total)
	return all
}

// Sixteen writers change records while a reader follows the feed with
// after: what it read is every committed event, each once, in order.
func TestFeedConcurrentWriters(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		w := testkit.New(t, databaseURL, app.Config{})
		ctx := context.Background()
		_, admin := w.Actor(auth.RoleAdmin, nil)
		const writers, rounds = 16, 3
		reps := make([]*auth.Principal, writers)
		for i := range reps {
			_, reps[i] = w.Actor(auth.RoleRep, nil)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		done := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					if _, err := writeRound(ctx, w, reps[i]); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		go func() { wg.Wait(); close(done) }()

		var got []feed.Event
		var after feed.Pos
		read := func() {
			pg, err := w.App.Feed.List(ctx, admin, feed.Query{After: after, Limit: 7})
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, pg.Items...)
			after = pg.Next
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
		total, err := w.Store.Client.DomainEvent.Query().Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Every writer has committed: the rest shows as soon as no
		// transaction that began before them is still open (PostgreSQL).
		for deadline := time.Now().Add(30 * time.Second); len(got) < total && time.Now().Before(deadline); {
			read()
		}
		checkExactlyOnce(t, got, total)
		if want := writers * rounds * 5; countTypes(got, "lead.created", "lead.updated", "followup.created",
			"customer.created", "contact.created") != want {
			t.Errorf("%d record events, want %d", countTypes(got, "lead.created", "lead.updated", "followup.created",
				"customer.created", "contact.created"), want)
		}
	})
}

func countTypes(es []feed.Event, types ...string) int {
	n := 0
	for _, e := range es {
		for _, t := range types {
			if e.Type == t {
				n++
			}
		}
	}
	return n
}

// checkExactlyOnce checks that got is total events with growing ids.
func checkExactlyOnce(t *testing.T, got []feed.Event, total int) {
	t.Helper()
	seen := map[string]bool{}
	for i, e := range got {
		if seen[e.ID] {
			t.Fatalf("event %s read twice", e.ID)
		}
		seen[e.ID] = true
		if i > 0 && e.ID <= got[i-1].ID {
			t.Fatalf("event %s read after %s", e.ID, got[i-1].ID)
		}
	}
	if len(got) != total {
		t.Fatalf("read %d events, %d committed", len(got), total)
	}
}

// A rep reads the events of the records he sees (contacts and follow-ups
// through theirs), not another rep's nor the organisation's; an admin
// reads all; a type filter keeps only those types; an unknown type is
// refused.
func TestFeedScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		w := testkit.New(t, databaseURL, app.Config{})
		ctx := context.Background()
		_, admin := w.Actor(auth.RoleAdmin, nil)
		_, repA := w.Actor(auth.RoleRep, nil)
		_, repB := w.Actor(auth.RoleRep, nil)
		leadA, err := writeRound(ctx, w, repA)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := writeRound(ctx, w, repB); err != nil {
			t.Fatal(err)
		}
		all := settle(t, ctx, w, admin)
		if countTypes(all, "user.created") < 3 {
			t.Errorf("admin: %d user.created events, want the three users'", countTypes(all, "user.created"))
		}
		mine, _ := readAll(t, ctx, w, repA, feed.Pos{}, nil, 2)
		var types []string
		for _, e := range mine {
			types = append(types, e.Type)
			if e.Actor.ID == nil || *e.Actor.ID != repA.ID {
				t.Errorf("rep A read %s by %v", e.Type, e.Actor.ID)
			}
		}
		want := []string{"lead.created", "lead.updated", "followup.created", "customer.created", "contact.created"}
		if fmt.Sprint(types) != fmt.Sprint(want) {
			t.Errorf("rep A read %v, want %v", types, want)
		}
		onlyLeads, _ := readAll(t, ctx, w, repA, feed.Pos{}, []string{string(events.LeadUpdated), string(events.LeadCreated)}, 50)
		if len(onlyLeads) != 2 || onlyLeads[0].SubjectID != leadA || onlyLeads[1].Type != "lead.updated" {
			t.Errorf("rep A, lead types: %+v", onlyLeads)
		}
		_, err = w.App.Feed.List(ctx, repA, feed.Query{Types: []string{"lead.exploded"}, Limit: 10})
		if !apperr.HasCode(err, "validation_failed") {
			t.Errorf("unknown type: %v", err)
		}
	})
}

// One read looks at no more than 1,000 events for a caller who sees only
// some: behind 1,100 events he may not see, a rep's first page is empty
// while its position moves on past 1,000 of them, and the next read
// reaches his own event.
func TestFeedScanWindow(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		w := testkit.New(t, databaseURL, app.Config{})
		ctx := context.Background()
		_, admin := w.Actor(auth.RoleAdmin, nil)
		_, rep := w.Actor(auth.RoleRep, nil)
		es := make([]events.Event, 1100)
		for i := range es {
			es[i] = events.Event{Type: events.PoolUpdated, SubjectKind: events.KindPool, SubjectID: uuid.New(),
				Actor: admin.EventActor(), OccurredAt: time.Now(), Data: events.Changed{Fields: []string{"name"}}}
		}
		if err := w.Store.WithTx(ctx, func(tx *ent.Tx) error { return events.EmitAll(ctx, tx, es) }); err != nil {
			t.Fatal(err)
		}
		lead, err := writeRound(ctx, w, rep)
		if err != nil {
			t.Fatal(err)
		}
		settle(t, ctx, w, admin)
		first, err := w.App.Feed.List(ctx, rep, feed.Query{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(first.Items) != 0 || first.Next == (feed.Pos{}) {
			t.Fatalf("first read: %d events, next %s; want none and a position past the 1,000 looked at", len(first.Items), first.Next)
		}
		second, err := w.App.Feed.List(ctx, rep, feed.Query{After: first.Next, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(second.Items) == 0 || second.Items[0].Type != "lead.created" || second.Items[0].SubjectID != lead {
			t.Fatalf("second read: %+v", second.Items)
		}
	})
}
