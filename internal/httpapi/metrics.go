package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shoalcrm/shoal/internal/store"
)

// metrics is the server's own Prometheus registry, so that several servers
// in one process (tests, replicas) do not collide.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// rateLimited counts requests refused by a per-user or per-API-key
	// request budget (security.go, authenticate).
	rateLimited *prometheus.CounterVec
}

func newMetrics(st *store.Store) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_http_requests_total",
			Help: "HTTP requests by operationId, method and status.",
		}, []string{"operation", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "shoal_http_request_duration_seconds",
			Help:    "HTTP request latency by operationId and method.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation", "method"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoal_rate_limited_total",
			Help: "Requests refused by a request budget, by principal type (user, apiKey).",
		}, []string{"principal"}),
	}
	m.reg.MustRegister(m.requests, m.latency, m.rateLimited,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if st != nil {
		for name, db := range st.DBs() {
			m.reg.MustRegister(collectors.NewDBStatsCollector(db, name))
		}
		m.reg.MustRegister(st.Collectors()...)
	}
	return m
}

// Every label value comes from a closed set: operationIds of the spec
// ("none" for anything else), the methods below ("other" for the rest) and
// the status codes the server itself writes. A label taken from the request
// as sent (a path, a method) would let any client grow /metrics without
// bound.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

func methodLabel(method string) string {
	if knownMethods[method] {
		return method
	}
	return "other"
}

func (m *metrics) observe(c echo.Context, status int, elapsed time.Duration) {
	op := operationID(c)
	if op == "" {
		op = "none"
	}
	method := methodLabel(c.Request().Method)
	m.requests.WithLabelValues(op, method, strconv.Itoa(status)).Inc()
	if elapsed > 0 {
		m.latency.WithLabelValues(op, method).Observe(elapsed.Seconds())
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// MetricsHandler serves the Prometheus metrics, for a listener of its own
// (Config.SeparateMetrics).
func (s *Server) MetricsHandler() http.Handler {
	h := s.metrics.handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerContentTypeOptions, "nosniff")
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}
