package poolrules

import "time"

// DefaultFreezeDays is how long a freeze lasts when the owner gives no end and
// the pool sets no freezeMaxDays. Without it, "freeze with no limit" would
// mean "forever", silently taking the record out of circulation.
const DefaultFreezeDays = 30

// FreezeUntil decides whether r may be frozen at now and returns when the
// freeze ends. requested is the end the caller asked for, or nil for the
// longest the pool allows (DefaultFreezeDays when it sets no limit).
// frozenCount is how many records the owner holds frozen, not counting r
// itself, so that extending a running freeze does not count it twice; maxFrozen
// is his resolved cap (nil = unlimited).
//
// Who may freeze (owner or supervisor) is the caller's concern. The record is
// checked for being active before being owned, as in CanClaim, because an
// invalid record is out of circulation whatever its owner.
func FreezeUntil(now time.Time, r Record, rules Rules, requested *time.Time, frozenCount int, maxFrozen *int) (time.Time, error) {
	switch {
	case r.Status != StatusActive:
		return time.Time{}, ErrRecordInvalid
	case !r.Owned():
		return time.Time{}, ErrNotOwned
	case !UnderCap(frozenCount, maxFrozen):
		return time.Time{}, ErrFrozenLimitReached
	}

	if requested == nil {
		if rules.FreezeMaxDays == nil {
			return now.Add(days(DefaultFreezeDays)), nil
		}
		return now.Add(days(*rules.FreezeMaxDays)), nil
	}
	if !requested.After(now) {
		return time.Time{}, ErrFreezeInPast
	}
	if rules.FreezeMaxDays != nil && requested.After(now.Add(days(*rules.FreezeMaxDays))) {
		return time.Time{}, ErrFreezeTooLong
	}
	return *requested, nil
}
