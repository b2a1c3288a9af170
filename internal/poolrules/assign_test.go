package poolrules

import "testing"

func TestPickRoundRobin(t *testing.T) {
	active := func(id string) Candidate { return Candidate{UserID: id, Active: true, Owned: 1, Cap: ip(5)} }
	with := func(c Candidate, f func(*Candidate)) Candidate { f(&c); return c }
	abc := []Candidate{active("a"), active("b"), active("c")}

	tests := []struct {
		name  string
		cands []Candidate
		last  string
		want  string
	}{
		{"next after last", abc, "a", "b"},
		{"wraps around", abc, "c", "a"},
		{"no previous assignment starts at first", abc, "", "a"},
		{"unknown previous assignee starts at first", abc, "gone", "a"},
		{"skips inactive", []Candidate{active("a"), with(active("b"), func(c *Candidate) { c.Active = false }), active("c")}, "a", "c"},
		{"skips at cap", []Candidate{active("a"), with(active("b"), func(c *Candidate) { c.Owned = 5 }), active("c")}, "a", "c"},
		{"skips cooldown", []Candidate{active("a"), with(active("b"), func(c *Candidate) { c.InCooldown = true }), active("c")}, "a", "c"},
		{"skips and wraps", []Candidate{active("a"), active("b"), with(active("c"), func(c *Candidate) { c.Active = false })}, "b", "a"},
		{"nil cap is unlimited", []Candidate{active("a"), {UserID: "b", Active: true, Owned: 999}}, "a", "b"},
		{"last assignee again when only one eligible", []Candidate{active("a"), with(active("b"), func(c *Candidate) { c.InCooldown = true })}, "a", "a"},
		{
			"none eligible",
			[]Candidate{
				with(active("a"), func(c *Candidate) { c.Active = false }),
				with(active("b"), func(c *Candidate) { c.Owned = 5 }),
				with(active("c"), func(c *Candidate) { c.InCooldown = true }),
			},
			"a", "",
		},
		{"no candidates", nil, "a", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PickRoundRobin(tt.cands, tt.last); got != tt.want {
				t.Errorf("PickRoundRobin() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPickLeastLoaded(t *testing.T) {
	cand := func(id string, owned int) Candidate {
		return Candidate{UserID: id, Active: true, Owned: owned, Cap: ip(10)}
	}
	with := func(c Candidate, f func(*Candidate)) Candidate { f(&c); return c }

	tests := []struct {
		name  string
		cands []Candidate
		want  string
	}{
		{"fewest owned", []Candidate{cand("a", 5), cand("b", 2), cand("c", 3)}, "b"},
		{"tie goes to the earlier", []Candidate{cand("a", 5), cand("b", 2), cand("c", 2)}, "b"},
		{"skips inactive", []Candidate{cand("a", 5), with(cand("b", 0), func(c *Candidate) { c.Active = false }), cand("c", 3)}, "c"},
		{"skips at cap", []Candidate{cand("a", 5), with(cand("b", 1), func(c *Candidate) { c.Cap = ip(1) }), cand("c", 3)}, "c"},
		{"skips cooldown", []Candidate{cand("a", 5), with(cand("b", 0), func(c *Candidate) { c.InCooldown = true }), cand("c", 3)}, "c"},
		{"nil cap is unlimited", []Candidate{cand("a", 5), {UserID: "b", Active: true, Owned: 4}}, "b"},
		{
			"none eligible",
			[]Candidate{
				with(cand("a", 0), func(c *Candidate) { c.Active = false }),
				cand("b", 10), // at cap
				with(cand("c", 0), func(c *Candidate) { c.InCooldown = true }),
			},
			"",
		},
		{"no candidates", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PickLeastLoaded(tt.cands); got != tt.want {
				t.Errorf("PickLeastLoaded() = %q, want %q", got, tt.want)
			}
		})
	}
}
