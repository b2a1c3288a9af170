package poolrules

import (
	"testing"
	"time"
)

func TestReclaimClock(t *testing.T) {
	idle10 := Rules{IdleDays: ip(10)}
	both := Rules{IdleDays: ip(10), NoDealDays: ip(30)}
	graded := Rules{
		IdleDays:   ip(10),
		NoDealDays: ip(30),
		ByGrade: map[string]GradeRule{
			"A": {IdleDays: ip(40)},
			"B": {},
			"C": {NoDealDays: ip(5)},
		},
	}
	owned := func(kind Kind) Record {
		return Record{Kind: kind, OwnerID: "u1", Status: StatusActive, OwnedAt: tp(t0)}
	}
	with := func(r Record, f func(*Record)) Record { f(&r); return r }

	tests := []struct {
		name   string
		now    time.Time
		rec    Record
		rules  Rules
		want   *time.Time
		reason string
	}{
		{"pooled record has no deadline", day(1), with(owned(KindLead), func(r *Record) { r.OwnerID = "" }), idle10, nil, ""},
		{"invalid record has no deadline", day(1), with(owned(KindLead), func(r *Record) { r.Status = StatusInvalid }), idle10, nil, ""},
		{"converted lead has no deadline", day(1), with(owned(KindLead), func(r *Record) { r.Status = StatusConverted }), idle10, nil, ""},
		{"record without any start time has no deadline", day(1), with(owned(KindLead), func(r *Record) { r.OwnedAt = nil }), idle10, nil, ""},
		{"rules off", day(1), owned(KindCustomer), Rules{}, nil, ""},
		{"lead idle from ownedAt", day(1), owned(KindLead), idle10, tp(day(10)), ReasonIdle},
		{"lead idle from last follow-up", day(1), with(owned(KindLead), func(r *Record) { r.LastFollowUpAt = tp(day(4)) }), idle10, tp(day(14)), ReasonIdle},
		{"follow-up older than ownership is ignored", day(1), with(owned(KindLead), func(r *Record) { r.LastFollowUpAt = tp(day(-5)) }), idle10, tp(day(10)), ReasonIdle},
		{"lead has no no-deal deadline", day(1), owned(KindLead), Rules{NoDealDays: ip(3)}, nil, ""},
		{"lead marked dealt is still reclaimed", day(1), with(owned(KindLead), func(r *Record) { r.Dealt = true }), idle10, tp(day(10)), ReasonIdle},
		{"customer only no-deal rule", day(1), owned(KindCustomer), Rules{NoDealDays: ip(30)}, tp(day(30)), ReasonNoDeal},
		{"customer idle earlier than no-deal", day(1), owned(KindCustomer), both, tp(day(10)), ReasonIdle},
		{
			"customer no-deal earlier than idle", day(1),
			with(owned(KindCustomer), func(r *Record) { r.LastFollowUpAt = tp(day(25)) }),
			both, tp(day(30)), ReasonNoDeal,
		},
		{
			"follow-up does not move the no-deal deadline", day(1),
			with(owned(KindCustomer), func(r *Record) { r.LastFollowUpAt = tp(day(29)) }),
			Rules{NoDealDays: ip(30)}, tp(day(30)), ReasonNoDeal,
		},
		{"tie prefers no_deal", day(1), owned(KindCustomer), Rules{IdleDays: ip(30), NoDealDays: ip(30)}, tp(day(30)), ReasonNoDeal},
		{
			"tie prefers no_deal after follow-up", day(1),
			with(owned(KindCustomer), func(r *Record) { r.LastFollowUpAt = tp(day(20)) }),
			both, tp(day(30)), ReasonNoDeal,
		},
		{"dealt customer without reclaimDealt has no deadline", day(1), with(owned(KindCustomer), func(r *Record) { r.Dealt = true }), both, nil, ""},
		{"dealt customer with reclaimDealt gets idle only", day(1), with(owned(KindCustomer), func(r *Record) { r.Dealt = true }), Rules{IdleDays: ip(50), NoDealDays: ip(30), ReclaimDealt: true}, tp(day(50)), ReasonIdle},
		{"dealt customer with reclaimDealt and no idle rule", day(1), with(owned(KindCustomer), func(r *Record) { r.Dealt = true }), Rules{NoDealDays: ip(30), ReclaimDealt: true}, nil, ""},
		{"frozen record has no deadline", day(1), with(owned(KindCustomer), func(r *Record) { r.FrozenUntil = tp(day(2)) }), both, nil, ""},
		{
			"expired freeze restarts grace from freeze end", day(20),
			with(owned(KindCustomer), func(r *Record) { r.FrozenUntil = tp(day(15)) }),
			both, tp(day(25)), ReasonIdle,
		},
		{
			"freeze ending exactly now counts as ended", day(15),
			with(owned(KindLead), func(r *Record) { r.FrozenUntil = tp(day(15)) }),
			idle10, tp(day(25)), ReasonIdle,
		},
		{
			"expired freeze also restarts no-deal", day(20),
			with(owned(KindCustomer), func(r *Record) { r.FrozenUntil = tp(day(15)) }),
			Rules{NoDealDays: ip(30)}, tp(day(45)), ReasonNoDeal,
		},
		{
			"releasedAt later than expired freeze wins", day(20),
			with(owned(KindLead), func(r *Record) { r.FrozenUntil = tp(day(15)); r.ReleasedAt = tp(day(16)) }),
			idle10, tp(day(26)), ReasonIdle,
		},
		{
			"expired freeze later than stale releasedAt wins", day(20),
			with(owned(KindLead), func(r *Record) { r.FrozenUntil = tp(day(15)); r.ReleasedAt = tp(day(3)) }),
			idle10, tp(day(25)), ReasonIdle,
		},
		{
			"released record counts from release", day(12),
			with(owned(KindCustomer), func(r *Record) { r.ReleasedAt = tp(day(8)); r.LastFollowUpAt = tp(day(6)) }),
			both, tp(day(18)), ReasonIdle,
		},
		{
			"follow-up after release counts from follow-up", day(12),
			with(owned(KindLead), func(r *Record) { r.ReleasedAt = tp(day(8)); r.LastFollowUpAt = tp(day(9)) }),
			idle10, tp(day(19)), ReasonIdle,
		},
		{
			"release older than ownership is ignored", day(1),
			with(owned(KindLead), func(r *Record) { r.ReleasedAt = tp(day(-20)) }),
			idle10, tp(day(10)), ReasonIdle,
		},
		{"grade A longer idle leaves no-deal first", day(1), with(owned(KindCustomer), func(r *Record) { r.Grade = "A" }), graded, tp(day(30)), ReasonNoDeal},
		{"grade A overrides idle", day(1), with(owned(KindCustomer), func(r *Record) { r.Grade = "A" }), Rules{IdleDays: ip(10), NoDealDays: ip(90), ByGrade: graded.ByGrade}, tp(day(40)), ReasonIdle},
		{"grade C overrides no-deal", day(1), with(owned(KindCustomer), func(r *Record) { r.Grade = "C" }), graded, tp(day(5)), ReasonNoDeal},
		{"grade B with empty override falls back", day(1), with(owned(KindCustomer), func(r *Record) { r.Grade = "B" }), graded, tp(day(10)), ReasonIdle},
		{"grade without entry falls back", day(1), with(owned(KindCustomer), func(r *Record) { r.Grade = "D" }), graded, tp(day(10)), ReasonIdle},
		{"no grade falls back", day(1), owned(KindCustomer), graded, tp(day(10)), ReasonIdle},
		{"grade override turns on a rule the pool leaves off", day(1), with(owned(KindCustomer), func(r *Record) { r.Grade = "C" }), Rules{ByGrade: graded.ByGrade}, tp(day(5)), ReasonNoDeal},
		{"grade is ignored on leads", day(1), with(owned(KindLead), func(r *Record) { r.Grade = "A" }), graded, tp(day(10)), ReasonIdle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReclaimClock(tt.now, tt.rec, tt.rules)
			if !sameTime(got.ReclaimAt, tt.want) || got.Reason != tt.reason {
				t.Errorf("ReclaimClock() = %s %q, want %s %q", fmtTime(got.ReclaimAt), got.Reason, fmtTime(tt.want), tt.reason)
			}
		})
	}
}

