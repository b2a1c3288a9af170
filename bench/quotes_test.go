package bench

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/quotes"
)

// The quote benchmark measures createQuote with quoteLines product lines
// through the whole HTTP stack (auth, validation, the customer's scope,
// the products read, exact pricing, the row, its event and audit row),
// from quoteWorkers reps at once, against a raw-SQL baseline in the same
// run that reads the 20 products and inserts the same priced row in one
// transaction per quote.

const (
	quoteLines   = 20
	quoteWorkers = 8
)

type quoteBench struct {
	env      *apitest.Env
	client   *http.Client
	raw      *rawDB
	products []uuid.UUID
	reps     []*apitest.Client
	repIDs   []uuid.UUID
	// customers[w] is the customer rep w owns.
	customers []uuid.UUID
}

func newQuoteBench(tb testing.TB, databaseURL string, workers int) *quoteBench {
	tb.Helper()
	logger := slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	env := apitest.New(tb, databaseURL, apitest.Options{Config: app.Config{Logger: logger,
		Auth: auth.Config{UserRate: 1e6, UserBurst: 1e6}}})
	b := &quoteBench{env: env, client: newHTTPClient(workers), raw: openRaw(tb, databaseURL, roleWriter)}
	tb.Cleanup(b.client.CloseIdleConnections)
	_, sup := env.User("supervisor", nil)
	for i := range quoteLines {
		res := sup.Do("POST", "/v1/products", map[string]any{"sku": fmt.Sprintf("QB-%s-%02d", uuid.NewString()[:6], i),
			"name": fmt.Sprintf("基准产品 %d", i), "listPrice": fmt.Sprintf("%d.99", 100+i), "internalCost": fmt.Sprintf("%d.00", 60+i)}).
			Expect(http.StatusCreated)
		b.products = append(b.products, uuid.MustParse(res.Map()["id"].(string)))
	}
	for range workers {
		u, c := env.User("rep", nil)
		res := c.Do("POST", "/v1/customers", map[string]any{"name": env.Unique("报价基准客户")}).Expect(http.StatusCreated)
		b.reps, b.repIDs = append(b.reps, c), append(b.repIDs, u.ID)
		b.customers = append(b.customers, uuid.MustParse(res.Map()["id"].(string)))
	}
	return b
}

// body is a createQuote request with quoteLines product lines.
func (b *quoteBench) body(w, i int) []byte {
	lines := make([]map[string]any, quoteLines)
	for j, p := range b.products {
		lines[j] = map[string]any{"productId": p, "quantity": fmt.Sprintf("%d.5", 1+(i+j)%7),
			"discountPercent": fmt.Sprintf("%d.25", j%10), "taxRate": "13"}
	}
	raw, _ := json.Marshal(map[string]any{"title": fmt.Sprintf("基准报价 %d-%d", w, i), "customerId": b.customers[w], "lines": lines})
	return raw
}

