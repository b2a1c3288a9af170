package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/pipeline"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/pool"
)

const (
	// oppTeamReps are the reps of the supervisor's team (the measured rep
	// is the first); one more rep, of another team, owns the rest.
	oppTeamReps = 4
	oppOwners   = oppTeamReps + 1
	// oppsPerCustomer: each seeded customer has this many opportunities.
	oppsPerCustomer = 20
)

// oppViewer is one caller of listOpportunities and the raw query that
// returns the same rows: a rep sees his own (through his customers and
// as their owner), the supervisor those of his team.
type oppViewer struct {
	name    string
	s       *sessions
	where   string // the raw query's filter, without the keyset
	args    []any
	visible int // the opportunities he sees
}

// oppBench is Shoal over n seeded opportunities on customers owned by
// oppOwners reps, a rep and the supervisor of his team logged in, and a
// raw read pool on the same database.
type oppBench struct {
	env     *apitest.Env
	reader  *rawDB
	client  *http.Client
	n       int
	limit   int
	viewers []*oppViewer // the rep, the supervisor
}

// newOppBench starts Shoal on databaseURL, creates the team (the rep and
// supervisor log in; the other owners never do) and seeds n opportunities
// straight into the tables; lists are read limit rows a page.
func newOppBench(tb testing.TB, databaseURL string, n, limit int) *oppBench {
	tb.Helper()
	o := &oppBench{
		env:    startShoal(tb, databaseURL),
		reader: openRaw(tb, databaseURL, roleReader),
		client: newHTTPClient(4),
		n:      n,
		limit:  limit,
	}
	tb.Cleanup(o.client.CloseIdleConnections)
	sales := o.env.Team("sales", nil).ID
	other := o.env.Team("other", nil).ID
	rep := newSessionsIn(tb, o.env, o.client, auth.RoleRep, 1, &sales)
	sup := newSessionsIn(tb, o.env, o.client, auth.RoleSupervisor, 1, &sales)
	owners := []uuid.UUID{rep.ids[0]}
	for range oppTeamReps - 1 {
		owners = append(owners, o.env.World.User(auth.RoleRep, &sales).ID)
	}
	owners = append(owners, o.env.World.User(auth.RoleRep, &other).ID)

	pl, err := o.env.World.Store.Client.Pipeline.Query().Where(pipeline.IsDefault(true)).Only(context.Background())
	if err != nil || len(pl.Stages) == 0 {
		tb.Fatalf("default pipeline: %v", err)
	}
	start := time.Now()
	perOwner := seedOpportunities(tb, openRaw(tb, databaseURL, roleSeed), n, owners, pl.ID, pl.Stages[0].ID)
	tb.Logf("seeded %d opportunities in %s", n, time.Since(start).Round(time.Millisecond))

	supSees := 0
	team := []any{sup.ids[0]}
	for i := range oppTeamReps {
		supSees += perOwner[i]
		team = append(team, owners[i])
	}
	o.viewers = []*oppViewer{
		{name: "rep", s: rep, where: "owner_id = ?", args: []any{owners[0]}, visible: perOwner[0]},
		{name: "supervisor", s: sup, where: "owner_id IN (?" + strings.Repeat(", ?", len(team)-1) + ")", args: team, visible: supSees},
	}
	return o
}

