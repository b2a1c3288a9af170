package pool

import (
	"testing"
	"time"
)

func TestPacer(t *testing.T) {
	const budget = 40 * time.Millisecond
	newPacer := func() *pacer { return &pacer{size: 256, budget: budget} }
	tests := []struct {
		name  string
		p     *pacer
		took  []time.Duration
		sizes []int
	}{
		{"grows while batches are quick", newPacer(), []time.Duration{time.Millisecond, time.Millisecond}, []int{512, 1024}},
		{"stops at the maximum", &pacer{size: sweepBatchMax, budget: budget}, []time.Duration{time.Millisecond}, []int{sweepBatchMax}},
		{"holds inside the budget", newPacer(), []time.Duration{budget * 3 / 4}, []int{256}},
		{"shrinks when over budget", newPacer(), []time.Duration{2 * budget, 2 * budget}, []int{128, 64}},
		{"stops at the minimum", &pacer{size: sweepBatchMin, budget: budget}, []time.Duration{time.Second}, []int{sweepBatchMin}},
		{"fixed never changes", fixedPacer(500), []time.Duration{time.Millisecond, time.Second}, []int{500, 500}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, d := range tt.took {
				tt.p.took(d)
				if got := tt.p.next(); got != tt.sizes[i] {
					t.Fatalf("after %v: next %d, want %d", d, got, tt.sizes[i])
				}
			}
		})
	}
}
