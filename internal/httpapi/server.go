// Package httpapi is Shoal's HTTP layer: it implements the strict server
// interface generated from openapi.yaml, translating between API types and
// the domain packages, and owns the middleware chain and the one table that
// maps domain errors to problem+json.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/convert"
	"github.com/shoalcrm/shoal/internal/feed"
	"github.com/shoalcrm/shoal/internal/handover"
	"github.com/shoalcrm/shoal/internal/imports"

	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/idempotency"
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

// Config is what the HTTP layer needs from the outside.
type Config struct {
	Store      *store.Store
	Auth       *auth.Service
	Org        *org.Service
	Audit      *audit.Log
	Enforcer   *authz.Enforcer
	Cursors    page.Codec
	Records    *records.Service
	PoolEngine *pool.Service
	Tags       *tags.Service
	Feed       *feed.Service
	Handover   *handover.Service
	Imports    *imports.Service
	Merge      *merge.Service

	// PersonalData answers personal-data requests (个人信息保护法).
	PersonalData *personaldata.Service
	// Webhooks manages webhooks and their deliveries.
	Webhooks *webhooks.Service
	// Products is the product catalogue.
	Products *products.Service
	// Opportunities runs pipelines and opportunities.
	Opportunities *opportunities.Service
	// Approvals runs approval requests and flows.
	Approvals *approvals.Service
	// Quotes runs quotes.
	Quotes *quotes.Service
	// Documents keeps the printable document templates.
	Documents *documents.Service

	// Idempotency stores the answers of requests made with an
	// Idempotency-Key; nil ignores the header.
	Idempotency *idempotency.Service
	// TestClock, when set, is what advanceTestClock moves; nil answers 404.
	TestClock   *clock.Adjustable
	Logger      *slog.Logger
	Version     string
	CORSOrigins []string
	// BodyLimit is the largest request body accepted, in echo's notation
	// ("1M"); empty means 1 MiB.
	BodyLimit string
	// SeparateMetrics keeps /metrics off the API's router: the caller
	// serves MetricsHandler on a listener of its own.
	SeparateMetrics bool
	// TrustedProxies are the peers whose X-Forwarded-For is believed. With
	// none, the client address is always the direct peer's.
	TrustedProxies []*net.IPNet
}

// Server implements api.StrictServerInterface.
type Server struct {
	store   *store.Store
	log     *slog.Logger
	version string
	spec    *openapi3.T
	// ops maps "METHOD /echo/path/:param" to the operationId.
	ops map[string]string
	// public holds the operations the spec marks security: [].
	public map[string]bool
	// offers holds the media types of the operations that answer in
	// several (the lists that export), JSON first.
	offers    map[string]representations
	validator echo.MiddlewareFunc

	auth      *auth.Service
	org       *org.Service
	audit     *audit.Log
	enforcer  *authz.Enforcer
	cursors   page.Codec
	records   *records.Service
	pools     *pool.Service
	convert   *convert.Service
	tags      *tags.Service
	feed      *feed.Service
	handover  *handover.Service
	imports   *imports.Service
	merge     *merge.Service
	testClock *clock.Adjustable
	idem      *idempotency.Service
	// idemHook, if set (tests), runs in keyed requests before their
	// answer is stored (see SetIdempotencyHook).
	idemHook func(ctx context.Context)
	// posts are the POST operations (Idempotency-Key).
	posts map[string]bool

	personalData  *personaldata.Service
	webhooks      *webhooks.Service
	products      *products.Service
	opportunities *opportunities.Service
	approvals     *approvals.Service
	quotes        *quotes.Service
	documents     *documents.Service

	metrics *metrics
	echo    *echo.Echo
}

var _ api.StrictServerInterface = (*Server)(nil)