// seedOpportunities inserts n/oppsPerCustomer customers owned in turn by
// owners (in the default customer pool, as assigned customers are) and n
// open opportunities on them, owned by their customer's owner, one
// millisecond apart, oldest first. It sets the owners' customer counters
// and returns how many opportunities each owner has.
func seedOpportunities(tb testing.TB, db *rawDB, n int, owners []uuid.UUID, pipelineID, stageID uuid.UUID) []int {
	tb.Helper()
	ctx := context.Background()
	nCust := max(1, n/oppsPerCustomer)
	now := time.Now().UTC()
	base := now.Add(-time.Duration(n)*time.Millisecond - time.Hour)
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	customers := db.newInserter("customers",
		[]string{"id", "created_at", "updated_at", "owner_id", "pool_id", "owned_at", "name", "name_norm"},
		[][2]string{{"reclaim_reason", "''"}, {"version", "1"}, {"industry", "''"}, {"region", "''"}, {"address", "''"}, {"website", "''"},
			{"grade", "''"}, {"credit_level", "''"}, {"source", "''"}, {"tags", "'[]'"}, {"status", "'active'"}, {"deal_status", "false"}})
	custIDs := make([]uuid.UUID, nCust)
	custOwned := make([]int, len(owners))
	poolID := pool.DefaultPoolID("customer")
	for c := range nCust {
		custIDs[c] = uuid.Must(uuid.NewV7())
		at := base.Add(-time.Duration(nCust-c) * time.Millisecond)
		name := fmt.Sprintf("商机客户%07d", c)
		owner := c % len(owners)
		custOwned[owner]++
		if err := customers.add(ctx, tx, custIDs[c], at, at, owners[owner], poolID, at, name, name); err != nil {
			tb.Fatalf("seed customers: %v", err)
		}
	}
	if err := customers.flush(ctx, tx); err != nil {
		tb.Fatalf("seed customers: %v", err)
	}
	for o, id := range owners {
		if _, err := tx.ExecContext(ctx, db.q("UPDATE users SET owned_customers = ? WHERE id = ?"), custOwned[o], id); err != nil {
			tb.Fatalf("owners' counters: %v", err)
		}
	}

	opps := db.newInserter("opportunities",
		[]string{"id", "created_at", "updated_at", "title", "customer_id", "owner_id", "amount", "pipeline_id", "stage_id"},
		[][2]string{{"version", "1"}, {"stage_kind", "'open'"}, {"currency", "'CNY'"}})
	perOwner := make([]int, len(owners))
	for i := range n {
		c := i % nCust
		owner := c % len(owners)
		perOwner[owner]++
		at := base.Add(time.Duration(i) * time.Millisecond)
		if err := opps.add(ctx, tx, uuid.Must(uuid.NewV7()), at, at, fmt.Sprintf("商机%07d", i), custIDs[c], owners[owner],
			int64(100_000+i%997*100), pipelineID, stageID); err != nil {
			tb.Fatalf("seed opportunities: %v", err)
		}
		if (i+1)%seedCommitEvery == 0 || i == n-1 {
			if err := opps.flush(ctx, tx); err != nil {
				tb.Fatalf("seed opportunities: %v", err)
			}
			if err := tx.Commit(); err != nil {
				tb.Fatalf("commit opportunities: %v", err)
			}
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				tb.Fatalf("begin: %v", err)
			}
		}
	}
	_ = tx.Rollback() // the empty transaction opened after the last commit
	db.settle(tb)
	return perOwner
}

// oppPage is one page of opportunities: their ids in order and the
// position after the last (an opaque cursor for HTTP, the keyset for SQL).
type oppPage struct {
	ids    []uuid.UUID
	cursor string
	lastAt time.Time
	lastID uuid.UUID
}

