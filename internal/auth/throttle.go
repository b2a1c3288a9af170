package auth

import (
	"sync"
	"time"
)

// throttle counts failed attempts per key in a fixed window. It is in
// memory, so each replica limits on its own: an attacker spreading guesses
// over N replicas gets N times the budget, which is still a small number.
//
// An attempt is reserved before the password is checked and counts as a
// failure from then on, unless the caller settles it as a success: checking
// the budget first and counting the failure after the (slow) hash let 200
// concurrent guesses all pass the check. Reservations in flight are also
// capped per key, so that one account or address never has more than a
// couple of verifications running at once.
type throttle struct {
	limit       int
	maxInFlight int
	window      time.Duration

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int // including reservations in flight
	inFlight int
	start    time.Time
}

// inFlightRetry is the Retry-After of an attempt refused because others of
// the same key are being checked; they take well under a second.
const inFlightRetry = time.Second

func newThrottle(limit, maxInFlight int, window time.Duration) *throttle {
	return &throttle{limit: limit, maxInFlight: maxInFlight, window: window, entries: map[string]*throttleEntry{}}
}

// reserve takes one attempt of key's budget. When the budget is used up, or
// too many attempts of key are in flight, it refuses and says how long to
// wait.
func (t *throttle) reserve(key string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || (now.Sub(e.start) >= t.window && e.inFlight == 0) {
		if len(t.entries) > 100_000 {
			t.sweep(now)
		}
		e = &throttleEntry{start: now}
		t.entries[key] = e
	}
	if e.failures >= t.limit {
		wait := e.start.Add(t.window).Sub(now)
		if wait <= 0 {
			// The window is over but attempts of the old one are in
			// flight: they will be settled soon.
			wait = inFlightRetry
		}
		return false, wait
	}
	if e.inFlight >= t.maxInFlight {
		return false, inFlightRetry
	}
	e.failures++
	e.inFlight++
	return true, 0
}

// settle ends a reserved attempt. A failure keeps its place in the budget;
// a refund gives it back (the attempt was not a wrong guess, e.g. the
// server was busy); clear forgets all failures of key (a successful login
// of the account).
func (t *throttle) settle(key string, outcome settlement) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil {
		return
	}
	e.inFlight--
	switch outcome {
	case settleRefund:
		e.failures--
	case settleClear:
		e.failures = e.inFlight
	}
	if e.failures <= 0 && e.inFlight == 0 {
		delete(t.entries, key)
	}
}

type settlement int

const (
	settleFailure settlement = iota
	settleRefund
	settleClear
)

// sweep drops expired entries so the map cannot grow without bound.
func (t *throttle) sweep(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.start) >= t.window && e.inFlight == 0 {
			delete(t.entries, k)
		}
	}
}
