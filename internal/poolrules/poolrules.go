// Package poolrules holds the pure decisions of the pool engine: when an owned
// record would be reclaimed and why, whether a rep may claim or freeze a
// record, and whom an auto-assignment picks. It touches no database, no HTTP
// and no wall clock: the service layer loads rows, passes the current time in
// explicitly and writes back whatever these functions decide, so that every
// decision can be replayed and previewed as of any instant.
package poolrules

import "time"

// Kind is the kind of record a pool holds.
type Kind string

// The record kinds.
const (
	KindLead     Kind = "lead"
	KindCustomer Kind = "customer"
)

// Status is a record's lifecycle status.
type Status string

// The record statuses; only leads can be converted.
const (
	StatusActive    Status = "active"
	StatusInvalid   Status = "invalid"
	StatusConverted Status = "converted"
)

// Rules is one version of a pool's rule set. A nil pointer means the rule is
// off. Day counts are validated (non-negative) when a rule set is saved, not
// here.
type Rules struct {
	IdleDays              *int
	NoDealDays            *int
	NotifyDaysBefore      *int
	FreezeMaxDays         *int
	ReclaimDealt          bool
	ClaimCooldownDays     *int
	DailyClaimLimit       *int
	ClaimRequiresApproval bool
	ByGrade               map[string]GradeRule // keyed by customer grade: "A", "B", "C"
}

// GradeRule overrides a pool's reclaim periods for customers of one grade. A
// nil field falls back to the pool's own value.
type GradeRule struct {
	IdleDays   *int
	NoDealDays *int
}

// Record is the ownership state of a lead or customer.
type Record struct {
	Kind           Kind
	OwnerID        string // "" when pooled
	Status         Status
	OwnedAt        *time.Time
	LastFollowUpAt *time.Time
	FrozenUntil    *time.Time
	ReleasedAt     *time.Time
	Dealt          bool   // customers only: the deal status
	Grade          string // customers only: "A", "B", "C" or ""
}

// Owned reports whether the record has an owner.
func (r Record) Owned() bool { return r.OwnerID != "" }

// FrozenAt reports whether the record is frozen at now. A freeze whose end has
// been reached counts as ended even before the sweep has cleared it, so that
// no decision depends on how recently the sweep ran.
func (r Record) FrozenAt(now time.Time) bool {
	return r.FrozenUntil != nil && r.FrozenUntil.After(now)
}

// days converts a rule's day count into a duration. Days are fixed 24-hour
// periods rather than calendar days, so deadlines do not depend on a time zone.
func days(n int) time.Duration {
	return time.Duration(n) * 24 * time.Hour
}

// RuleError is a refusal by a pool rule. Code is stable and meant for
// machines; Message is a short English sentence for people.
type RuleError struct {
	Code    string
	Message string
}

func (e *RuleError) Error() string { return e.Code + ": " + e.Message }

// The refusals. Callers compare with errors.Is; each is a single package-level
// value, so identity comparison is enough.
var (
	ErrAlreadyOwned       = &RuleError{"already_owned", "the record already has an owner"}
	ErrCapExceeded        = &RuleError{"cap_exceeded", "the user already owns as many records as allowed"}
	ErrDailyLimitReached  = &RuleError{"daily_limit_reached", "the daily claim limit for this pool has been reached"}
	ErrClaimCooldown      = &RuleError{"claim_cooldown", "the record was recently returned or reclaimed from this user and cannot be claimed back yet"}
	ErrRecordFrozen       = &RuleError{"record_frozen", "the record is frozen"}
	ErrRecordInvalid      = &RuleError{"record_invalid", "the record is not active"}
	ErrFrozenLimitReached = &RuleError{"frozen_limit_reached", "the user already holds as many frozen records as allowed"}
	ErrNotOwned           = &RuleError{"not_owned", "the record has no owner"}
	ErrNotFrozen          = &RuleError{"not_frozen", "the record is not frozen"}
	ErrFreezeTooLong      = &RuleError{"freeze_too_long", "the freeze would last longer than the pool allows"}
	ErrFreezeInPast       = &RuleError{"freeze_in_past", "the freeze must end in the future"}
	ErrNotInvalid         = &RuleError{"not_invalid", "the record is not invalid"}
)
