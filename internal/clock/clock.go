// Package clock is the one source of "now" for every time-based rule
// (reclaim clocks, freezes, cooldowns, daily limits). Production reads the
// wall clock; a server started with SHOAL_TEST_CLOCK=1 uses an adjustable
// clock so integrators can watch rules fire. Token expiry never uses it.
package clock

import (
	"sync"
	"time"
)

// Clock tells the time.
type Clock interface {
	Now() time.Time
}

// Real is the wall clock, in UTC.
type Real struct{}

// Now returns the current time in UTC.
func (Real) Now() time.Time { return time.Now().UTC() }

// Adjustable is the wall clock plus an offset that only moves forward.
type Adjustable struct {
	mu     sync.RWMutex
	offset time.Duration
}

// Now returns the wall clock plus the offset, in UTC.
func (a *Adjustable) Now() time.Time {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return time.Now().UTC().Add(a.offset)
}

// Advance moves the clock forward by d (negative d is ignored: time never
// goes back, or rules would undo themselves).
func (a *Adjustable) Advance(d time.Duration) time.Time {
	a.mu.Lock()
	if d > 0 {
		a.offset += d
	}
	a.mu.Unlock()
	return a.Now()
}
