package webhooks

import (
	"testing"
	"time"
)

func fixed(v float64) func() float64 { return func() float64 { return v } }

func TestBackoffSchedule(t *testing.T) {
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 10 * time.Second},
		{2, 20 * time.Second},
		{3, 40 * time.Second},
		{4, 80 * time.Second},
		{5, 160 * time.Second},
		{6, 320 * time.Second},
		{7, 640 * time.Second},
		{8, 1280 * time.Second},
		{9, 2560 * time.Second},
		{10, 5120 * time.Second},
		{11, 2 * time.Hour},
		{12, 2 * time.Hour},
		{64, 2 * time.Hour},
		{10000, 2 * time.Hour},
		{0, 10 * time.Second},  // out of range: treated as the first
		{-5, 10 * time.Second}, // likewise
	}
	for _, tt := range tests {
		if got := Backoff(tt.attempt, fixed(0.5)); got != tt.want {
			t.Errorf("Backoff(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
}

func TestBackoffJitterRange(t *testing.T) {
	tests := []struct {
		jitter float64
		want   time.Duration
	}{
		{0, 8 * time.Second},
		{0.25, 9 * time.Second},
		{0.999999, 12 * time.Second}, // just below; checked with a margin
	}
	for _, tt := range tests {
		got := Backoff(1, fixed(tt.jitter))
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("Backoff(1, %v) = %v, want about %v", tt.jitter, got, tt.want)
		}
	}
	for range 1000 {
		if got := Backoff(1, nil); got < 8*time.Second || got >= 12*time.Second {
			t.Fatalf("Backoff(1, nil) = %v, want in [8s, 12s)", got)
		}
	}
}

func TestBackoffGrowsStrictly(t *testing.T) {
	for _, j := range []float64{0, 0.1, 0.5, 0.9, 0.999} {
		prev := time.Duration(0)
		for a := 1; a <= 10; a++ {
			d := Backoff(a, fixed(j))
			if d <= prev {
				t.Fatalf("jitter %v: Backoff(%d) = %v, not above Backoff(%d) = %v", j, a, d, a-1, prev)
			}
			prev = d
		}
	}
}

func TestBackoffBounded(t *testing.T) {
	for _, a := range []int{11, 62, 63, 64, 65, 1000, 10000, 1 << 30} {
		for _, j := range []float64{0, 0.5, 0.999999, 1, 7, -3} {
			d := Backoff(a, fixed(j))
			if d < 0 || d > 2*time.Hour*12/10 {
				t.Fatalf("Backoff(%d, %v) = %v, want within [0, 2h24m]", a, j, d)
			}
		}
	}
}

func TestAttemptsWithinRetryFor(t *testing.T) {
	// The first attempt is at 0; attempt n+1 follows Backoff(n). Count the
	// attempts made before RetryFor has passed.
	var elapsed time.Duration
	attempts := 1
	for n := 1; ; n++ {
		elapsed += Backoff(n, fixed(0.5))
		if elapsed > RetryFor {
			break
		}
		attempts++
	}
	if attempts < 19 || attempts > 23 {
		t.Fatalf("%d attempts within RetryFor, want 19..23", attempts)
	}
	// 10s..5120s sum to 10230s; then 2h steps: attempt 21 starts at 82230s
	// (22h50m30s), attempt 22 would start at 89430s, past 24h.
	if attempts != 21 {
		t.Fatalf("%d attempts within RetryFor, want 21 as documented", attempts)
	}
	if DisableAfter < RetryFor {
		t.Fatal("DisableAfter must not be shorter than RetryFor")
	}
}
