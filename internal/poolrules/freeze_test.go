package poolrules

import (
	"errors"
	"testing"
	"time"
)

func TestFreezeUntil(t *testing.T) {
	now := day(0)
	owned := Record{Kind: KindCustomer, OwnerID: "u1", Status: StatusActive, OwnedAt: tp(day(-3))}
	with := func(r Record, f func(*Record)) Record { f(&r); return r }
	max14 := Rules{FreezeMaxDays: ip(14)}

	tests := []struct {
		name      string
		rec       Record
		rules     Rules
		requested *time.Time
		count     int
		maxFrozen *int
		want      time.Time
		wantErr   error
	}{
		{"default to pool maximum", owned, max14, nil, 0, nil, day(14), nil},
		{"default without pool maximum", owned, Rules{}, nil, 0, nil, day(DefaultFreezeDays), nil},
		{"requested within maximum", owned, max14, tp(day(3)), 0, nil, day(3), nil},
		{"requested exactly at maximum", owned, max14, tp(day(14)), 0, nil, day(14), nil},
		{"requested just past maximum", owned, max14, tp(day(14).Add(time.Nanosecond)), 0, nil, time.Time{}, ErrFreezeTooLong},
		{"no maximum allows a long freeze", owned, Rules{}, tp(day(365)), 0, nil, day(365), nil},
		{"requested in the past", owned, max14, tp(day(-1)), 0, nil, time.Time{}, ErrFreezeInPast},
		{"requested exactly now", owned, max14, tp(now), 0, nil, time.Time{}, ErrFreezeInPast},
		{"requested just after now", owned, max14, tp(now.Add(time.Nanosecond)), 0, nil, now.Add(time.Nanosecond), nil},
		{"re-freezing a frozen record extends it", with(owned, func(r *Record) { r.FrozenUntil = tp(day(2)) }), max14, tp(day(10)), 0, ip(1), day(10), nil},
		{"not owned", with(owned, func(r *Record) { r.OwnerID = "" }), max14, nil, 0, nil, time.Time{}, ErrNotOwned},
		{"invalid", with(owned, func(r *Record) { r.Status = StatusInvalid }), max14, nil, 0, nil, time.Time{}, ErrRecordInvalid},
		{"converted", with(owned, func(r *Record) { r.Status = StatusConverted }), max14, nil, 0, nil, time.Time{}, ErrRecordInvalid},
		{"one under frozen limit", owned, max14, nil, 2, ip(3), day(14), nil},
		{"at frozen limit", owned, max14, nil, 3, ip(3), time.Time{}, ErrFrozenLimitReached},
		{"zero frozen limit", owned, max14, nil, 0, ip(0), time.Time{}, ErrFrozenLimitReached},
		{"nil frozen limit is unlimited", owned, max14, nil, 1000, nil, day(14), nil},
		{"precedence: invalid before not owned", with(owned, func(r *Record) { r.Status = StatusInvalid; r.OwnerID = "" }), max14, tp(day(-1)), 3, ip(3), time.Time{}, ErrRecordInvalid},
		{"precedence: not owned before frozen limit", with(owned, func(r *Record) { r.OwnerID = "" }), max14, tp(day(-1)), 3, ip(3), time.Time{}, ErrNotOwned},
		{"precedence: frozen limit before bad end", owned, max14, tp(day(-1)), 3, ip(3), time.Time{}, ErrFrozenLimitReached},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FreezeUntil(now, tt.rec, tt.rules, tt.requested, tt.count, tt.maxFrozen)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("FreezeUntil() error = %v, want %v", err, tt.wantErr)
			}
			if !got.Equal(tt.want) {
				t.Errorf("FreezeUntil() = %v, want %v", got, tt.want)
			}
		})
	}
}
