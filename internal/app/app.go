// Package app wires Shoal's services together over one store. The binary
// and the tests build the server the same way, through New.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"
	_ "time/tzdata" // Asia/Shanghai on machines without zoneinfo

	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/feed"
	"github.com/shoalcrm/shoal/internal/handover"
	"github.com/shoalcrm/shoal/internal/httpapi"
	"github.com/shoalcrm/shoal/internal/imports"

	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/idempotency"
	"github.com/shoalcrm/shoal/internal/jobs"
	"github.com/shoalcrm/shoal/internal/merge"
	"github.com/shoalcrm/shoal/internal/opportunities"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/personaldata"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/quotes"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/tags"
	"github.com/shoalcrm/shoal/internal/webhooks"
)

// Config is everything configurable about a running Shoal.
type Config struct {
	Logger      *slog.Logger
	Version     string
	CORSOrigins []string
	// SigningKey is a base64 Ed25519 seed for access tokens; empty means
	// generate one on first start and keep it in the database.
	SigningKey string
	Auth       auth.Config
	// Clock drives every time-based rule; nil means the wall clock.
	Clock clock.Clock
	// TestClock makes the clock adjustable through advanceTestClock
	// (SHOAL_TEST_CLOCK=1); with Clock set to a *clock.Adjustable, that
	// clock is the one advanced.
	TestClock bool
	// Location is the zone of "today" for daily claim limits (default
	// Asia/Shanghai).
	Location *time.Location
	// SeparateMetrics takes /metrics off the API listener; the binary then
	// serves HTTP.MetricsHandler on SHOAL_METRICS_ADDR.
	SeparateMetrics bool
	// TrustedProxies are the load balancers whose X-Forwarded-For names the
	// client (SHOAL_TRUSTED_PROXIES); empty means the direct peer is the
	// client.
	TrustedProxies []*net.IPNet
	// Webhooks configures webhook deliveries (the SSRF guard above all).
	Webhooks webhooks.Config
	// Jobs configures the job queue (the periodic sweep's interval, the
	// poll interval). Its Logger defaults to Logger.
	Jobs jobs.Config
}

// App is a wired Shoal.
type App struct {
	Store   *store.Store
	Auth    *auth.Service
	Org     *org.Service
	Audit   *audit.Log
	Pools   *pool.Service
	Records *records.Service
	Tags    *tags.Service
	// Feed reads the event feed (listEvents).
	Feed *feed.Service
	// Handover runs leaver handovers (离职交接).
	Handover *handover.Service
	// Imports runs bulk imports (导入).
	Imports *imports.Service
	// Merge merges duplicate records (合并).
	Merge *merge.Service
	// PersonalData answers personal-data export and erasure requests.
	PersonalData *personaldata.Service
	// Idempotency keeps the answers of requests made with an
	// Idempotency-Key.
	Idempotency *idempotency.Service
	// Webhooks manages webhooks and sends their deliveries.
	Webhooks *webhooks.Service
	// Products is the product catalogue (产品目录).
	Products *products.Service
	// Opportunities runs sales pipelines and opportunities (商机).
	Opportunities *opportunities.Service
	// Approvals is the one approval mechanism (审批流): quotes and claim
	// requests.
	Approvals *approvals.Service
	// Quotes runs quotes (报价单) behind the cost gate.
	Quotes *quotes.Service
	// Documents keeps the printable document templates (打印模板) and
	// renders documents with them.
	Documents *documents.Service
	HTTP      *httpapi.Server
	// Jobs is the job queue, built but not started: the binary starts it
	// beside the HTTP server (and stops it on shutdown), tests when they
	// need jobs worked.
	Jobs *jobs.Jobs
}

