package auth

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// Gate bounds how many password hashings and verifications run at once.
// Each argon2id run takes 19 MiB and a core for tens of milliseconds, and
// login is unauthenticated: without a bound, a few hundred concurrent
// logins took the process to gigabytes. Beyond the slots, a short queue
// waits a little; beyond the queue (or the wait) the answer is 503
// server_busy with Retry-After, which costs nothing.
type Gate struct {
	slots   chan struct{}
	queue   int64
	wait    time.Duration
	waiting atomic.Int64
}

// NewGate returns a gate with slots concurrent runs, up to queue callers
// waiting at most wait for a slot.
func NewGate(slots, queue int, wait time.Duration) *Gate {
	if slots < 1 {
		slots = 1
	}
	return &Gate{slots: make(chan struct{}, slots), queue: int64(queue), wait: wait}
}

// SharedGate is the process-wide gate: the authentication service and the
// directory (which hashes new passwords) use it unless told otherwise.
// Two runs per core keep the cores busy while bounding memory to a few
// dozen MiB per core.
var SharedGate = NewGate(2*runtime.GOMAXPROCS(0), 8*runtime.GOMAXPROCS(0), 2*time.Second)

// errServerBusy is the answer when the gate is full.
var errServerBusy = &apperr.Error{Kind: apperr.Unavailable, Code: "server_busy",
	Message: "too many password checks in progress; retry shortly", RetryAfter: time.Second}

// Acquire takes a slot, waiting in the queue if there is room there. The
// caller must call release exactly once. It returns apperr Unavailable
// server_busy when the gate is full.
func (g *Gate) Acquire(ctx context.Context) (release func(), err error) {
	release = func() { <-g.slots }
	select {
	case g.slots <- struct{}{}:
		return release, nil
	default:
	}
	if g.waiting.Add(1) > g.queue {
		g.waiting.Add(-1)
		return nil, errServerBusy
	}
	defer g.waiting.Add(-1)
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.slots <- struct{}{}:
		return release, nil
	case <-timer.C:
		return nil, errServerBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Hash is HashPassword behind the gate.
func (g *Gate) Hash(ctx context.Context, password string) (string, error) {
	release, err := g.Acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(password)
}

// Verify is VerifyPassword behind the gate.
func (g *Gate) Verify(ctx context.Context, password, phc string) (bool, error) {
	release, err := g.Acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return VerifyPassword(password, phc)
}
