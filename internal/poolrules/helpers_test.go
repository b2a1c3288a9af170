package poolrules

import "time"

// t0 is an arbitrary fixed instant every test counts from.
var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func ip(n int) *int { return &n }

func tp(t time.Time) *time.Time { return &t }

// day returns t0 plus n days (n may be negative).
func day(n int) time.Time { return t0.Add(days(n)) }

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.Format(time.RFC3339Nano)
}
