package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/pool"
)

const (
	// customerOwners own all the seeded customers between them.
	customerOwners = 50
	// pageSize is the list page size measured.
	pageSize = 50
	// listRegion is the region filtered on; a tenth of the customers.
	listRegion = "杭州"
	// seedCommitEvery bounds one seeding transaction, so the SQLite WAL
	// does not have to hold the whole million rows at once.
	seedCommitEvery = 100_000
)

var (
	regions = []string{"杭州", "上海", "北京", "深圳", "广州", "南京", "苏州", "成都", "武汉", "西安"}
	words   = []string{"华信", "东方", "新源", "恒通", "天成", "瑞丰", "中科", "博远", "海纳", "金诚", "远航"}
)

// customer i's seeded attributes, a pure function of i so look-ups can pick
// existing values without keeping a million names in memory. Owners cycle
// every row and regions every customerOwners rows, so each owner has
// customers in every region.
func customerName(i int) string {
	return fmt.Sprintf("%s%s科技有限公司%07d", customerRegion(i), words[i%len(words)], i)
}
func customerRegion(i int) string { return regions[(i/customerOwners)%len(regions)] }
func customerOwner(i int) int     { return i % customerOwners }

// queryBench is Shoal over n seeded customers, an admin and a rep logged
// in, and a raw read pool on the same database.
type queryBench struct {
	env    *apitest.Env
	reader *rawDB
	client *http.Client
	n      int
	limit  int       // page size of the lists
	rep    *sessions // a rep who owns none of the customers
	admin  *sessions
}

// newQueryBench starts Shoal on databaseURL and seeds n customers straight
// into the tables, with their owners and duplicate keys; lists are read
// limit rows a page.
func newQueryBench(tb testing.TB, databaseURL string, n, limit int) *queryBench {
	tb.Helper()
	q := &queryBench{
		env:    startShoal(tb, databaseURL),
		reader: openRaw(tb, databaseURL, roleReader),
		client: newHTTPClient(4),
		n:      n,
		limit:  limit,
	}
	tb.Cleanup(q.client.CloseIdleConnections)
	q.rep = newSessions(tb, q.env, q.client, "rep", 1)
	q.admin = newSessions(tb, q.env, q.client, "admin", 1)
	start := time.Now()
	seedCustomers(tb, openRaw(tb, databaseURL, roleSeed), n)
	tb.Logf("seeded %d customers in %s", n, time.Since(start).Round(time.Millisecond))
	return q
}

// seedCustomers inserts customerOwners reps (directly: they never log in,
// and hashing 50 passwords would dominate the small run) and n customers
// owned by them in the default customer pool, each with its name's
// duplicate key, and sets the reps' owned-customer counters to match.
func seedCustomers(tb testing.TB, db *rawDB, n int) {
	tb.Helper()
	ctx := context.Background()
	owners := make([]uuid.UUID, customerOwners)
	owned := make([]int, customerOwners)
	for i := range n {
		owned[customerOwner(i)]++
	}
	now := time.Now().UTC()
	users := db.newInserter("users",
		[]string{"id", "created_at", "updated_at", "email", "name", "owned_customers"},
		[][2]string{{"role", "'rep'"}, {"team_path", "''"}, {"active", "true"}, {"password_hash", "'!'"}, {"owned_leads", "0"}})
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	for o := range owners {
		owners[o] = uuid.Must(uuid.NewV7())
		if err := users.add(ctx, tx, owners[o], now, now, fmt.Sprintf("owner%02d@example.com", o), fmt.Sprintf("销售%02d", o), owned[o]); err != nil {
			tb.Fatalf("seed owners: %v", err)
		}
	}
	if err := users.flush(ctx, tx); err != nil {
		tb.Fatalf("seed owners: %v", err)
	}

	customers := db.newInserter("customers",
		[]string{"id", "created_at", "updated_at", "owner_id", "pool_id", "owned_at", "name", "region", "name_norm"},
		[][2]string{{"reclaim_reason", "''"}, {"version", "1"}, {"industry", "''"}, {"address", "''"}, {"website", "''"},
			{"grade", "''"}, {"credit_level", "''"}, {"source", "''"}, {"tags", "'[]'"}, {"status", "'active'"}, {"deal_status", "false"}})
	keys := db.newInserter("dedupe_keys",
		[]string{"id", "value", "record_id"},
		[][2]string{{"key_type", "'name'"}, {"record_kind", "'customer'"}})
	poolID := pool.DefaultPoolID("customer")
	// One millisecond apart, oldest first, so the newest-first list has a
	// well-defined order and ids grow with created_at as in real use.
	base := now.Add(-time.Duration(n)*time.Millisecond - time.Hour)
	for i := range n {
		id := uuid.Must(uuid.NewV7())
		at := base.Add(time.Duration(i) * time.Millisecond)
		name := customerName(i)
		norm := dedupe.Name(name)
		if err := customers.add(ctx, tx, id, at, at, owners[customerOwner(i)], poolID, at, name, customerRegion(i), norm); err != nil {
			tb.Fatalf("seed customers: %v", err)
		}
		if err := keys.add(ctx, tx, uuid.Must(uuid.NewV7()), norm, id); err != nil {
			tb.Fatalf("seed duplicate keys: %v", err)
		}
		if (i+1)%seedCommitEvery == 0 || i == n-1 {
			if err := customers.flush(ctx, tx); err != nil {
				tb.Fatalf("seed customers: %v", err)
			}
			if err := keys.flush(ctx, tx); err != nil {
				tb.Fatalf("seed duplicate keys: %v", err)
			}
			if err := tx.Commit(); err != nil {
				tb.Fatalf("commit customers: %v", err)
			}
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				tb.Fatalf("begin: %v", err)
			}
		}
	}
	_ = tx.Rollback() // the empty transaction opened after the last commit
	db.settle(tb)
}

