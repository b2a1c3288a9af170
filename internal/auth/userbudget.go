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

// AllowUser takes one token from the user's bucket, as AllowKey does for
// an API key. When the bucket is empty it reports how long to wait. The
// bucket is per user, not per session, so logging in again does not
// refill it.
func (s *Service) AllowUser(id uuid.UUID) (bool, time.Duration) {
	v, ok := s.userLimiters.Load(id)
	if !ok {
		v, _ = s.userLimiters.LoadOrStore(id, rate.NewLimiter(s.userBudget()))
	}
	r := v.(*rate.Limiter).Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}
