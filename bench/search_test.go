package bench

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/search"
)

// The seeded leads' companies are city + keyword + industry + 有限公司,
// each part a pure function of the lead's number, so a query's matches
// are known without reading them back: keyword k (two characters) is one
// lead in 200, keyword and industry one in 4,000.
var (
	searchCities     = strings.Fields("苏州 上海 北京 深圳 广州 杭州 南京 成都 武汉 西安 无锡 宁波 青岛 天津 重庆 长沙 郑州 合肥 厦门 济南")
	searchKeyFirst   = []rune("恒华瑞鑫宏盛金嘉永新天海东博远中正荣锦德")
	searchKeySecond  = []rune("达兴丰源通泰成昌利信")
	searchIndustries = strings.Fields("机械 科技 电子 贸易 物流 化工 纺织 建材 食品 医药 环保 能源 汽配 家居 印刷 包装 模具 五金 光电 软件")
	searchSurnames   = []rune("王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高")
	searchGiven      = []rune("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平")
)

func searchKeyword(i int) string {
	return string(searchKeyFirst[i%len(searchKeyFirst)]) + string(searchKeySecond[(i/len(searchKeyFirst))%len(searchKeySecond)])
}

// searchKeywords is how many keywords there are (200).
var searchKeywords = len(searchKeyFirst) * len(searchKeySecond)

func searchIndustry(i int) string { return searchIndustries[(i/searchKeywords)%len(searchIndustries)] }

func searchLead(i int) (name, company, phone, email string) {
	name = string(searchSurnames[i%len(searchSurnames)]) + string(searchGiven[(i/7)%len(searchGiven)]) + string(searchGiven[(i/3)%len(searchGiven)])
	company = searchCities[(i/13)%len(searchCities)] + searchKeyword(i) + searchIndustry(i) + "有限公司"
	phone = fmt.Sprintf("1%d%09d", 3+i%6, (i*7919+12345)%1_000_000_000)
	email = fmt.Sprintf("sales%d@co%d.cn", i, i%997)
	return
}

// The queries timed: a two-character keyword (one lead in 200), the same
// keyword with its industry (four characters, one in 4,000), and a
// two-character industry (one in 20), the common case a keyword index
// has to survive.
const (
	searchQ2      = "恒达"
	searchQ4      = "恒达机械"
	searchQCommon = "机械"
)

// searchBench is Shoal over n seeded leads, with an admin logged in and a
// raw read pool on the same database.
type searchBench struct {
	env    *apitest.Env
	reader *rawDB
	client *http.Client
	admin  *sessions
	n      int
}

func newSearchBench(tb testing.TB, databaseURL string, n int) *searchBench {
	tb.Helper()
	s := &searchBench{
		env:    startSearchShoal(tb, databaseURL),
		reader: openRaw(tb, databaseURL, roleReader),
		client: newHTTPClient(4),
		n:      n,
	}
	tb.Cleanup(s.client.CloseIdleConnections)
	start := time.Now()
	grams := seedSearchLeads(tb, openRaw(tb, databaseURL, roleSeed), n)
	tb.Logf("seeded %d leads and %d grams in %s", n, grams, time.Since(start).Round(time.Millisecond))
	// Logged in after the seeding, which at full size outlasts an
	// access token.
	s.admin = newSessions(tb, s.env, s.client, "admin", 1)
	return s
}

// startSearchShoal is startShoal with a per-user request budget large
// enough for one caller timing hundreds of searches back to back.
func startSearchShoal(tb testing.TB, databaseURL string) *apitest.Env {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger,
		Auth: auth.Config{UserRate: 100_000, UserBurst: 100_000}}})
}