// dupHTTP asks GET /v1/duplicates?name= as the rep and returns the matches.
func (q *queryBench) dupHTTP(name string) ([]map[string]any, error) {
	body, err := call(q.client, http.MethodGet, q.env.URL+"/v1/duplicates?name="+url.QueryEscape(name), q.rep.token(0), http.StatusOK)
	if err != nil {
		return nil, err
	}
	var out struct{ Matches []map[string]any }
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	return out.Matches, nil
}

// dupRaw is the same look-up as one probe of the unique index, on a value
// already normalised.
func (q *queryBench) dupRaw(norm string) ([]uuid.UUID, error) {
	rows, err := q.reader.Query(q.reader.q("SELECT record_kind, record_id FROM dedupe_keys WHERE key_type = 'name' AND value = ?"), norm)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []uuid.UUID
	for rows.Next() {
		var kind string
		var id uuid.UUID
		if err := rows.Scan(&kind, &id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// listPage is one page of customers: their ids in order and the position
// after the last (an opaque cursor for HTTP, the keyset for raw SQL).
type listPage struct {
	ids     []uuid.UUID
	regions []string
	cursor  string
	lastAt  time.Time
	lastID  uuid.UUID
}

// listHTTP fetches GET /v1/customers?region=杭州&limit=50 as the admin,
// after cursor unless it is empty.
func (q *queryBench) listHTTP(cursor string) (listPage, error) {
	v := url.Values{"region": {listRegion}, "limit": {fmt.Sprint(q.limit)}}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	body, err := call(q.client, http.MethodGet, q.env.URL+"/v1/customers?"+v.Encode(), q.admin.token(0), http.StatusOK)
	if err != nil {
		return listPage{}, err
	}
	var out struct {
		Items []struct {
			ID     uuid.UUID `json:"id"`
			Region string    `json:"region"`
		} `json:"items"`
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return listPage{}, err
	}
	p := listPage{cursor: out.NextCursor}
	for _, it := range out.Items {
		p.ids = append(p.ids, it.ID)
		p.regions = append(p.regions, it.Region)
	}
	return p, nil
}

// listRaw is the same page as a keyset query reading whole rows, after
// (at, id) unless after is nil.
func (q *queryBench) listRaw(after *listPage) (listPage, error) {
	if after == nil {
		return q.listRawQuery("SELECT * FROM customers WHERE region = ? ORDER BY created_at DESC, id DESC LIMIT ?",
			listRegion, q.limit)
	}
	return q.listRawQuery("SELECT * FROM customers WHERE region = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT ?",
		listRegion, after.lastAt, after.lastID, q.limit)
}

// listRawOr is listRaw after a position, with the keyset written as Shoal
// writes it (internal/records/list.go), an OR rather than a row-value
// comparison. Timing both tells the cost of the query's shape apart from
// the cost of the layers above it.
func (q *queryBench) listRawOr(after *listPage) (listPage, error) {
	return q.listRawQuery("SELECT * FROM customers WHERE region = ? AND (created_at < ? OR (created_at = ? AND id < ?)) ORDER BY created_at DESC, id DESC LIMIT ?",
		listRegion, after.lastAt, after.lastAt, after.lastID, q.limit)
}

func (q *queryBench) listRawQuery(query string, args ...any) (listPage, error) {
	rows, err := q.reader.Query(q.reader.q(query), args...)
	if err != nil {
		return listPage{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return listPage{}, err
	}
	idCol, atCol, regionCol := -1, -1, -1
	for i, c := range cols {
		switch c {
		case "id":
			idCol = i
		case "created_at":
			atCol = i
		case "region":
			regionCol = i
		}
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var p listPage
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return listPage{}, err
		}
		id, err := anyUUID(vals[idCol])
		if err != nil {
			return listPage{}, err
		}
		at, ok := vals[atCol].(time.Time)
		if !ok {
			return listPage{}, fmt.Errorf("created_at scanned as %T", vals[atCol])
		}
		p.ids = append(p.ids, id)
		p.regions = append(p.regions, fmt.Sprint(vals[regionCol]))
		p.lastAt, p.lastID = at, id
	}
	return p, rows.Err()
}

// anyUUID reads an id scanned into an any: text on SQLite, bytes or a
// [16]byte from pgx depending on the type map.
func anyUUID(v any) (uuid.UUID, error) {
	switch v := v.(type) {
	case string:
		return uuid.Parse(v)
	case []byte:
		if len(v) == 16 {
			return uuid.FromBytes(v)
		}
		return uuid.ParseBytes(v)
	case [16]byte:
		return uuid.UUID(v), nil
	}
	return uuid.Nil, fmt.Errorf("id scanned as %T", v)
}

// walkHTTP fetches pages 1…pages, each after the previous one's cursor,
// timing each fetch, and returns the last; walkRaw does the same in SQL.
func (q *queryBench) walkHTTP(pages int) (run, listPage, error) {
	var cur listPage
	var err error
	r := hammer(1, pages, func(_, i int) error {
		if i > 0 && cur.cursor == "" {
			return fmt.Errorf("page %d has no next cursor", i)
		}
		cur, err = q.listHTTP(cur.cursor)
		return err
	})
	return r, cur, r.firstErr
}

func (q *queryBench) walkRaw(pages int) (run, listPage, error) {
	var cur listPage
	var err error
	r := hammer(1, pages, func(_, i int) error {
		var after *listPage
		if i > 0 {
			prev := cur
			after = &prev
		}
		cur, err = q.listRaw(after)
		return err
	})
	return r, cur, r.firstErr
}

// queryResult holds the latency runs of one engine.
type queryResult struct {
	dupHTTP, dupRaw     run
	page1HTTP, page1Raw run
	walkHTTP, walkRaw   run
	deepHTTP, deepRaw   run
	deepRawOr           run
	deepPage            int
}

func (r queryResult) String() string {
	p99 := func(x run) float64 { return ms(x.pct(0.99)) }
	return fmt.Sprintf("duplicates http p99 %.2f ms raw p99 %.2f ms (×%.1f); "+
		"page 1 http p99 %.2f ms raw p99 %.2f ms (×%.1f); "+
		"page %d http p99 %.2f ms raw p99 %.2f ms (×%.1f) raw-or p99 %.2f ms; "+
		"page %d / page 1 http %.2f raw %.2f [samples %d/%d, %d/%d, %d/%d; load %s]",
		p99(r.dupHTTP), p99(r.dupRaw), p99(r.dupHTTP)/p99(r.dupRaw),
		p99(r.page1HTTP), p99(r.page1Raw), p99(r.page1HTTP)/p99(r.page1Raw),
		r.deepPage, p99(r.deepHTTP), p99(r.deepRaw), p99(r.deepHTTP)/p99(r.deepRaw), p99(r.deepRawOr),
		r.deepPage, p99(r.deepHTTP)/p99(r.page1HTTP), p99(r.deepRaw)/p99(r.page1Raw),
		r.dupHTTP.ok, r.dupRaw.ok, r.page1HTTP.ok, r.page1Raw.ok, r.deepHTTP.ok, r.deepRaw.ok, r.deepRaw.load)
}

// deepPages is how many pages to walk before timing the next, deep page:
// 1,000 in full mode, then page 1,001 is timed. A small run walks 20 pages
// or, when there are fewer full pages of 杭州 customers than that (2,000
// customers make only 4 pages of 50), all but the last full one.
func (q *queryBench) deepPages() int {
	return min(sized(20, 1000), q.n/len(regions)/q.limit-1)
}

// BenchmarkCustomerQueries measures duplicate checks and customer lists
// over n seeded customers through HTTP and as raw SQL on the same data.
// Each operation is timed samples times in a row from one caller, or fewer
// (at least minSamples) where that takes longer than budget.
func BenchmarkCustomerQueries(b *testing.B) {
	n := sized(2_000, 1_000_000)
	samples := sized(50, 300)
	budget := sized(10*time.Second, time.Minute)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			q := newQueryBench(b, e.url(b), n, pageSize)
			var res queryResult
			// Names to look up, spread over the table.
			names := make([]string, samples)
			for i := range names {
				names[i] = customerName((i * 7919) % n)
			}
			measure := func(name string, into *run, op func(i int) error) {
				b.Run(name, func(b *testing.B) {
					*into = run{}
					for range b.N {
						k := 0
						r := sample(samples, budget, func() error { k++; return op(k) })
						mustSucceed(b, name, r)
						*into = into.merge(r)
					}
					report(b, *into, "")
				})
			}
			measure("duplicates/http", &res.dupHTTP, func(i int) error {
				m, err := q.dupHTTP(names[i%samples])
				if err == nil && len(m) != 1 {
					err = fmt.Errorf("%d matches for %s", len(m), names[i%samples])
				}
				return err
			})
			measure("duplicates/raw", &res.dupRaw, func(i int) error {
				ids, err := q.dupRaw(dedupe.Name(names[i%samples]))
				if err == nil && len(ids) != 1 {
					err = fmt.Errorf("%d matches for %s", len(ids), names[i%samples])
				}
				return err
			})
			measure("page1/http", &res.page1HTTP, func(int) error { return nonEmpty(q.listHTTP("")) })
			measure("page1/raw", &res.page1Raw, func(int) error { return nonEmpty(q.listRaw(nil)) })

			res.deepPage = q.deepPages() + 1
			var deepHTTP, deepRaw listPage
			b.Run("walk/http", func(b *testing.B) {
				for range b.N {
					r, last, err := q.walkHTTP(res.deepPage - 1)
					if err != nil {
						b.Fatal(err)
					}
					res.walkHTTP, deepHTTP = r, last
				}
				report(b, res.walkHTTP, "")
			})
			b.Run("walk/raw", func(b *testing.B) {
				for range b.N {
					r, last, err := q.walkRaw(res.deepPage - 1)
					if err != nil {
						b.Fatal(err)
					}
					res.walkRaw, deepRaw = r, last
				}
				report(b, res.walkRaw, "")
			})
			// The walks ended one page before the deep page: time fetching
			// the page after it, again and again.
			measure(fmt.Sprintf("page%d/http", res.deepPage), &res.deepHTTP, func(int) error {
				if deepHTTP.cursor == "" {
					return errors.New("the walk found no cursor to the deep page")
				}
				return nonEmpty(q.listHTTP(deepHTTP.cursor))
			})
			measure(fmt.Sprintf("page%d/raw", res.deepPage), &res.deepRaw, func(int) error {
				if len(deepRaw.ids) == 0 {
					return errors.New("the walk found no position of the deep page")
				}
				return nonEmpty(q.listRaw(&deepRaw))
			})
			measure(fmt.Sprintf("page%d/raw-or", res.deepPage), &res.deepRawOr, func(int) error {
				if len(deepRaw.ids) == 0 {
					return errors.New("the walk found no position of the deep page")
				}
				return nonEmpty(q.listRawOr(&deepRaw))
			})
			if res.deepRaw.ok > 0 && res.deepHTTP.ok > 0 {
				line := fmt.Sprintf("customers/%s (%d rows): %s", e.name, n, res)
				fmt.Println(line)
				b.Log(line)
			}
		})
	}
}

// nonEmpty fails an empty page, which would make a list look fast.
func nonEmpty(p listPage, err error) error {
	if err == nil && len(p.ids) == 0 {
		err = errors.New("empty page")
	}
	return err
}