// New builds every service over st (whose schema must be up to date).
func New(ctx context.Context, st *store.Store, cfg Config) (*App, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	keys, err := auth.NewKeyring(ctx, st, cfg.SigningKey)
	if err != nil {
		return nil, err
	}
	enforcer, err := authz.NewEnforcer()
	if err != nil {
		return nil, err
	}
	cursors, err := page.LoadCodec(ctx, st)
	if err != nil {
		return nil, err
	}
	clk := cfg.Clock
	if clk == nil && cfg.TestClock {
		clk = &clock.Adjustable{}
	}
	if clk == nil {
		clk = clock.Real{}
	}
	testClock, _ := clk.(*clock.Adjustable)
	if !cfg.TestClock {
		testClock = nil
	}
	loc := cfg.Location
	if loc == nil {
		if loc, err = time.LoadLocation("Asia/Shanghai"); err != nil {
			return nil, fmt.Errorf("time zone: %w", err)
		}
	}
	pools := pool.NewService(st, clk, loc)
	if err := pools.EnsureDefaults(ctx); err != nil {
		return nil, err
	}
	handovers := handover.NewService(st, pools, clk)
	jcfg := cfg.Jobs
	if jcfg.Logger == nil {
		jcfg.Logger = cfg.Logger
	}
	jcfg.Handover = handovers
	recs := records.NewService(st, pools)
	imps := imports.NewService(st, recs, pools, clk)
	jcfg.Imports = imps

	answers, err := idempotency.New(ctx, st, clk)
	if err != nil {
		return nil, err
	}
	jcfg.Idempotency = answers
	hooks, err := webhooks.NewService(ctx, st, clk, cfg.Webhooks)
	if err != nil {
		return nil, err
	}
	jcfg.Webhooks = hooks
	queue, err := jobs.New(ctx, st, pools, jcfg)
	if err != nil {
		return nil, err
	}
	pools.SetRejudgeQueue(queue)
	handovers.SetQueue(queue)
	imps.SetQueue(queue)
	hooks.SetQueue(queue)
	directory := org.NewService(st)
	directory.SetLeaver(handovers)
	a := &App{
		Store:   st,
		Auth:    auth.NewService(st, keys, cfg.Auth),
		Org:     directory,
		Audit:   audit.New(st),
		Pools:   pools,
		Records: recs,
		Tags:    tags.NewService(st, clk),
		Feed:    feed.NewService(st, pools),
		Jobs:    queue,

		Handover: handovers,
		Imports:  imps,
	}
	a.Merge = merge.NewService(st, pools, a.Records, clk)
	a.PersonalData = personaldata.NewService(st, clk)

	a.Idempotency = answers
	a.Webhooks = hooks
	a.Products = products.NewService(st, clk)
	a.Documents = documents.NewService(st, clk)
	imps.SetProducts(a.Products, enforcer)
	a.Opportunities = opportunities.NewService(st, pools, clk)
	a.Approvals = pools.Approvals()
	a.Quotes = quotes.NewService(st, a.Opportunities, a.Approvals, clk)
	if err := a.Opportunities.EnsureDefault(ctx); err != nil {
		_ = queue.Stop(ctx)
		return nil, err
	}
	a.HTTP, err = httpapi.New(httpapi.Config{
		Store:       st,
		Logger:      cfg.Logger,
		Version:     cfg.Version,
		CORSOrigins: cfg.CORSOrigins,
		Auth:        a.Auth,
		Org:         a.Org,
		Audit:       a.Audit,
		Enforcer:    enforcer,
		Cursors:     cursors,
		Records:     a.Records,
		PoolEngine:  a.Pools,
		Tags:        a.Tags,
		Feed:        a.Feed,
		Handover:    a.Handover,
		Imports:     a.Imports,
		Merge:       a.Merge,

		PersonalData:  a.PersonalData,
		Webhooks:      a.Webhooks,
		Products:      a.Products,
		Opportunities: a.Opportunities,
		Approvals:     a.Approvals,
		Quotes:        a.Quotes,
		Documents:     a.Documents,

		TestClock:   testClock,
		Idempotency: a.Idempotency,

		SeparateMetrics: cfg.SeparateMetrics,
		TrustedProxies:  cfg.TrustedProxies,
	})
	if err != nil {
		_ = queue.Stop(ctx) // closes its PostgreSQL pool
		return nil, fmt.Errorf("http server: %w", err)
	}
	return a, nil
}
