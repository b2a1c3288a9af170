package bench

import (
	"slices"
	"testing"

	"github.com/shoalcrm/shoal/internal/dedupe"
)

// TestBenchmarksSmall runs the bodies of the benchmarks once at a small
// size on every engine and checks that what they measure really happened,
// so `make test` keeps them working and honest (a benchmark whose requests
// fail, or whose pages are empty, reports flattering numbers).
func TestBenchmarksSmall(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			t.Run("claim", func(t *testing.T) { checkClaim(t, e.url(t)) })
			t.Run("customers", func(t *testing.T) { checkCustomerQueries(t, e.url(t)) })
			t.Run("opportunities", func(t *testing.T) { checkOpportunityQueries(t, e.url(t)) })
			t.Run("search", func(t *testing.T) { checkSearch(t, e.url(t)) })
			t.Run("import", func(t *testing.T) { checkImport(t, e.url(t)) })
			t.Run("export", func(t *testing.T) { checkExport(t, e.url(t)) })
		})
	}
}

func checkClaim(t *testing.T, databaseURL string) {
	// Four workers rather than sixteen: each rep costs two argon2 hashes,
	// slow under the race detector, and four already race for every lock.
	const n, workers = 50, 4
	c := newClaimBench(t, databaseURL, workers)
	// A full-size run logs the reps in again as it goes (keepLoggedIn).
	if tok, err := c.reps.login(c.reps.emails[0]); err != nil || tok == "" {
		t.Fatalf("log in again: %q, %v", tok, err)
	}

	h := c.claimHTTP(c.seedLeads(t, n))
	mustSucceed(t, "http claims", h)
	if h.ok != n || len(h.lat) != n {
		t.Fatalf("http: %d claims timed, want %d", h.ok, n)
	}
	if got := c.seed.count(t, "SELECT COUNT(*) FROM leads WHERE owner_id IS NOT NULL"); got != n {
		t.Fatalf("after http claims %d leads owned, want %d", got, n)
	}
	if got := c.seed.count(t, "SELECT COUNT(*) FROM ownership_changes WHERE operation = 'claim'"); got != n {
		t.Fatalf("after http claims %d claim history rows, want %d", got, n)
	}
	// Shoal keeps each rep's owned-leads counter in step with the claims
	// that rep made, and with the rows themselves.
	for w, id := range c.reps.ids {
		counter := c.seed.count(t, "SELECT owned_leads FROM users WHERE id = ?", id)
		rows := c.seed.count(t, "SELECT COUNT(*) FROM leads WHERE owner_id = ?", id)
		if counter != h.perWorker[w] || rows != h.perWorker[w] {
			t.Errorf("rep %d: counter %d, owns %d rows, claimed %d", w, counter, rows, h.perWorker[w])
		}
	}

	r := c.claimRaw(t, c.seedLeads(t, n), workers)
	mustSucceed(t, "raw claims", r)
	if r.ok != n {
		t.Fatalf("raw: %d claims, want %d", r.ok, n)
	}
	if got := c.seed.count(t, "SELECT COUNT(*) FROM leads WHERE owner_id IS NOT NULL"); got != 2*n {
		t.Fatalf("after raw claims %d leads owned, want %d", got, 2*n)
	}
	if got := c.seed.count(t, "SELECT COUNT(*) FROM ownership_changes WHERE operation = 'claim'"); got != 2*n {
		t.Fatalf("after raw claims %d claim history rows, want %d", got, 2*n)
	}
	t.Logf("claim (%d per run): %s", n, claimResult{h, r})
}

func checkCustomerQueries(t *testing.T, databaseURL string) {
	// Fewer rows and shorter pages than the benchmark's small size, so a
	// walk of several pages stays fast under the race detector.
	const n, limit = 1_000, 10
	q := newQueryBench(t, databaseURL, n, limit)
	seed := openRaw(t, databaseURL, roleReader)
	if got := seed.count(t, "SELECT COUNT(*) FROM customers WHERE pool_id IS NOT NULL AND owner_id IS NOT NULL"); got != n {
		t.Fatalf("%d owned customers seeded, want %d", got, n)
	}
	if got := seed.count(t, "SELECT SUM(owned_customers) FROM users"); got != n {
		t.Fatalf("owners' counters add up to %d, want %d", got, n)
	}

	// The duplicate check finds a seeded customer, by HTTP and by SQL,
	// and the rep (who may not see it) is told it exists without its id.
	name := customerName(n * 3 / 4)
	m, err := q.dupHTTP(name)
	if err != nil || len(m) != 1 || m[0]["kind"] != "customer" || m[0]["matchedOn"] != "name" || m[0]["id"] != nil {
		t.Fatalf("duplicates of %s: %v %v", name, m, err)
	}
	ids, err := q.dupRaw(dedupe.Name(name))
	if err != nil || len(ids) != 1 {
		t.Fatalf("raw duplicates of %s: %v %v", name, ids, err)
	}

	// Page 1 and the deep page are full, of the right region, and the
	// same rows in the same order through HTTP and SQL.
	same := func(what string, h, r listPage) {
		t.Helper()
		if len(h.ids) != limit || !slices.Equal(h.ids, r.ids) {
			t.Fatalf("%s: http %d ids, raw %d ids, equal %v", what, len(h.ids), len(r.ids), slices.Equal(h.ids, r.ids))
		}
		for _, reg := range append(h.regions, r.regions...) {
			if reg != listRegion {
				t.Fatalf("%s: a customer of region %q", what, reg)
			}
		}
	}
	h1, err := q.listHTTP("")
	if err != nil || h1.cursor == "" {
		t.Fatalf("page 1: %v, cursor %q", err, h1.cursor)
	}
	r1, err := q.listRaw(nil)
	if err != nil {
		t.Fatal(err)
	}
	same("page 1", h1, r1)

	pages := q.deepPages()
	if pages < 5 {
		t.Fatalf("only %d pages to walk", pages)
	}
	wh, lastH, err := q.walkHTTP(pages)
	if err != nil || wh.ok != pages {
		t.Fatalf("walk http: %d pages, %v", wh.ok, err)
	}
	wr, lastR, err := q.walkRaw(pages)
	if err != nil || wr.ok != pages {
		t.Fatalf("walk raw: %d pages, %v", wr.ok, err)
	}
	same("last walked page", lastH, lastR)
	deepH, err := q.listHTTP(lastH.cursor)
	if err != nil {
		t.Fatal(err)
	}
	deepR, err := q.listRaw(&lastR)
	if err != nil {
		t.Fatal(err)
	}
	same("deep page", deepH, deepR)
	deepOr, err := q.listRawOr(&lastR)
	if err != nil {
		t.Fatal(err)
	}
	same("deep page, OR keyset", deepH, deepOr)
	if slices.Contains(h1.ids, deepH.ids[0]) {
		t.Fatal("the deep page repeats page 1")
	}
}