func TestReclaimClockRuleChange(t *testing.T) {
	rec := Record{Kind: KindCustomer, OwnerID: "u1", Status: StatusActive, OwnedAt: tp(t0), LastFollowUpAt: tp(day(2))}
	tests := []struct {
		name   string
		rules  Rules
		want   *time.Time
		reason string
	}{
		{"version 1", Rules{IdleDays: ip(10)}, tp(day(12)), ReasonIdle},
		{"version 2 shortens idle", Rules{IdleDays: ip(5)}, tp(day(7)), ReasonIdle},
		{"version 3 adds no-deal", Rules{IdleDays: ip(10), NoDealDays: ip(6)}, tp(day(6)), ReasonNoDeal},
		{"version 4 turns everything off", Rules{}, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ReclaimClock(day(1), rec, tt.rules)
			if !sameTime(got.ReclaimAt, tt.want) || got.Reason != tt.reason {
				t.Errorf("ReclaimClock() = %s %q, want %s %q", fmtTime(got.ReclaimAt), got.Reason, fmtTime(tt.want), tt.reason)
			}
		})
	}
}

func TestReclaimClockDoesNotAliasInputs(t *testing.T) {
	owned := t0
	rec := Record{Kind: KindLead, OwnerID: "u1", Status: StatusActive, OwnedAt: &owned}
	c := ReclaimClock(day(1), rec, Rules{IdleDays: ip(0)})
	if c.ReclaimAt == nil || c.ReclaimAt == &owned {
		t.Fatalf("ReclaimAt = %p, want a fresh pointer distinct from OwnedAt %p", c.ReclaimAt, &owned)
	}
}

func TestWarnAt(t *testing.T) {
	deadline := Clock{ReclaimAt: tp(day(10)), Reason: ReasonIdle}
	tests := []struct {
		name  string
		clock Clock
		rules Rules
		want  *time.Time
	}{
		{"no deadline", Clock{}, Rules{NotifyDaysBefore: ip(3)}, nil},
		{"warning off", deadline, Rules{}, nil},
		{"three days before", deadline, Rules{NotifyDaysBefore: ip(3)}, tp(day(7))},
		{"zero days warns at the deadline", deadline, Rules{NotifyDaysBefore: ip(0)}, tp(day(10))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WarnAt(tt.clock, tt.rules); !sameTime(got, tt.want) {
				t.Errorf("WarnAt() = %s, want %s", fmtTime(got), fmtTime(tt.want))
			}
		})
	}
}

func TestDue(t *testing.T) {
	deadline := Clock{ReclaimAt: tp(day(10)), Reason: ReasonIdle}
	tests := []struct {
		name  string
		now   time.Time
		clock Clock
		want  bool
	}{
		{"no deadline", day(100), Clock{}, false},
		{"before", day(10).Add(-time.Nanosecond), deadline, false},
		{"exactly at", day(10), deadline, true},
		{"after", day(11), deadline, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Due(tt.now, tt.clock); got != tt.want {
				t.Errorf("Due() = %v, want %v", got, tt.want)
			}
		})
	}
}
