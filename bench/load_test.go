package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// run is the outcome of a batch of timed operations.
type run struct {
	ok, failed int
	// firstErr is the first failure, to show what went wrong.
	firstErr error
	// elapsed is the wall time of the whole batch.
	elapsed time.Duration
	// lat holds the latency of every successful operation, sorted.
	lat []time.Duration
	// perWorker counts the successes of each worker.
	perWorker []int
	// load is the machine's 1-minute load average when the batch ended:
	// the benchmarks share the machine with whatever else runs, and a
	// figure taken under load should say so.
	load string
}

// rate is successful operations per second of wall time.
func (r run) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ok) / r.elapsed.Seconds()
}

// pct is the p-th percentile latency (0 < p ≤ 1), by nearest rank.
func (r run) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	i := int(float64(len(r.lat))*p+0.999999) - 1
	return r.lat[min(max(i, 0), len(r.lat)-1)]
}

// mean is the average latency.
func (r run) mean() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range r.lat {
		sum += d
	}
	return sum / time.Duration(len(r.lat))
}

// merge combines the runs of several benchmark iterations.
func (r run) merge(o run) run {
	if r.perWorker == nil {
		return o
	}
	r.ok += o.ok
	r.failed += o.failed
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.load = o.load
	r.lat = append(r.lat, o.lat...)
	slices.Sort(r.lat)
	for i := range min(len(r.perWorker), len(o.perWorker)) {
		r.perWorker[i] += o.perWorker[i]
	}
	return r
}

// hammer runs op for i = 0…n-1 from workers goroutines, each taking the next
// i from a shared counter, so every i is done exactly once however the
// workers are scheduled, and times each call.
func hammer(workers, n int, op func(worker, i int) error) run {
	var (
		next      atomic.Int64
		failed    atomic.Int64
		errOnce   sync.Once
		firstErr  error
		wg        sync.WaitGroup
		lats      = make([][]time.Duration, workers)
		perWorker = make([]int, workers)
	)
	start := time.Now()
	for w := range workers {
		lats[w] = make([]time.Duration, 0, n/workers+1)
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := op(w, i)
				d := time.Since(t0)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err })
					continue
				}
				lats[w] = append(lats[w], d)
				perWorker[w]++
			}
		})
	}
	wg.Wait()
	r := run{elapsed: time.Since(start), failed: int(failed.Load()), firstErr: firstErr, perWorker: perWorker, load: loadAvg()}
	for _, l := range lats {
		r.lat = append(r.lat, l...)
	}
	r.ok = len(r.lat)
	slices.Sort(r.lat)
	return r
}

// minSamples is the fewest timed calls sample makes whatever its budget.
const minSamples = 20

// sample times op up to n times in a row from one goroutine, for latency
// rather than throughput, after a few untimed warm-up calls. It stops early
// once budget has passed and it has minSamples: an operation that takes
// seconds (an unindexed list) would otherwise hold the run up for hours,
// and twenty samples of it say enough.
func sample(n int, budget time.Duration, op func() error) run {
	for range min(5, n) {
		_ = op()
	}
	r := run{perWorker: []int{0}}
	start := time.Now()
	for i := 0; i < n; i++ {
		if i >= minSamples && time.Since(start) > budget {
			break
		}
		t0 := time.Now()
		err := op()
		d := time.Since(t0)
		if err != nil {
			r.failed++
			if r.firstErr == nil {
				r.firstErr = err
			}
			continue
		}
		r.lat = append(r.lat, d)
	}
	r.elapsed = time.Since(start)
	r.ok = len(r.lat)
	r.perWorker[0] = r.ok
	r.load = loadAvg()
	slices.Sort(r.lat)
	return r
}

// loadAvg is the 1-minute load average, or "?" where /proc has none.
func loadAvg() string {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	first, _, _ := strings.Cut(string(raw), " ")
	return first
}

// ms is a duration in milliseconds, for metrics and reports.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// report sets the metrics of a benchmark from r: ns/op becomes the mean
// latency of one operation rather than of the whole fixed-size batch.
func report(b *testing.B, r run, rateUnit string) {
	if rateUnit != "" {
		b.ReportMetric(r.rate(), rateUnit)
	}
	b.ReportMetric(float64(r.mean().Nanoseconds()), "ns/op")
	b.ReportMetric(ms(r.pct(0.50)), "p50-ms")
	b.ReportMetric(ms(r.pct(0.99)), "p99-ms")
	b.ReportMetric(float64(len(r.lat)), "samples")
}

// mustSucceed fails the test or benchmark if any operation of r failed:
// figures over a partly failed batch would flatter it.
func mustSucceed(tb testing.TB, what string, r run) {
	tb.Helper()
	if r.failed > 0 {
		tb.Fatalf("%s: %d of %d failed, first: %v", what, r.failed, r.ok+r.failed, r.firstErr)
	}
}

// newHTTPClient keeps a warm connection per concurrent caller; the default
// client keeps only two per host and would reconnect (and exhaust ephemeral
// ports) under 16 concurrent callers.
func newHTTPClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

// call sends one request with a bearer token and returns the body if the
// status is want.
func call(c *http.Client, method, url, token string, want int) ([]byte, error) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		return nil, fmt.Errorf("%s %s: status %d: %s", method, url, res.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}
