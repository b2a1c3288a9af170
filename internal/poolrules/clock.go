package poolrules

import "time"

// The reasons a record can be reclaimed for.
const (
	ReasonIdle   = "idle"
	ReasonNoDeal = "no_deal"
)

// Clock is a record's explainable reclaim deadline.
type Clock struct {
	ReclaimAt *time.Time // nil when no deadline applies
	Reason    string     // ReasonIdle, ReasonNoDeal or "" when ReclaimAt is nil
}

// ReclaimClock returns when, and why, the record would be reclaimed under
// rules. Only owned, active, unfrozen records have a deadline. now is used
// only to tell whether a freeze is still running: an ended freeze restarts the
// grace period from its end, even if the sweep has not yet recorded the
// release in ReleasedAt.
//
// Dealt customers have no deadline unless rules.ReclaimDealt is set, and then
// only the idle one, since a dealt customer cannot fail to deal. When both
// deadlines fall on the same instant the reason is ReasonNoDeal: a follow-up
// would not save the record, so "idle" would mislead the rep.
func ReclaimClock(now time.Time, r Record, rules Rules) Clock {
	if !r.Owned() || r.Status != StatusActive || r.FrozenAt(now) {
		return Clock{}
	}
	customer := r.Kind == KindCustomer
	if customer && r.Dealt && !rules.ReclaimDealt {
		return Clock{}
	}

	released := r.ReleasedAt
	if r.FrozenUntil != nil {
		released = latest(released, r.FrozenUntil)
	}
	idleDays, noDealDays := periods(r, rules)

	var idle, noDeal *time.Time
	if idleDays != nil {
		idle = after(latest(r.OwnedAt, r.LastFollowUpAt, released), *idleDays)
	}
	if noDealDays != nil && customer && !r.Dealt {
		noDeal = after(latest(r.OwnedAt, released), *noDealDays)
	}

	switch {
	case noDeal != nil && (idle == nil || !idle.Before(*noDeal)):
		return Clock{ReclaimAt: noDeal, Reason: ReasonNoDeal}
	case idle != nil:
		return Clock{ReclaimAt: idle, Reason: ReasonIdle}
	default:
		return Clock{}
	}
}

// periods resolves the idle and no-deal periods for r, applying the pool's
// per-grade overrides. Grades are a customer notion, so leads always get the
// pool values.
func periods(r Record, rules Rules) (idleDays, noDealDays *int) {
	idleDays, noDealDays = rules.IdleDays, rules.NoDealDays
	if r.Kind != KindCustomer || r.Grade == "" {
		return idleDays, noDealDays
	}
	if g, ok := rules.ByGrade[r.Grade]; ok {
		if g.IdleDays != nil {
			idleDays = g.IdleDays
		}
		if g.NoDealDays != nil {
			noDealDays = g.NoDealDays
		}
	}
	return idleDays, noDealDays
}

// latest returns the latest of the non-nil times, or nil when all are nil.
func latest(ts ...*time.Time) *time.Time {
	var out *time.Time
	for _, t := range ts {
		if t != nil && (out == nil || t.After(*out)) {
			out = t
		}
	}
	return out
}

// after returns from + n days as a fresh pointer, or nil when from is nil: a
// record with no start time (no OwnedAt and nothing else) has nothing to count
// from, and reclaiming it at an invented time would be worse than not at all.
func after(from *time.Time, n int) *time.Time {
	if from == nil {
		return nil
	}
	t := from.Add(days(n))
	return &t
}

// WarnAt returns when the owner should be warned of the deadline in c, or nil
// when there is no deadline or the pool does not warn.
func WarnAt(c Clock, rules Rules) *time.Time {
	if c.ReclaimAt == nil || rules.NotifyDaysBefore == nil {
		return nil
	}
	t := c.ReclaimAt.Add(-days(*rules.NotifyDaysBefore))
	return &t
}

// Due reports whether the deadline in c has been reached at now. A deadline is
// due at its exact instant, matching the sweep's "reclaimAt ≤ now".
func Due(now time.Time, c Clock) bool {
	return c.ReclaimAt != nil && !now.Before(*c.ReclaimAt)
}