// listHTTP fetches GET /v1/opportunities?limit= as v, after cursor unless
// it is empty.
func (o *oppBench) listHTTP(v *oppViewer, cursor string) (oppPage, error) {
	q := url.Values{"limit": {fmt.Sprint(o.limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	body, err := call(o.client, http.MethodGet, o.env.URL+"/v1/opportunities?"+q.Encode(), v.s.token(0), http.StatusOK)
	if err != nil {
		return oppPage{}, err
	}
	var out struct {
		Items []struct {
			ID uuid.UUID `json:"id"`
		} `json:"items"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return oppPage{}, err
	}
	p := oppPage{cursor: out.NextCursor}
	for _, it := range out.Items {
		p.ids = append(p.ids, it.ID)
	}
	return p, nil
}

// listRaw is the same page as a keyset query reading whole rows, after
// (at, id) unless after is nil.
func (o *oppBench) listRaw(v *oppViewer, after *oppPage) (oppPage, error) {
	args := append([]any(nil), v.args...)
	query := "SELECT * FROM opportunities WHERE " + v.where
	if after != nil {
		query += " AND (created_at, id) < (?, ?)"
		args = append(args, after.lastAt, after.lastID)
	}
	query += " ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, o.limit)
	rows, err := o.reader.Query(o.reader.q(query), args...)
	if err != nil {
		return oppPage{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return oppPage{}, err
	}
	idCol, atCol := slices.Index(cols, "id"), slices.Index(cols, "created_at")
	if idCol < 0 || atCol < 0 {
		return oppPage{}, fmt.Errorf("columns %v", cols)
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var p oppPage
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return oppPage{}, err
		}
		id, err := anyUUID(vals[idCol])
		if err != nil {
			return oppPage{}, err
		}
		at, ok := vals[atCol].(time.Time)
		if !ok {
			return oppPage{}, fmt.Errorf("created_at scanned as %T", vals[atCol])
		}
		p.ids = append(p.ids, id)
		p.lastAt, p.lastID = at, id
	}
	return p, rows.Err()
}

// walkHTTP fetches pages 1…pages as v, each after the previous one's
// cursor, and returns the last; walkRaw does the same in SQL.
func (o *oppBench) walkHTTP(v *oppViewer, pages int) (run, oppPage, error) {
	var cur oppPage
	var err error
	r := hammer(1, pages, func(_, i int) error {
		if i > 0 && cur.cursor == "" {
			return fmt.Errorf("page %d has no next cursor", i)
		}
		cur, err = o.listHTTP(v, cur.cursor)
		return err
	})
	return r, cur, r.firstErr
}

func (o *oppBench) walkRaw(v *oppViewer, pages int) (run, oppPage, error) {
	var cur oppPage
	var err error
	r := hammer(1, pages, func(_, i int) error {
		var after *oppPage
		if i > 0 {
			prev := cur
			after = &prev
		}
		cur, err = o.listRaw(v, after)
		return err
	})
	return r, cur, r.firstErr
}

// deepPage is the page timed as the deep one: page 1,000 at full size;
// a small run has fewer full pages, and takes the last full one.
func (o *oppBench) deepPage(v *oppViewer) int {
	return min(1000, v.visible/o.limit)
}

// oppResult holds one viewer's latency runs on one engine.
type oppResult struct {
	viewer              string
	page1HTTP, page1Raw run
	deepHTTP, deepRaw   run
	deepPage            int
}

func (r oppResult) String() string {
	p50 := func(x run) float64 { return ms(x.pct(0.50)) }
	p99 := func(x run) float64 { return ms(x.pct(0.99)) }
	return fmt.Sprintf("%s: page 1 http p50 %.2f p99 %.2f ms raw p50 %.2f p99 %.2f ms (p99 ×%.1f); "+
		"page %d http p50 %.2f p99 %.2f ms raw p50 %.2f p99 %.2f ms (p99 ×%.1f); page %d / page 1 p99 http %.2f raw %.2f "+
		"[samples %d/%d, %d/%d; load %s]",
		r.viewer, p50(r.page1HTTP), p99(r.page1HTTP), p50(r.page1Raw), p99(r.page1Raw), p99(r.page1HTTP)/p99(r.page1Raw),
		r.deepPage, p50(r.deepHTTP), p99(r.deepHTTP), p50(r.deepRaw), p99(r.deepRaw), p99(r.deepHTTP)/p99(r.deepRaw),
		r.deepPage, p99(r.deepHTTP)/p99(r.page1HTTP), p99(r.deepRaw)/p99(r.page1Raw),
		r.page1HTTP.ok, r.page1Raw.ok, r.deepHTTP.ok, r.deepRaw.ok, r.deepRaw.load)
}

// BenchmarkOpportunityList measures listOpportunities over n seeded
// opportunities, for a rep (a fifth of them) and his supervisor (four
// fifths), at page 1 and at page 1,000 (the last full page at the small
// size), through HTTP and as raw SQL on the same data in the same run.
func BenchmarkOpportunityList(b *testing.B) {
	n := sized(2_000, 1_000_000)
	samples := sized(50, 300)
	budget := sized(10*time.Second, time.Minute)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			o := newOppBench(b, e.url(b), n, pageSize)
			var lines []string
			for _, v := range o.viewers {
				res := oppResult{viewer: v.name, deepPage: o.deepPage(v)}
				measure := func(name string, into *run, op func() error) {
					b.Run(v.name+"/"+name, func(b *testing.B) {
						*into = run{}
						for range b.N {
							r := sample(samples, budget, op)
							mustSucceed(b, name, r)
							*into = into.merge(r)
						}
						report(b, *into, "")
					})
				}
				measure("page1/http", &res.page1HTTP, func() error { return oppNonEmpty(o.listHTTP(v, "")) })
				measure("page1/raw", &res.page1Raw, func() error { return oppNonEmpty(o.listRaw(v, nil)) })
				// Walk to the page before the deep one, then time the
				// deep page again and again.
				var beforeHTTP, beforeRaw oppPage
				b.Run(v.name+"/walk", func(b *testing.B) {
					for range b.N {
						var err error
						if _, beforeHTTP, err = o.walkHTTP(v, res.deepPage-1); err != nil {
							b.Fatal(err)
						}
						if _, beforeRaw, err = o.walkRaw(v, res.deepPage-1); err != nil {
							b.Fatal(err)
						}
					}
				})
				deep := fmt.Sprintf("page%d", res.deepPage)
				measure(deep+"/http", &res.deepHTTP, func() error {
					if beforeHTTP.cursor == "" {
						return errors.New("the walk found no cursor to the deep page")
					}
					return oppNonEmpty(o.listHTTP(v, beforeHTTP.cursor))
				})
				measure(deep+"/raw", &res.deepRaw, func() error {
					if len(beforeRaw.ids) == 0 {
						return errors.New("the walk found no position of the deep page")
					}
					return oppNonEmpty(o.listRaw(v, &beforeRaw))
				})
				if res.deepHTTP.ok > 0 && res.deepRaw.ok > 0 {
					lines = append(lines, res.String())
				}
			}
			if len(lines) == len(o.viewers) {
				line := fmt.Sprintf("opportunities/%s (%d rows): %s", e.name, n, strings.Join(lines, "; "))
				fmt.Println(line)
				b.Log(line)
			}
		})
	}
}

// oppNonEmpty fails an empty page, which would make a list look fast.
func oppNonEmpty(p oppPage, err error) error {
	if err == nil && len(p.ids) == 0 {
		err = errors.New("empty page")
	}
	return err
}

// checkOpportunityQueries: the seed is what the benchmark says, and for
// the rep and the supervisor page 1, a walk and the deep page are full
// and the same rows in the same order through HTTP and SQL.
func checkOpportunityQueries(t *testing.T, databaseURL string) {
	const n, limit = 1_000, 10
	o := newOppBench(t, databaseURL, n, limit)
	if got := o.reader.count(t, "SELECT COUNT(*) FROM opportunities"); got != n {
		t.Fatalf("%d opportunities seeded, want %d", got, n)
	}
	if got := o.reader.count(t, "SELECT SUM(owned_customers) FROM users"); got != n/oppsPerCustomer {
		t.Fatalf("owners' counters add up to %d, want %d", got, n/oppsPerCustomer)
	}
	rep, sup := o.viewers[0], o.viewers[1]
	if rep.visible != n/oppOwners || sup.visible != n*oppTeamReps/oppOwners {
		t.Fatalf("the rep sees %d, the supervisor %d", rep.visible, sup.visible)
	}
	for _, v := range o.viewers {
		same := func(what string, h, r oppPage) {
			t.Helper()
			if len(h.ids) != limit || !slices.Equal(h.ids, r.ids) {
				t.Fatalf("%s %s: http %d ids, raw %d ids, equal %v", v.name, what, len(h.ids), len(r.ids), slices.Equal(h.ids, r.ids))
			}
		}
		h1, err := o.listHTTP(v, "")
		if err != nil || h1.cursor == "" {
			t.Fatalf("%s page 1: %v, cursor %q", v.name, err, h1.cursor)
		}
		r1, err := o.listRaw(v, nil)
		if err != nil {
			t.Fatal(err)
		}
		same("page 1", h1, r1)
		deep := o.deepPage(v)
		if deep < 5 {
			t.Fatalf("%s: only %d pages", v.name, deep)
		}
		wh, lastH, err := o.walkHTTP(v, deep-1)
		if err != nil || wh.ok != deep-1 {
			t.Fatalf("%s walk http: %d pages, %v", v.name, wh.ok, err)
		}
		wr, lastR, err := o.walkRaw(v, deep-1)
		if err != nil || wr.ok != deep-1 {
			t.Fatalf("%s walk raw: %d pages, %v", v.name, wr.ok, err)
		}
		same("last walked page", lastH, lastR)
		dh, err := o.listHTTP(v, lastH.cursor)
		if err != nil {
			t.Fatal(err)
		}
		dr, err := o.listRaw(v, &lastR)
		if err != nil {
			t.Fatal(err)
		}
		same(fmt.Sprintf("page %d", deep), dh, dr)
		if slices.Contains(h1.ids, dh.ids[0]) {
			t.Fatalf("%s: the deep page repeats page 1", v.name)
		}
		// The last full page is the last: nothing is left after it.
		if v.visible%limit == 0 {
			if end, err := o.listRaw(v, &dr); err != nil || len(end.ids) != 0 {
				t.Fatalf("%s: %d rows after the last page (%v)", v.name, len(end.ids), err)
			}
		}
	}
}
