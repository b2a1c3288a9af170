package webhooks

import (
	"math/rand/v2"
	"time"
)

const (
	// RetryFor is how long a delivery keeps being retried after its first
	// attempt before it is marked failed; a day covers a receiver's outage
	// over a night or a weekend deploy.
	RetryFor = 24 * time.Hour
	// DisableAfter is how long a subscription may fail without a single
	// success before it is disabled, so dead endpoints stop costing work.
	DisableAfter = 72 * time.Hour
)

const (
	backoffBase = 10 * time.Second
	backoffCap  = 2 * time.Hour
)

// Backoff returns how long to wait after the attempt-th failed attempt
// (1-based) before the next one: 10s doubled per attempt (10s, 20s, 40s, …)
// up to 2h, times a jitter factor 0.8 + 0.4*jitter() in [0.8, 1.2) so that
// deliveries failed together by one outage do not all retry in the same
// instant. jitter returns a value in [0, 1); nil means math/rand/v2.Float64.
//
// Without jitter the delays reach the 2h cap at the 11th attempt (the first
// ten sum to about 2h50m), so about 21 attempts fall in the first 24 hours
// (RetryFor): a receiver is retried every 10s at first and then every two
// hours for the rest of the day.
func Backoff(attempt int, jitter func() float64) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	d := backoffCap
	// 10s<<10 already exceeds the cap; shifting further would overflow.
	if attempt <= 10 {
		d = min(backoffBase<<(attempt-1), backoffCap)
	}
	if jitter == nil {
		jitter = rand.Float64
	}
	j := jitter()
	if !(j >= 0) { // also catches NaN
		j = 0
	}
	if j > 1 {
		j = 1
	}
	return time.Duration(float64(d) * (0.8 + 0.4*j))
}
