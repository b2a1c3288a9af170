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
	}
	return m
}

func (m *metrics) observe(c echo.Context, status int, elapsed time.Duration) {
	op := operationID(c)
	if op == "" {
		// Keep label cardinality bounded: unknown paths are one series.
		op = "none"
	}
	method := c.Request().Method
	m.requests.WithLabelValues(op, method, strconv.Itoa(status)).Inc()
	if elapsed > 0 {
		m.latency.WithLabelValues(op, method).Observe(elapsed.Seconds())
	}
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
