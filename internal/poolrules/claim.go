package poolrules

import "time"

// ClaimContext is everything a claim decision needs besides the record.
type ClaimContext struct {
	Now          time.Time
	ClaimerID    string
	Owned        int        // active records of this kind the claimer owns now, counted per the cap rules by the caller
	Cap          *int       // the resolved cap; nil means unlimited
	ClaimedToday int        // claims by this claimer from this pool since the start of today
	LastLostAt   *time.Time // when this claimer last returned or lost this record to reclaim; nil if never
}

// CanClaim reports whether the claimer in c may claim r under rules, returning
// nil or one of the Err sentinels. Checks run from facts about the record to
// facts about the claimer, so a rep is never told to wait out a cooldown for
// a record nobody could claim anyway.
//
// Approval (rules.ClaimRequiresApproval) is not a refusal: a claim that passes
// here becomes a request instead of a change of owner, which the caller
// decides.
func CanClaim(r Record, rules Rules, c ClaimContext) error {
	switch {
	case r.Status != StatusActive:
		return ErrRecordInvalid
	case r.Owned():
		return ErrAlreadyOwned
	case r.FrozenAt(c.Now):
		return ErrRecordFrozen
	case !UnderCap(c.Owned, c.Cap):
		return ErrCapExceeded
	case rules.DailyClaimLimit != nil && c.ClaimedToday >= *rules.DailyClaimLimit:
		return ErrDailyLimitReached
	case rules.ClaimCooldownDays != nil && c.LastLostAt != nil &&
		c.Now.Before(c.LastLostAt.Add(days(*rules.ClaimCooldownDays))):
		return ErrClaimCooldown
	}
	return nil
}

// UnderCap reports whether a user owning owned records may take one more under
// cap; a nil cap is unlimited.
func UnderCap(owned int, cap *int) bool {
	return cap == nil || owned < *cap
}

// ResolveCap returns the cap that applies to a user: his own override, else his
// team's setting, else the global default; nil when none is set (unlimited).
// The returned pointer is one of the arguments, not a copy.
func ResolveCap(user, team, global *int) *int {
	for _, c := range []*int{user, team, global} {
		if c != nil {
			return c
		}
	}
	return nil
}

// StartOfDay returns midnight at the start of now's calendar day in loc. The
// daily claim limit counts per calendar day in the server's configured zone
// (Asia/Shanghai by default), not per UTC day. A nil loc means UTC, as it does
// for time.Time itself.
func StartOfDay(now time.Time, loc *time.Location) time.Time {
	if loc == nil {
		loc = time.UTC
	}
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}