// New builds the server and its router.
func New(cfg Config) (*Server, error) {
	spec, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	// Paths in the spec are absolute; a servers entry would make the
	// validator match on Host as well.
	spec.Servers = nil
	s := &Server{
		store:   cfg.Store,
		log:     cfg.Logger,
		version: cfg.Version,
		spec:    spec,
		ops:     operations(spec),
		public:  publicOperations(spec),
		offers:  successMediaTypes(spec),

		auth:     cfg.Auth,
		org:      cfg.Org,
		audit:    cfg.Audit,
		enforcer: cfg.Enforcer,
		cursors:  cfg.Cursors,

		records:   cfg.Records,
		tags:      cfg.Tags,
		feed:      cfg.Feed,
		handover:  cfg.Handover,
		imports:   cfg.Imports,
		merge:     cfg.Merge,
		pools:     cfg.PoolEngine,
		convert:   convert.New(cfg.Store, cfg.PoolEngine, cfg.Records),
		testClock: cfg.TestClock,

		personalData:  cfg.PersonalData,
		webhooks:      cfg.Webhooks,
		products:      cfg.Products,
		opportunities: cfg.Opportunities,
		approvals:     cfg.Approvals,
		quotes:        cfg.Quotes,
		documents:     cfg.Documents,

		idem:  cfg.Idempotency,
		posts: postOperations(spec),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.metrics = newMetrics(cfg.Store)
	if err := checkRedoc(); err != nil {
		return nil, err
	}
	s.echo = s.router(cfg)
	return s, nil
}

// Handler is the server's http.Handler.
func (s *Server) Handler() http.Handler { return s.echo }

func (s *Server) router(cfg Config) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler

	limit := cfg.BodyLimit
	if limit == "" {
		limit = "1M"
	}
	// The order matters and is part of the contract: see the README.
	e.Use(s.recoverPanics)
	e.Use(s.requestID)
	e.Use(s.accessLog)
	// createImport takes a file of up to 20 MB: its own, larger limit
	// (importBodyLimit) replaces the general one.
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: limit, Skipper: isImportUpload}))
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{Limit: importBodyLimit,
		Skipper: func(c echo.Context) bool { return !isImportUpload(c) }}))
	if len(cfg.CORSOrigins) > 0 {
		e.Use(middleware.CORSWithConfig(middleware.CORSConfig{
			AllowOrigins:  cfg.CORSOrigins,
			AllowHeaders:  []string{"Authorization", "Content-Type", "If-Match", "X-API-Key", "X-Request-ID", "Accept-Language", "Idempotency-Key"},
			ExposeHeaders: []string{"ETag", "X-Request-ID", "Retry-After", "Location", "Idempotent-Replayed"},
			MaxAge:        600,
		}))
	}
	e.IPExtractor = clientIPExtractor(cfg.TrustedProxies)
	s.validator = s.requestValidator()

	perOp := map[string][]echo.MiddlewareFunc{}
	for _, id := range s.ops {
		perOp[id] = s.operationChain(id)
	}
	strict := api.NewStrictHandler(s, []api.StrictMiddlewareFunc{s.requireAuthorized})
	api.RegisterHandlersWithOptions(e, strict, api.RegisterHandlersOptions{OperationMiddlewares: perOp})

	e.GET("/openapi.yaml", s.serveSpec)
	e.GET("/docs", s.serveDocs)
	e.GET(docsScriptPath, s.serveDocsScript)
	if !cfg.SeparateMetrics {
		e.GET("/metrics", echo.WrapHandler(s.metrics.handler()))
	}
	return e
}

// clientIPExtractor decides where the client address (login throttles,
// audit, logs) comes from. Behind trusted proxies it is the nearest
// untrusted address of X-Forwarded-For; echo's defaults trust loopback,
// link-local and private ranges, which would let anyone on those networks
// forge an address, so only the configured ranges are trusted. Without
// trusted proxies X-Forwarded-For is ignored: anyone can send it.
func clientIPExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

var (
	formatsOnce sync.Once
	looseEmail  = regexp.MustCompile(openapi3.FormatOfStringForEmail)
)

