package auth

import (
	"time"

	"github.com/google/uuid"
	"golang.org/x/time/rate"
)

// Defaults of the per-user request budget: generous for an app (a screen
// that fires a dozen requests at once, a fast scroll through a list) while
// bounding a script run with a user's token, which otherwise had no limit
// at all where an API key has one.
const (
	DefaultUserRate  = 50
	DefaultUserBurst = 200
)

// userBudget is the bucket size and refill rate of each user.
func (s *Service) userBudget() (rate.Limit, int) {
	r, b := s.cfg.UserRate, s.cfg.UserBurst
	if r <= 0 {
		r = DefaultUserRate
	}
	if b <= 0 {
		b = DefaultUserBurst
	}
	return rate.Limit(r), b
}

// Budget is a caller's request bucket right after a request asked it for a
// token, for the RateLimit header fields as well as the decision.
type Budget struct {
	Allowed bool
	// Wait is how long until a token is back, when not Allowed.
	Wait time.Duration
	// Quota is the bucket size and Window the time an empty bucket takes
	// to fill again.
	Quota  int
	Window time.Duration
	// Remaining is the whole tokens left and Reset the time until the
	// bucket is full again.
	Remaining int
	Reset     time.Duration
}

// take asks lim for a token at now and describes the bucket afterwards.
func take(lim *rate.Limiter, now time.Time) Budget {
	b := Budget{Allowed: true, Quota: lim.Burst()}
	per := float64(lim.Limit())
	if per > 0 {
		b.Window = time.Duration(float64(b.Quota) / per * float64(time.Second))
	}
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		b.Allowed, b.Wait = false, d
	}
	tokens := max(lim.TokensAt(now), 0)
	b.Remaining = int(tokens)
	if per > 0 {
		b.Reset = time.Duration((float64(b.Quota) - tokens) / per * float64(time.Second))
	}
	return b
}

// AllowUser takes one token from the user's bucket, as AllowKey does for
// an API key. The bucket is per user, not per session, so logging in again
// does not refill it.
func (s *Service) AllowUser(id uuid.UUID) Budget {
	v, ok := s.userLimiters.Load(id)
	if !ok {
		v, _ = s.userLimiters.LoadOrStore(id, rate.NewLimiter(s.userBudget()))
	}
	return take(v.(*rate.Limiter), time.Now())
}
