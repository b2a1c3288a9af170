package feed_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

// TestFeedWriteCost measures what the feed's order costs a write on
// PostgreSQL: createLead (one lead.created event each) by 8 concurrent
// writers on a database with the feed's columns and index, against one
// without them (dropped), alternating rounds in the same run. SQLite pays
// nothing (the feed reads by rowid). Small and unreported unless
// SHOAL_BENCH_FULL=1:
//
//	SHOAL_BENCH_FULL=1 go test -count=1 -run TestFeedWriteCost -v ./internal/feed
func TestFeedWriteCost(t *testing.T) {
	t.Parallel()
	full := os.Getenv("SHOAL_BENCH_FULL") == "1"
	perWriter, rounds := 3, 1
	if full {
		perWriter, rounds = 100, 3
	}
	ctx := context.Background()
	world := func(drop bool) (*testkit.World, []*auth.Principal) {
		w := testkit.New(t, testdb.Postgres(t), app.Config{})
		if drop {
			for _, q := range []string{"DROP INDEX domain_events_feed", "ALTER TABLE domain_events DROP COLUMN xid",
				"ALTER TABLE domain_events DROP COLUMN seq"} {
				if _, err := w.Store.DB().ExecContext(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
		}
		ps := make([]*auth.Principal, 8)
		for i := range ps {
			_, ps[i] = w.Actor(auth.RoleRep, nil, org.Caps{MaxOwnedLeads: ptr(1_000_000)})
		}
		return w, ps
	}
	with, withReps := world(false)
	without, withoutReps := world(true)
	run := func(w *testkit.World, reps []*auth.Principal) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for _, p := range reps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perWriter {
					n := seq.Add(1)
					if _, err := w.App.Records.CreateLead(ctx, p, records.LeadInput{Name: ptr(fmt.Sprintf("Cost lead %d", n)),
						Phone: ptr(fmt.Sprintf("132%08d", n))}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		return time.Since(start)
	}
	var tWith, tWithout time.Duration
	for range rounds {
		tWithout += run(without, withoutReps)
		tWith += run(with, withReps)
	}
	n := float64(rounds * perWriter * 8)
	if full {
		t.Logf("createLead, 8 writers, %d each, %d rounds: without the feed's order %.0f/s, with it %.0f/s (ratio %.3f)",
			perWriter, rounds, n/tWithout.Seconds(), n/tWith.Seconds(), tWith.Seconds()/tWithout.Seconds())
	}
}
