package poolrules

import (
	"errors"
	"testing"
	"time"

	_ "time/tzdata" // so the Asia/Shanghai tests do not depend on the host's zoneinfo
)

func TestRuleError(t *testing.T) {
	all := []*RuleError{
		ErrAlreadyOwned, ErrCapExceeded, ErrDailyLimitReached, ErrClaimCooldown,
		ErrRecordFrozen, ErrRecordInvalid, ErrFrozenLimitReached, ErrNotOwned,
		ErrNotFrozen, ErrFreezeTooLong, ErrFreezeInPast, ErrNotInvalid,
	}
	seen := map[string]bool{}
	for _, e := range all {
		if e.Code == "" || e.Message == "" || seen[e.Code] {
			t.Errorf("bad or duplicate sentinel %+v", e)
		}
		seen[e.Code] = true
	}
	if got, want := ErrCapExceeded.Error(), "cap_exceeded: the user already owns as many records as allowed"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	wrapped := errors.Join(errors.New("claim lead 42"), ErrCapExceeded)
	var re *RuleError
	if !errors.Is(wrapped, ErrCapExceeded) || !errors.As(wrapped, &re) || re.Code != "cap_exceeded" {
		t.Errorf("wrapped sentinel not found: %v", wrapped)
	}
}

func TestCanClaim(t *testing.T) {
	now := day(0)
	pooled := Record{Kind: KindLead, Status: StatusActive}
	with := func(r Record, f func(*Record)) Record { f(&r); return r }
	limits := Rules{DailyClaimLimit: ip(5), ClaimCooldownDays: ip(7)}
	ok := ClaimContext{Now: now, ClaimerID: "u1", Owned: 3, Cap: ip(10), ClaimedToday: 4, LastLostAt: tp(day(-7))}
	ctx := func(f func(*ClaimContext)) ClaimContext { c := ok; f(&c); return c }

	// everythingWrong fails every check, so each precedence case fixes one
	// more thing and expects the next error.
	everythingWrong := with(pooled, func(r *Record) {
		r.Status = StatusInvalid
		r.OwnerID = "u2"
		r.FrozenUntil = tp(day(1))
	})
	badCtx := ctx(func(c *ClaimContext) { c.Owned = 10; c.ClaimedToday = 5; c.LastLostAt = tp(day(-1)) })

	tests := []struct {
		name  string
		rec   Record
		rules Rules
		ctx   ClaimContext
		want  error
	}{
		{"allowed", pooled, limits, ok, nil},
		{"allowed with every rule off", pooled, Rules{}, ctx(func(c *ClaimContext) { c.Cap = nil; c.LastLostAt = tp(now) }), nil},
		{"approval does not refuse", pooled, Rules{ClaimRequiresApproval: true}, ok, nil},
		{"invalid", with(pooled, func(r *Record) { r.Status = StatusInvalid }), limits, ok, ErrRecordInvalid},
		{"converted", with(pooled, func(r *Record) { r.Status = StatusConverted }), limits, ok, ErrRecordInvalid},
		{"owned by someone else", with(pooled, func(r *Record) { r.OwnerID = "u2" }), limits, ok, ErrAlreadyOwned},
		{"owned by the claimer", with(pooled, func(r *Record) { r.OwnerID = "u1" }), limits, ok, ErrAlreadyOwned},
		{"frozen", with(pooled, func(r *Record) { r.FrozenUntil = tp(now.Add(time.Nanosecond)) }), limits, ok, ErrRecordFrozen},
		{"freeze ended exactly now", with(pooled, func(r *Record) { r.FrozenUntil = tp(now) }), limits, ok, nil},
		{"at cap", pooled, limits, ctx(func(c *ClaimContext) { c.Owned = 10 }), ErrCapExceeded},
		{"over cap", pooled, limits, ctx(func(c *ClaimContext) { c.Owned = 11 }), ErrCapExceeded},
		{"one under cap", pooled, limits, ctx(func(c *ClaimContext) { c.Owned = 9 }), nil},
		{"zero cap", pooled, limits, ctx(func(c *ClaimContext) { c.Owned = 0; c.Cap = ip(0) }), ErrCapExceeded},
		{"nil cap is unlimited", pooled, limits, ctx(func(c *ClaimContext) { c.Owned = 1 << 20; c.Cap = nil }), nil},
		{"daily limit reached", pooled, limits, ctx(func(c *ClaimContext) { c.ClaimedToday = 5 }), ErrDailyLimitReached},
		{"daily limit exceeded", pooled, limits, ctx(func(c *ClaimContext) { c.ClaimedToday = 6 }), ErrDailyLimitReached},
		{"last claim under daily limit", pooled, limits, ctx(func(c *ClaimContext) { c.ClaimedToday = 4 }), nil},
		{"daily limit off", pooled, Rules{}, ctx(func(c *ClaimContext) { c.ClaimedToday = 1000 }), nil},
		{"cooldown just started", pooled, limits, ctx(func(c *ClaimContext) { c.LastLostAt = tp(now) }), ErrClaimCooldown},
		{"cooldown one nanosecond before end", pooled, limits, ctx(func(c *ClaimContext) { c.LastLostAt = tp(day(-7).Add(time.Nanosecond)) }), ErrClaimCooldown},
		{"cooldown exactly at end", pooled, limits, ctx(func(c *ClaimContext) { c.LastLostAt = tp(day(-7)) }), nil},
		{"cooldown long over", pooled, limits, ctx(func(c *ClaimContext) { c.LastLostAt = tp(day(-100)) }), nil},
		{"never lost it", pooled, limits, ctx(func(c *ClaimContext) { c.LastLostAt = nil }), nil},
		{"cooldown off", pooled, Rules{DailyClaimLimit: ip(5)}, ctx(func(c *ClaimContext) { c.LastLostAt = tp(now) }), nil},
		{"precedence: invalid first", everythingWrong, limits, badCtx, ErrRecordInvalid},
		{"precedence: then already owned", with(everythingWrong, func(r *Record) { r.Status = StatusActive }), limits, badCtx, ErrAlreadyOwned},
		{"precedence: then frozen", with(everythingWrong, func(r *Record) { r.Status = StatusActive; r.OwnerID = "" }), limits, badCtx, ErrRecordFrozen},
		{"precedence: then cap", pooled, limits, badCtx, ErrCapExceeded},
		{"precedence: then daily limit", pooled, limits, ctx(func(c *ClaimContext) { c.ClaimedToday = 5; c.LastLostAt = tp(now) }), ErrDailyLimitReached},
		{"precedence: then cooldown", pooled, limits, ctx(func(c *ClaimContext) { c.LastLostAt = tp(now) }), ErrClaimCooldown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := CanClaim(tt.rec, tt.rules, tt.ctx)
			if tt.want == nil && got != nil || tt.want != nil && !errors.Is(got, tt.want) {
				t.Errorf("CanClaim() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUnderCap(t *testing.T) {
	tests := []struct {
		name  string
		owned int
		cap   *int
		want  bool
	}{
		{"nil cap", 1000, nil, true},
		{"below", 4, ip(5), true},
		{"at", 5, ip(5), false},
		{"above", 6, ip(5), false},
		{"zero cap", 0, ip(0), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := UnderCap(tt.owned, tt.cap); got != tt.want {
				t.Errorf("UnderCap(%d, %v) = %v, want %v", tt.owned, tt.cap, got, tt.want)
			}
		})
	}
}

func TestResolveCap(t *testing.T) {
	user, zero, team, global := ip(1), ip(0), ip(2), ip(3)
	tests := []struct {
		name               string
		user, team, global *int
		want               *int
	}{
		{"user override wins", user, team, global, user},
		{"user override of zero still wins", zero, team, global, zero},
		{"team next", nil, team, global, team},
		{"global last", nil, nil, global, global},
		{"none is unlimited", nil, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ResolveCap(tt.user, tt.team, tt.global); got != tt.want {
				t.Errorf("ResolveCap() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestStartOfDay(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		now  time.Time
		loc  *time.Location
		want time.Time
	}{
		{"Shanghai just after its midnight, still previous UTC day", utc("2025-03-01T16:30:00Z"), shanghai, utc("2025-03-01T16:00:00Z")},
		{"Shanghai just before its midnight", utc("2025-03-01T15:59:59.999999999Z"), shanghai, utc("2025-02-28T16:00:00Z")},
		{"Shanghai exactly at its midnight", utc("2025-03-01T16:00:00Z"), shanghai, utc("2025-03-01T16:00:00Z")},
		{"Shanghai across UTC midnight stays on the same local day", utc("2025-03-02T00:30:00Z"), shanghai, utc("2025-03-01T16:00:00Z")},
		{"now given in another zone", utc("2025-03-01T16:30:00Z").In(time.FixedZone("PST", -8*3600)), shanghai, utc("2025-03-01T16:00:00Z")},
		{"UTC", utc("2025-03-02T00:30:00Z"), time.UTC, utc("2025-03-02T00:00:00Z")},
		{"nil location means UTC", utc("2025-03-01T16:30:00Z"), nil, utc("2025-03-01T00:00:00Z")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := StartOfDay(tt.now, tt.loc)
			if !got.Equal(tt.want) {
				t.Errorf("StartOfDay() = %v, want %v", got, tt.want.In(got.Location()))
			}
			wantLoc := tt.loc
			if wantLoc == nil {
				wantLoc = time.UTC
			}
			if got.Location() != wantLoc {
				t.Errorf("StartOfDay() location = %v, want %v", got.Location(), wantLoc)
			}
		})
	}
}