// seedSearchLeads inserts n pooled leads in the default lead pool with
// their normalised columns and their search grams, as Shoal would write
// them (search.Doc), and returns how many grams it wrote. Duplicate keys
// are left out: nothing here checks duplicates.
func seedSearchLeads(tb testing.TB, db *rawDB, n int) int {
	tb.Helper()
	ctx := context.Background()
	leads := db.newInserter("leads",
		[]string{"id", "created_at", "updated_at", "pool_id", "name", "company", "phone", "email", "name_norm", "company_norm", "phone_norm", "email_norm"},
		[][2]string{{"status", "'active'"}, {"version", "1"}, {"tags", "'[]'"}, {"reclaim_reason", "''"},
			{"source", "''"}, {"region", "''"}, {"industry", "''"}, {"notes", "''"}})
	grams := gramWriter(db)
	// The grams' indexes are built after the load, as a restore would:
	// millions of random inserts into two B-trees is what makes a
	// seeding slow, and the indexes come out the same.
	for _, idx := range searchGramIndexes {
		if _, err := db.ExecContext(ctx, "DROP INDEX "+idx[0]); err != nil {
			tb.Fatalf("drop index %s: %v", idx[0], err)
		}
	}
	defer func() {
		for _, idx := range searchGramIndexes {
			if _, err := db.ExecContext(ctx, idx[1]); err != nil {
				tb.Fatalf("create index %s: %v", idx[0], err)
			}
		}
		db.settle(tb)
	}()
	poolID := pool.DefaultPoolID("lead")
	now := time.Now().UTC()
	base := now.Add(-time.Duration(n)*time.Millisecond - time.Hour)
	total := 0
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatalf("begin: %v", err)
	}
	for i := range n {
		id := uuid.Must(uuid.NewV7())
		at := base.Add(time.Duration(i) * time.Millisecond)
		name, company, phone, email := searchLead(i)
		nn, cn, pn, en := dedupe.Name(name), dedupe.Name(company), dedupe.Phone(phone), dedupe.Email(email)
		if err := leads.add(ctx, tx, id, at, at, poolID, name, company, phone, email, nn, cn, pn, en); err != nil {
			tb.Fatalf("seed leads: %v", err)
		}
		gs := search.Doc{Text: []string{nn, cn, en}, Phones: []string{pn}}.Grams()
		total += len(gs)
		for _, g := range gs {
			grams.add(g, id)
		}
		if (i+1)%seedCommitEvery == 0 || i == n-1 {
			if err := leads.flush(ctx, tx); err != nil {
				tb.Fatalf("seed leads: %v", err)
			}
			if err := grams.flush(ctx, tx); err != nil {
				tb.Fatalf("seed grams: %v", err)
			}
			if err := tx.Commit(); err != nil {
				tb.Fatalf("commit leads: %v", err)
			}
			if tx, err = db.BeginTx(ctx, nil); err != nil {
				tb.Fatalf("begin: %v", err)
			}
		}
	}
	_ = tx.Rollback() // the empty transaction opened after the last commit
	return total
}

// searchGramIndexes are the indexes of search_grams as Shoal's migration
// creates them (ent/schema/searchgram.go), by name and definition.
var searchGramIndexes = [][2]string{
	{"searchgram_gram_record_kind_record_id", "CREATE UNIQUE INDEX searchgram_gram_record_kind_record_id ON search_grams (gram, record_kind, record_id)"},
	{"searchgram_record_id", "CREATE INDEX searchgram_record_id ON search_grams (record_id)"},
}

// gramRows collects search_grams rows and writes them with COPY on
// PostgreSQL, multi-row INSERTs on SQLite.
type gramRows struct {
	db    *rawDB
	grams []string
	ids   []uuid.UUID
}

func gramWriter(db *rawDB) *gramRows { return &gramRows{db: db} }

func (g *gramRows) add(gram string, id uuid.UUID) {
	g.grams = append(g.grams, gram)
	g.ids = append(g.ids, id)
}

