package poolrules

// Candidate is a pool member who might receive an auto-assigned record.
type Candidate struct {
	UserID     string
	Active     bool
	Owned      int
	Cap        *int
	InCooldown bool // the caller sets it for the previous owner of this record while his cooldown runs
}

// eligible reports whether the candidate may receive a record now.
func (c Candidate) eligible() bool {
	return c.Active && UnderCap(c.Owned, c.Cap) && !c.InCooldown
}

// PickRoundRobin returns the first eligible candidate after lastAssigned in
// cands, wrapping around, or "" when none is eligible. cands must be in a
// stable order chosen by the caller. lastAssigned itself is picked only when
// nobody else is eligible. When lastAssigned is empty or no longer among the
// candidates, the rotation starts from the first.
func PickRoundRobin(cands []Candidate, lastAssigned string) string {
	start := 0
	for i, c := range cands {
		if c.UserID == lastAssigned && lastAssigned != "" {
			start = i + 1
			break
		}
	}
	for k := range cands {
		c := cands[(start+k)%len(cands)]
		if c.eligible() {
			return c.UserID
		}
	}
	return ""
}

// PickLeastLoaded returns the eligible candidate who owns the fewest records,
// the earliest in cands on a tie, or "" when none is eligible.
func PickLeastLoaded(cands []Candidate) string {
	best := -1
	for i, c := range cands {
		if c.eligible() && (best < 0 || c.Owned < cands[best].Owned) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	return cands[best].UserID
}
