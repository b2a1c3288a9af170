package auth

import (
	"sync"
	"time"
)

// throttle counts failed attempts per key in a fixed window. It is in
// memory, so each replica limits on its own: an attacker spreading guesses
// over N replicas gets N times the budget, which is still a small number.
type throttle struct {
	limit  int
	window time.Duration

	mu      sync.Mutex
	entries map[string]*throttleEntry
}

type throttleEntry struct {
	failures int
	start    time.Time
}

func newThrottle(limit int, window time.Duration) *throttle {
	return &throttle{limit: limit, window: window, entries: map[string]*throttleEntry{}}
}

// blocked reports whether key has used up its failures, and for how long.
func (t *throttle) blocked(key string, now time.Time) (bool, time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || now.Sub(e.start) >= t.window {
		return false, 0
	}
	if e.failures >= t.limit {
		return true, e.start.Add(t.window).Sub(now)
	}
	return false, 0
}

func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.entries[key]
	if e == nil || now.Sub(e.start) >= t.window {
		if len(t.entries) > 100_000 {
			t.sweep(now)
		}
		e = &throttleEntry{start: now}
		t.entries[key] = e
	}
	e.failures++
}

func (t *throttle) reset(key string) {
	t.mu.Lock()
	delete(t.entries, key)
	t.mu.Unlock()
}

// sweep drops expired entries so the map cannot grow without bound.
func (t *throttle) sweep(now time.Time) {
	for k, e := range t.entries {
		if now.Sub(e.start) >= t.window {
			delete(t.entries, k)
		}
	}
}