func (g *gramRows) flush(ctx context.Context, tx *sql.Tx) error {
	defer func() { g.grams, g.ids = g.grams[:0], g.ids[:0] }()
	if !g.db.pg {
		ins := g.db.newInserter("search_grams", []string{"gram", "record_id"}, [][2]string{{"record_kind", "'lead'"}})
		for i := range g.grams {
			if err := ins.add(ctx, tx, g.grams[i], g.ids[i]); err != nil {
				return err
			}
		}
		return ins.flush(ctx, tx)
	}
	conn, err := g.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	// COPY runs on a connection of its own, outside tx: the rows are
	// throwaway seed data, and a failure fails the benchmark anyway.
	return conn.Raw(func(dc any) error {
		c := dc.(*stdlib.Conn).Conn()
		_, err := c.CopyFrom(ctx, pgx.Identifier{"search_grams"}, []string{"gram", "record_kind", "record_id"},
			pgx.CopyFromSlice(len(g.grams), func(i int) ([]any, error) { return []any{g.grams[i], "lead", g.ids[i]}, nil }))
		return err
	})
}

// searchHTTP is GET /v1/leads?q=…&limit=50 as the admin: the ids of page 1.
func (s *searchBench) searchHTTP(q string) ([]uuid.UUID, error) {
	v := url.Values{"q": {q}, "limit": {fmt.Sprint(pageSize)}}
	body, err := call(s.client, http.MethodGet, s.env.URL+"/v1/leads?"+v.Encode(), s.admin.token(0), http.StatusOK)
	if err != nil {
		return nil, err
	}
	var out struct {
		Items []struct {
			ID uuid.UUID `json:"id"`
		} `json:"items"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(out.Items))
	for i, it := range out.Items {
		ids[i] = it.ID
	}
	return ids, nil
}

// searchRaw is the same page in SQL on the same index, in the shape Shoal
// builds for a caller who sees every field: the records holding every
// gram of the query, checked on their own columns, newest first. The
// queries timed have no wildcard to escape.
func (s *searchBench) searchRaw(q string) ([]uuid.UUID, error) {
	parsed := search.Parse(q)
	// The plan, chosen as Shoal chooses it (search.Choose): from the
	// rarest gram of each reading, or the two rarest intersected, else a
	// walk of the list comparing every row.
	rare := search.RareBelowNow()
	pair := rare * (search.PairBelow / search.RareBelow)
	var cands []string
	var args []any
	for _, set := range parsed.GramSets() {
		held := map[string]int{}
		for _, g := range set {
			var n int
			err := s.reader.QueryRow(s.reader.q("SELECT COUNT(*) FROM (SELECT record_id FROM search_grams WHERE gram = ? AND record_kind = 'lead' LIMIT ?) t"),
				g, pair).Scan(&n)
			if err != nil {
				return nil, err
			}
			held[g] = n
		}
		slices.SortStableFunc(set, func(a, b string) int { return held[a] - held[b] })
		switch {
		case held[set[0]] < rare:
			cands = append(cands, "SELECT record_id FROM search_grams WHERE record_kind = 'lead' AND gram = ?")
			args = append(args, set[0])
		case len(set) >= 2 && held[set[1]] < pair:
			cands = append(cands, "SELECT record_id FROM search_grams WHERE record_kind = 'lead' AND gram IN (?, ?) GROUP BY record_id HAVING COUNT(*) = 2")
			args = append(args, set[0], set[1])
		default:
			cands, args = nil, nil
		}
		if cands == nil {
			break
		}
	}
	like := "%" + parsed.Text + "%"
	match := " (name_norm LIKE ? OR company_norm LIKE ? OR email_norm LIKE ?) ORDER BY created_at DESC, id DESC LIMIT ?"
	args = append(args, like, like, "%"+parsed.Email+"%", pageSize)
	query := "SELECT * FROM leads WHERE" + match
	if cands != nil {
		query = "SELECT * FROM leads WHERE id IN (" + strings.Join(cands, " UNION ") + ") AND" + match
	}
	p, err := (&queryBench{reader: s.reader}).listRawQueryCols(query, args...)
	return p, err
}

// listRawQueryCols runs a query returning whole lead rows and returns
// their ids.
func (q *queryBench) listRawQueryCols(query string, args ...any) ([]uuid.UUID, error) {
	rows, err := q.reader.Query(q.reader.q(query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	idCol := slices.Index(cols, "id")
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var ids []uuid.UUID
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		id, err := anyUUID(vals[idCol])
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// searchMatches is how many of n seeded leads q matches.
func searchMatches(q string, n int) int {
	m := 0
	for i := range n {
		name, company, _, email := searchLead(i)
		if strings.Contains(dedupe.Name(name), q) || strings.Contains(dedupe.Name(company), q) || strings.Contains(email, q) {
			m++
		}
	}
	return m
}

// searchResult holds the latency runs of one engine.
type searchResult struct {
	http, raw map[string]run
}

func (r searchResult) String() string {
	var parts []string
	for _, q := range []string{searchQ2, searchQ4, searchQCommon} {
		h, s := r.http[q], r.raw[q]
		parts = append(parts, fmt.Sprintf("q=%s http p50 %.2f p99 %.2f ms, raw p50 %.2f p99 %.2f ms (×%.1f) [samples %d/%d, load %s]",
			q, ms(h.pct(0.5)), ms(h.pct(0.99)), ms(s.pct(0.5)), ms(s.pct(0.99)), ms(h.pct(0.99))/ms(s.pct(0.99)), h.ok, s.ok, s.load))
	}
	return strings.Join(parts, "; ")
}

// BenchmarkSearch measures q's substring search over n seeded leads,
// page 1 of 50 newest first, through HTTP as an admin and as raw SQL on
// the same index.
func BenchmarkSearch(b *testing.B) {
	n := sized(2_000, 1_000_000)
	samples := sized(50, 300)
	budget := sized(10*time.Second, time.Minute)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			s := newSearchBench(b, e.url(b), n)
			res := searchResult{http: map[string]run{}, raw: map[string]run{}}
			for _, q := range []string{searchQ2, searchQ4, searchQCommon} {
				for _, side := range []struct {
					name string
					into map[string]run
					op   func(string) ([]uuid.UUID, error)
				}{{"http", res.http, s.searchHTTP}, {"raw", res.raw, s.searchRaw}} {
					b.Run(fmt.Sprintf("%s/%s", side.name, q), func(b *testing.B) {
						var all run
						for range b.N {
							r := sample(samples, budget, func() error {
								ids, err := side.op(q)
								if err == nil && len(ids) == 0 {
									err = fmt.Errorf("q=%s: empty page", q)
								}
								return err
							})
							mustSucceed(b, side.name, r)
							all = all.merge(r)
						}
						side.into[q] = all
						report(b, all, "")
					})
				}
			}
			line := fmt.Sprintf("search/%s (%d leads): %s", e.name, n, res)
			fmt.Println(line)
			b.Log(line)
		})
	}
}

// checkSearch runs the search benchmark's body at a small size and checks
// that Shoal and the baseline return the same, right, page.
func checkSearch(t *testing.T, databaseURL string) {
	const n = 2_000
	s := newSearchBench(t, databaseURL, n)
	// At this size every gram is rare. A threshold of five makes the
	// four-character query intersect two grams (恒达 and 达机 are held by
	// ten leads each, fewer than fifty), one of one makes every search walk
	// the list. Every plan gives the same page.
	pages := map[string][]uuid.UUID{}
	for _, rare := range []int{search.RareBelow, 5, 1} {
		restore := search.SetRareBelow(rare)
		for _, q := range []string{searchQ2, searchQ4, searchQCommon} {
			h, err := s.searchHTTP(q)
			if err != nil {
				t.Fatal(err)
			}
			r, err := s.searchRaw(q)
			if err != nil {
				t.Fatal(err)
			}
			want := min(pageSize, searchMatches(q, n))
			if want == 0 || len(h) != want || !slices.Equal(h, r) {
				t.Fatalf("q=%s (rare below %d): http %d ids, raw %d, want %d, equal %v", q, rare, len(h), len(r), want, slices.Equal(h, r))
			}
			if prev, ok := pages[q]; ok && !slices.Equal(prev, h) {
				t.Fatalf("q=%s: the walk and the index give different pages", q)
			}
			pages[q] = h
		}
		restore()
	}
}
