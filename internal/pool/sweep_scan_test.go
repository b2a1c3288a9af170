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

func TestPacerGivesWay(t *testing.T) {
	const d = 10 * time.Millisecond
	tests := []struct {
		name   string
		others []uint64 // writes others asked for during each batch
		pauses []time.Duration
	}{
		{"alone, never pauses", []uint64{0, 0}, []time.Duration{0, 0}},
		{"pauses after a batch others waited behind", []uint64{3, 0, 1}, []time.Duration{d * 3 / 2, 0, d * 3 / 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var asked uint64
			p := &pacer{size: 256, budget: 4 * d, asked: func() (uint64, bool) { return asked, true }}
			for i, n := range tt.others {
				asked += 1 + n // the batch itself, and the others
				p.took(d)
				if p.pause != tt.pauses[i] {
					t.Fatalf("batch %d: pause %v, want %v", i, p.pause, tt.pauses[i])
				}
			}
		})
	}
}