// LoadSpec parses openapi.yaml as committed. (The generator's own embedded
// copy has its operationIds rewritten to Go names; clients and policies use
// the spec's.)
func LoadSpec() (*openapi3.T, error) {
	// kin-openapi keeps string formats in a package-level table. Shoal
	// checks emails loosely (one @, no inner spaces; surrounding spaces are
	// trimmed later), as RFC 5322 is no guide to what users type.
	formatsOnce.Do(func() {
		openapi3.DefineStringFormatValidator("email", openapi3.NewCallbackValidator(func(v string) error {
			if !looseEmail.MatchString(strings.TrimSpace(v)) {
				return errors.New("not an email address")
			}
			return nil
		}))
	})
	spec, err := openapi3.NewLoader().LoadFromData(api.SpecYAML)
	if err != nil {
		return nil, fmt.Errorf("load spec: %w", err)
	}
	if err := spec.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("invalid spec: %w", err)
	}
	return spec, nil
}

// operations indexes the spec's operations by method and echo route path.
func operations(spec *openapi3.T) map[string]string {
	ops := map[string]string{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			ops[routeKey(method, echoPath(path))] = op.OperationID
		}
	}
	return ops
}

// publicOperations are those the spec marks `security: []`.
func publicOperations(spec *openapi3.T) map[string]bool {
	public := map[string]bool{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Security != nil && len(*op.Security) == 0 {
				public[op.OperationID] = true
			}
		}
	}
	return public
}

// postOperations are the operations of the spec's POSTs.
func postOperations(spec *openapi3.T) map[string]bool {
	posts := map[string]bool{}
	for _, item := range spec.Paths.Map() {
		if item.Post != nil {
			posts[item.Post.OperationID] = true
		}
	}
	return posts
}

// PublicOperations returns the operationIds that need no credentials.
func PublicOperations(spec *openapi3.T) map[string]bool { return publicOperations(spec) }

func routeKey(method, path string) string { return method + " " + path }

// echoPath turns /leads/{id} into echo's /leads/:id.
func echoPath(p string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(p, '{')
		if i < 0 {
			b.WriteString(p)
			return b.String()
		}
		j := strings.IndexByte(p[i:], '}')
		if j < 0 {
			b.WriteString(p)
			return b.String()
		}
		b.WriteString(p[:i])
		b.WriteString(":" + p[i+1:i+j])
		p = p[i+j+1:]
	}
}

// operationKey is where the matched operationId is kept on the echo context.
const operationKey = "shoal.operationId"

// tagOperation records the operationId on the echo context (metrics, logs)
// and on the request's context, where the cursor codec binds cursors to it.
func tagOperation(id string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			c.Set(operationKey, id)
			c.SetRequest(c.Request().WithContext(page.WithOperation(c.Request().Context(), id)))
			return next(c)
		}
	}
}

// operationID returns the operationId matched for the request, or "".
func operationID(c echo.Context) string {
	id, _ := c.Get(operationKey).(string)
	return id
}

// GetHealth answers while the process is up.
func (s *Server) GetHealth(context.Context, api.GetHealthRequestObject) (api.GetHealthResponseObject, error) {
	v := s.version
	return api.GetHealth200JSONResponse(api.Health{Status: api.Ok, Version: &v}), nil
}

// GetReadiness answers 200 when the database is reachable and would accept
// a write: a database that answers pings but is full or read-only cannot
// serve this API, and the load balancer should know.
func (s *Server) GetReadiness(ctx context.Context, _ api.GetReadinessRequestObject) (api.GetReadinessResponseObject, error) {
	err := s.store.Ping(ctx)
	if err == nil {
		err = s.store.ProbeWrite(ctx)
	}
	if err != nil {
		s.log.WarnContext(ctx, "readiness check failed", slog.Any("error", err))
		return nil, errDatabaseUnavailable(err)
	}
	v := s.version
	return api.GetReadiness200JSONResponse(api.Health{Status: api.Ok, Version: &v}), nil
}