// createHTTP makes n quotes through POST /v1/quotes.
func (b *quoteBench) createHTTP(n int) run {
	return hammer(len(b.reps), n, func(w, i int) error {
		req, err := http.NewRequest(http.MethodPost, b.env.URL+"/v1/quotes", bytes.NewReader(b.body(w, i)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+b.reps[w].Bearer)
		res, err := b.client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusCreated {
			return fmt.Errorf("create quote: %d %s", res.StatusCode, strings.TrimSpace(string(raw)))
		}
		return nil
	})
}

// createRaw makes n quotes as bare SQL: read the products' prices, price
// the lines (the same quotes.Price), insert the row; one transaction each.
func (b *quoteBench) createRaw(n int) run {
	ctx := context.Background()
	ph := strings.TrimSuffix(strings.Repeat("?,", quoteLines), ",")
	sel := b.raw.q("SELECT id, sku, name, list_price, internal_cost FROM products WHERE id IN (" + ph + ")")
	ins := b.raw.q(`INSERT INTO quotes (id, created_at, updated_at, version, number, revision, root_id, customer_id, owner_id,
		title, status, currency, valid_until, lines, subtotal, discount_total, tax_total, total, notes, terms)
		VALUES (?, ?, ?, 1, ?, 1, ?, ?, ?, ?, 'draft', 'CNY', ?, ?, ?, ?, ?, ?, '', '')`)
	args := make([]any, len(b.products))
	for i, p := range b.products {
		args[i] = p
	}
	return hammer(len(b.reps), n, func(w, i int) error {
		tx, err := b.raw.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback() }()
		rows, err := tx.QueryContext(ctx, sel, args...)
		if err != nil {
			return err
		}
		lines := make([]schema.QuoteLine, 0, quoteLines)
		for rows.Next() {
			var (
				l    schema.QuoteLine
				id   uuid.UUID
				cost sql.NullInt64
			)
			if err := rows.Scan(&id, &l.SKU, &l.Name, &l.UnitPrice, &cost); err != nil {
				_ = rows.Close()
				return err
			}
			j := len(lines)
			l.ID, l.ProductID = uuid.Must(uuid.NewV7()), &id
			l.Quantity, l.DiscountPercent, l.TaxRate = fmt.Sprintf("%d.5", 1+(i+j)%7), fmt.Sprintf("%d.25", j%10), "13"
			if cost.Valid {
				l.UnitCost = &cost.Int64
			}
			lines = append(lines, l)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		t, err := quotes.Price(lines)
		if err != nil {
			return err
		}
		js, _ := json.Marshal(lines)
		now := time.Now().UTC()
		id := uuid.Must(uuid.NewV7())
		if _, err := tx.ExecContext(ctx, ins, id, now, now, "QB-"+id.String(), id, b.customers[w], b.repIDs[w],
			fmt.Sprintf("基准报价 %d-%d", w, i), now.AddDate(0, 0, 30).Format(time.DateOnly), string(js),
			t.Subtotal.Fen(), t.Discount.Fen(), t.Tax.Fen(), t.Total.Fen()); err != nil {
			return err
		}
		return tx.Commit()
	})
}

func quoteLine(engine string, h, r run) string {
	return fmt.Sprintf("createQuote/%s (%d lines): http %.0f/s (p50 %.2f ms, p99 %.2f ms) raw %.0f/s (p50 %.2f ms, p99 %.2f ms) ratio %.2f× [load %s]",
		engine, quoteLines, h.rate(), ms(h.pct(0.5)), ms(h.pct(0.99)), r.rate(), ms(r.pct(0.5)), ms(r.pct(0.99)), r.rate()/h.rate(), h.load)
}

// BenchmarkCreateQuote compares createQuote with 20 lines over HTTP with
// the raw-SQL baseline on each engine.
func BenchmarkCreateQuote(b *testing.B) {
	n := sized(80, 2_000)
	for _, e := range engines {
		b.Run(e.name, func(b *testing.B) {
			qb := newQuoteBench(b, e.url(b), quoteWorkers)
			mustSucceed(b, "warm-up", qb.createHTTP(n/8))
			var h, r run
			b.ResetTimer()
			for range b.N {
				hr := qb.createHTTP(n)
				mustSucceed(b, "http quotes", hr)
				rr := qb.createRaw(n)
				mustSucceed(b, "raw quotes", rr)
				h, r = h.merge(hr), r.merge(rr)
			}
			b.StopTimer()
			b.ReportMetric(h.rate(), "http-quotes/s")
			b.ReportMetric(r.rate(), "raw-quotes/s")
			b.ReportMetric(r.rate()/h.rate(), "raw/http")
			line := quoteLine(e.name, h, r)
			fmt.Println(line)
			b.Log(line)
		})
	}
}

// TestCreateQuoteBenchSmall runs the benchmark's body at a small size on
// both engines and checks that the HTTP and raw quotes came out with the
// same totals.
func TestCreateQuoteBenchSmall(t *testing.T) {
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			const n = 16
			qb := newQuoteBench(t, e.url(t), 2)
			h, r := qb.createHTTP(n), qb.createRaw(n)
			mustSucceed(t, "http quotes", h)
			mustSucceed(t, "raw quotes", r)
			if h.ok != n || r.ok != n {
				t.Fatalf("%d http and %d raw quotes, want %d each", h.ok, r.ok, n)
			}
			var httpSum, rawSum int64
			if err := qb.raw.QueryRow("SELECT COALESCE(SUM(total), 0) FROM quotes WHERE number NOT LIKE 'QB-%'").Scan(&httpSum); err != nil {
				t.Fatal(err)
			}
			if err := qb.raw.QueryRow("SELECT COALESCE(SUM(total), 0) FROM quotes WHERE number LIKE 'QB-%'").Scan(&rawSum); err != nil {
				t.Fatal(err)
			}
			if httpSum != rawSum || httpSum == 0 {
				t.Fatalf("http quotes total %s, raw %s", money.MustFen(httpSum), money.MustFen(rawSum))
			}
			t.Log(quoteLine(e.name, h, r))
		})
	}
}
