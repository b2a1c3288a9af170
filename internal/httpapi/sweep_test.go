package httpapi_test

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ---- helpers of the sweep tests (prefix sw) ----

const swDay = 24 * time.Hour

// swSeq numbers the records these tests create so that none is a duplicate
// of another.
var swSeq atomic.Int64

// swActor is a user with a logged-in client.
type swActor struct {
	*apitest.Client
	ID   string
	UUID uuid.UUID
}

// swWorld is an organisation on a server built with the adjustable test
// clock: team T with supervisor sup and reps repA and repB, and an admin.
// The clock is moved only through POST /v1/test-clock/advance; the test
// keeps a handle on it to know "now" (it is the wall clock plus the
// offset, so it keeps running between requests).
type swWorld struct {
	t           *testing.T
	env         *apitest.Env
	clock       *clock.Adjustable
	admin, sup  swActor
	repA, repB  swActor
	team        uuid.UUID
	defaultPool map[string]string // kind → id
}

func newSWWorld(t *testing.T, databaseURL string) *swWorld {
	t.Helper()
	clk := &clock.Adjustable{}
	env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Clock: clk, TestClock: true}})
	w := &swWorld{t: t, env: env, clock: clk, defaultPool: map[string]string{}}
	w.team = env.Team("T", nil).ID
	w.admin = w.user("admin", nil)
	w.sup = w.user("supervisor", &w.team)
	w.repA = w.user("rep", &w.team)
	w.repB = w.user("rep", &w.team)
	for _, kind := range []string{"lead", "customer"} {
		var page struct {
			Items []struct {
				ID        string `json:"id"`
				IsDefault bool   `json:"isDefault"`
			} `json:"items"`
		}
		w.admin.Do("GET", "/v1/pools?kind="+kind, nil).Expect(http.StatusOK).JSON(&page)
		for _, p := range page.Items {
			if p.IsDefault {
				w.defaultPool[kind] = p.ID
			}
		}
		if w.defaultPool[kind] == "" {
			t.Fatalf("no default %s pool", kind)
		}
	}
	return w
}

func (w *swWorld) user(role string, team *uuid.UUID) swActor {
	w.t.Helper()
	u, c := w.env.User(role, team)
	return swActor{Client: c, ID: u.ID.String(), UUID: u.ID}
}

// advance moves the server's clock forward by d (rounded up to a second)
// through the API, and returns the clock's new time.
func (w *swWorld) advance(d time.Duration) time.Time {
	w.t.Helper()
	secs := int64(math.Ceil(d.Seconds()))
	if secs < 1 {
		return w.clock.Now()
	}
	var out struct {
		Now time.Time `json:"now"`
	}
	w.admin.Do("POST", "/v1/test-clock/advance", map[string]any{"seconds": secs}).Expect(http.StatusOK).JSON(&out)
	return out.Now
}

// advanceTo moves the clock to at least t.
func (w *swWorld) advanceTo(t time.Time) time.Time {
	w.t.Helper()
	return w.advance(t.Sub(w.clock.Now()))
}

// rules changes the rules of a pool through PATCH and returns its rule
// version, once the re-judge job the change enqueued has run.
func (w *swWorld) rules(poolID string, rules map[string]any) int {
	w.t.Helper()
	var p struct {
		RuleVersion int `json:"ruleVersion"`
	}
	w.admin.Do("PATCH", "/v1/pools/"+poolID, rules, "If-Match", w.admin.ETag("/v1/pools/"+poolID)).Expect(http.StatusOK).JSON(&p)
	w.env.WorkJobs()
	return p.RuleVersion
}

// pool creates a pool of kind with rules.
func (w *swWorld) pool(kind string, rules map[string]any) string {
	w.t.Helper()
	body := map[string]any{"kind": kind, "name": w.env.Unique("Sweep pool ")}
	for k, v := range rules {
		body[k] = v
	}
	return w.admin.Do("POST", "/v1/pools", body).Expect(http.StatusCreated).Map()["id"].(string)
}

// body is a new record whose duplicate keys are unique; extra adds fields.
func swBody(kind string, extra map[string]any) map[string]any {
	n := swSeq.Add(1)
	b := map[string]any{"name": fmt.Sprintf("Sweep customer %d", n)}
	if kind == "lead" {
		b = map[string]any{"name": fmt.Sprintf("Sweep lead %d", n), "company": fmt.Sprintf("Sweep Co %d Ltd", n), "phone": fmt.Sprintf("137%08d", n)}
	}
	for k, v := range extra {
		b[k] = v
	}
	return b
}

// owned has c create a record of kind (in the default pool, owned by him).
func (w *swWorld) owned(c swActor, kind string) swRecord {
	w.t.Helper()
	var r swRecord
	c.Do("POST", "/v1/"+kind+"s", swBody(kind, nil)).Expect(http.StatusCreated).JSON(&r)
	if r.owner() != c.ID {
		w.t.Fatalf("rep-created %s owned by %q, want %s", kind, r.owner(), c.ID)
	}
	return r
}

// claimed has the admin create a pooled record in poolID (with extra
// fields) and c claim it.
func (w *swWorld) claimed(c swActor, kind, poolID string, extra map[string]any) swRecord {
	w.t.Helper()
	b := swBody(kind, extra)
	b["poolId"] = poolID
	var r swRecord
	w.admin.Do("POST", "/v1/"+kind+"s", b).Expect(http.StatusCreated).JSON(&r)
	c.Do("POST", "/v1/"+kind+"s/"+r.ID+"/claim", nil).Expect(http.StatusOK)
	return w.get(kind, r.ID)
}

func (w *swWorld) get(kind, id string) swRecord {
	w.t.Helper()
	var r swRecord
	w.admin.Do("GET", "/v1/"+kind+"s/"+id, nil).Expect(http.StatusOK).JSON(&r)
	return r
}

func (w *swWorld) history(kind, id string) []swHistoryEntry {
	w.t.Helper()
	var page struct {
		Items []swHistoryEntry `json:"items"`
	}
	w.admin.Do("GET", "/v1/"+kind+"s/"+id+"/history?limit=200", nil).Expect(http.StatusOK).JSON(&page)
	return page.Items
}

// sweep runs POST /v1/sweeps as the admin.
func (w *swWorld) sweep(dryRun bool, asOf *time.Time) swResult {
	w.t.Helper()
	body := map[string]any{"dryRun": dryRun}
	if asOf != nil {
		body["asOf"] = asOf.UTC().Format(time.RFC3339Nano)
	}
	var res swResult
	w.admin.Do("POST", "/v1/sweeps", body).Expect(http.StatusOK).JSON(&res)
	return res
}

// followUp logs a call on a record as c, occurred at at.
func swFollowUp(c *apitest.Client, kind, id string, at time.Time) *apitest.Response {
	return c.Do("POST", "/v1/follow-ups", map[string]any{"subjectType": kind, "subjectId": id, "channel": "call",
		"content": "called, still interested", "occurredAt": at.UTC().Format(time.RFC3339Nano)})
}

// warnings lists the reclaim warnings c may see.
func swWarnings(t *testing.T, c *apitest.Client) []swWarning {
	t.Helper()
	var page struct {
		Items []swWarning `json:"items"`
	}
	c.Do("GET", "/v1/reclaim-warnings?limit=200", nil).Expect(http.StatusOK).JSON(&page)
	return page.Items
}

// ownedLeads is a user's stored owned-leads counter and the true number of
// active leads he owns.
func (w *swWorld) ownedLeads(u swActor) (counter, actual int) {
	w.t.Helper()
	ctx := context.Background()
	row, err := w.env.App.Store.Client.User.Get(ctx, u.UUID)
	if err != nil {
		w.t.Fatalf("load user: %v", err)
	}
	n, err := w.env.App.Store.Client.Lead.Query().Where(lead.OwnerID(u.UUID), lead.StatusEQ(lead.StatusActive)).Count(ctx)
	if err != nil {
		w.t.Fatalf("count leads: %v", err)
	}
	return row.OwnedLeads, n
}

// swHistoryEntry is one row of GET …/history.
type swHistoryEntry struct {
	Operation   string    `json:"operation"`
	FromOwnerID *string   `json:"fromOwnerId"`
	ToOwnerID   *string   `json:"toOwnerId"`
	ActorType   string    `json:"actorType"`
	Reason      *string   `json:"reason"`
	RuleVersion int       `json:"ruleVersion"`
	At          time.Time `json:"at"`
}

func swStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// swRecord is a lead or customer as the API renders it (the fields the
// pool engine changes).
type swRecord struct {
	ID             string     `json:"id"`
	OwnerID        *string    `json:"ownerId"`
	PoolID         string     `json:"poolId"`
	Status         string     `json:"status"`
	OwnedAt        *time.Time `json:"ownedAt"`
	LastFollowUpAt *time.Time `json:"lastFollowUpAt"`
	FrozenUntil    *time.Time `json:"frozenUntil"`
	ReleasedAt     *time.Time `json:"releasedAt"`
	ReclaimAt      *time.Time `json:"reclaimAt"`
	ReclaimReason  *string    `json:"reclaimReason"`
	DealStatus     bool       `json:"dealStatus"`
}

func (r swRecord) owner() string { return swStr(r.OwnerID) }

// swItem is one entry of a sweep result.
type swItem struct {
	ID              string     `json:"id"`
	Kind            string     `json:"kind"`
	PreviousOwnerID *string    `json:"previousOwnerId"`
	OwnerID         *string    `json:"ownerId"`
	Reason          *string    `json:"reason"`
	ReclaimAt       *time.Time `json:"reclaimAt"`
}

type swResult struct {
	Reclaimed []swItem `json:"reclaimed"`
	Released  []swItem `json:"released"`
	Warned    []swItem `json:"warned"`
}

type swWarning struct {
	ID        string    `json:"id"`
	Kind      string    `json:"kind"`
	RecordID  string    `json:"recordId"`
	OwnerID   string    `json:"ownerId"`
	ReclaimAt time.Time `json:"reclaimAt"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"createdAt"`
}

// swFind returns the item about id, or nil.
func swFind(items []swItem, id string) *swItem {
	for i := range items {
		if items[i].ID == id {
			return &items[i]
		}
	}
	return nil
}

// swIDs lists the ids of items, sorted.
func swIDs(items []swItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.ID
	}
	sort.Strings(out)
	return out
}

func swTimeEq(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

func swFmt(t *time.Time) string {
	if t == nil {
		return "<nil>"
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// ---- the reclaim sweep ----

// TestSweepIdleReclaim: an owned record with no follow-up for idleDays is
// reclaimed by the first sweep at or after its deadline, and not before.
func TestSweepIdleReclaim(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"lead", "customer"} {
		t.Run(kind, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, databaseURL string) {
				w := newSWWorld(t, databaseURL)
				version := w.rules(w.defaultPool[kind], map[string]any{"idleDays": 3})
				r := w.owned(w.repA, kind)
				r = w.get(kind, r.ID)
				if r.OwnedAt == nil || !swTimeEq(r.ReclaimAt, r.OwnedAt.Add(3*swDay)) || swStr(r.ReclaimReason) != "idle" {
					t.Fatalf("reclaimAt %s (%s), want ownedAt %s + 3 days (idle)", swFmt(r.ReclaimAt), swStr(r.ReclaimReason), swFmt(r.OwnedAt))
				}
				deadline := *r.ReclaimAt

				w.advance(2 * swDay)
				if res := w.sweep(false, nil); len(res.Reclaimed) != 0 {
					t.Fatalf("a sweep 2 days in reclaimed %v", swIDs(res.Reclaimed))
				}
				if got := w.get(kind, r.ID); got.owner() != w.repA.ID {
					t.Fatalf("after 2 days owned by %q, want %s", got.owner(), w.repA.ID)
				}

				w.advance(swDay)
				res := w.sweep(false, nil)
				it := swFind(res.Reclaimed, r.ID)
				if it == nil || len(res.Reclaimed) != 1 {
					t.Fatalf("reclaimed %v, want [%s]", swIDs(res.Reclaimed), r.ID)
				}
				if it.Kind != kind || swStr(it.PreviousOwnerID) != w.repA.ID || swStr(it.Reason) != "idle" || !swTimeEq(it.ReclaimAt, deadline) {
					t.Fatalf("reclaimed item %+v (reclaimAt %s), want %s from %s, idle at %s", it, swFmt(it.ReclaimAt), kind, w.repA.ID, deadline)
				}
				got := w.get(kind, r.ID)
				if got.OwnerID != nil || got.PoolID != w.defaultPool[kind] || got.ReclaimAt != nil || got.OwnedAt != nil {
					t.Fatalf("after reclaim: owner %q pool %s reclaimAt %s ownedAt %s, want pooled in %s with no clock",
						got.owner(), got.PoolID, swFmt(got.ReclaimAt), swFmt(got.OwnedAt), w.defaultPool[kind])
				}
				h := w.history(kind, r.ID)
				last := h[len(h)-1]
				if last.Operation != "reclaim" || swStr(last.FromOwnerID) != w.repA.ID || last.ToOwnerID != nil ||
					last.ActorType != "system" || last.RuleVersion != version {
					t.Fatalf("last history row %+v, want reclaim from %s by the system under rule version %d", last, w.repA.ID, version)
				}
				if kind == "lead" {
					if c, n := w.ownedLeads(w.repA); c != 0 || n != 0 {
						t.Fatalf("repA's lead counter %d (owns %d), want 0", c, n)
					}
				}
				// Nothing is left to do.
				if res := w.sweep(false, nil); len(res.Reclaimed)+len(res.Released)+len(res.Warned) != 0 {
					t.Fatalf("a second sweep did %+v", res)
				}
			})
		})
	}
}

// TestSweepReclaimRules: no-deal deadlines, dealt customers, reclaimDealt
// and per-grade overrides, on one timeline. Each case has its own pool; a
// rep claims a record in it at (about) day 0, then the clock moves to just
// before and just after every deadline, sweeping each time.
func TestSweepReclaimRules(t *testing.T) {
	t.Parallel()
	type rulesCase struct {
		name  string
		kind  string
		rules map[string]any
		extra map[string]any // fields of the new record
		dealt bool
		due   int    // days after the claim; 0: never
		why   string // idle or no_deal
	}
	cases := []rulesCase{
		{name: "no deal before idle", kind: "customer", rules: map[string]any{"idleDays": 10, "noDealDays": 5}, due: 5, why: "no_deal"},
		{name: "idle before no deal", kind: "customer", rules: map[string]any{"idleDays": 3, "noDealDays": 10}, due: 3, why: "idle"},
		{name: "tie reports no deal", kind: "customer", rules: map[string]any{"idleDays": 3, "noDealDays": 3}, due: 3, why: "no_deal"},
		{name: "no deal alone", kind: "customer", rules: map[string]any{"noDealDays": 3}, due: 3, why: "no_deal"},
		{name: "dealt exempt", kind: "customer", rules: map[string]any{"idleDays": 3, "noDealDays": 3}, dealt: true},
		{name: "dealt with reclaimDealt: idle only", kind: "customer", rules: map[string]any{"idleDays": 5, "noDealDays": 3, "reclaimDealt": true}, dealt: true, due: 5, why: "idle"},
		{name: "dealt with reclaimDealt but no idle rule", kind: "customer", rules: map[string]any{"noDealDays": 3, "reclaimDealt": true}, dealt: true},
		{name: "grade A override longer", kind: "customer", rules: map[string]any{"idleDays": 3, "byGrade": map[string]any{"A": map[string]any{"idleDays": 10}}},
			extra: map[string]any{"grade": "A"}, due: 10, why: "idle"},
		{name: "grade B keeps the pool rule", kind: "customer", rules: map[string]any{"idleDays": 3, "byGrade": map[string]any{"A": map[string]any{"idleDays": 10}}},
			extra: map[string]any{"grade": "B"}, due: 3, why: "idle"},
		{name: "no grade keeps the pool rule", kind: "customer", rules: map[string]any{"idleDays": 3, "byGrade": map[string]any{"A": map[string]any{"idleDays": 10}}},
			due: 3, why: "idle"},
		{name: "grade override switches a rule on", kind: "customer", rules: map[string]any{"byGrade": map[string]any{"C": map[string]any{"noDealDays": 5}}},
			extra: map[string]any{"grade": "C"}, due: 5, why: "no_deal"},
		{name: "no rules", kind: "customer", rules: map[string]any{}},
		{name: "leads have no no-deal clock", kind: "lead", rules: map[string]any{"idleDays": 5, "noDealDays": 3}, due: 5, why: "idle"},
	}
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		ids := make([]string, len(cases))
		var t0 time.Time
		for i, c := range cases {
			r := w.claimed(w.repA, c.kind, w.pool(c.kind, c.rules), c.extra)
			if c.dealt {
				w.repA.Do("PUT", "/v1/customers/"+r.ID+"/deal-status", map[string]any{"dealStatus": true}).Expect(http.StatusOK)
				r = w.get(c.kind, r.ID)
			}
			ids[i] = r.ID
			if i == 0 {
				t0 = *r.OwnedAt
			}
			switch {
			case c.due == 0 && r.ReclaimAt != nil:
				t.Fatalf("%s: reclaimAt %s, want none", c.name, swFmt(r.ReclaimAt))
			case c.due != 0 && (!swTimeEq(r.ReclaimAt, r.OwnedAt.Add(time.Duration(c.due)*swDay)) || swStr(r.ReclaimReason) != c.why):
				t.Fatalf("%s: reclaimAt %s (%s), want ownedAt %s + %d days (%s)", c.name, swFmt(r.ReclaimAt), swStr(r.ReclaimReason), swFmt(r.OwnedAt), c.due, c.why)
			}
		}
		reclaimed := map[string]bool{}
		for _, day := range []int{3, 5, 10} {
			w.advanceTo(t0.Add(time.Duration(day)*swDay - time.Hour))
			if res := w.sweep(false, nil); len(res.Reclaimed) != 0 {
				t.Fatalf("an hour before day %d the sweep reclaimed %v", day, swIDs(res.Reclaimed))
			}
			w.advanceTo(t0.Add(time.Duration(day)*swDay + time.Hour))
			res := w.sweep(false, nil)
			var want []string
			for i, c := range cases {
				if c.due != day {
					continue
				}
				want = append(want, ids[i])
				it := swFind(res.Reclaimed, ids[i])
				if it == nil {
					t.Fatalf("%s: not reclaimed at day %d (reclaimed %v)", c.name, day, swIDs(res.Reclaimed))
				}
				if swStr(it.Reason) != c.why || swStr(it.PreviousOwnerID) != w.repA.ID {
					t.Fatalf("%s: reclaimed for %q from %q, want %q from %s", c.name, swStr(it.Reason), swStr(it.PreviousOwnerID), c.why, w.repA.ID)
				}
				reclaimed[ids[i]] = true
			}
			sort.Strings(want)
			if got := swIDs(res.Reclaimed); !slices.Equal(got, want) {
				t.Fatalf("day %d: reclaimed %v, want %v", day, got, want)
			}
		}
		w.advanceTo(t0.Add(30 * swDay))
		if res := w.sweep(false, nil); len(res.Reclaimed) != 0 {
			t.Fatalf("day 30: reclaimed %v, want nothing more", swIDs(res.Reclaimed))
		}
		for i, c := range cases {
			r := w.get(c.kind, ids[i])
			if want := !reclaimed[ids[i]]; (r.owner() == w.repA.ID) != want {
				t.Fatalf("%s: owner %q at day 30, still owned = %v wanted", c.name, r.owner(), want)
			}
		}
	})
}

// TestSweepFollowUpKeepsRecord: a follow-up by the owner moves the idle
// deadline and the record survives its original deadline; a follow-up by
// someone else (his supervisor) does not.
func TestSweepFollowUpKeepsRecord(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		author func(w *swWorld) swActor
		kept   bool
	}{
		{name: "owner", author: func(w *swWorld) swActor { return w.repA }, kept: true},
		{name: "supervisor", author: func(w *swWorld) swActor { return w.sup }, kept: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, databaseURL string) {
				w := newSWWorld(t, databaseURL)
				w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3})
				r := w.owned(w.repA, "lead")
				r = w.get("lead", r.ID)
				deadline := *r.ReclaimAt

				w.advance(2 * swDay)
				at := w.clock.Now().Truncate(time.Millisecond)
				swFollowUp(c.author(w).Client, "lead", r.ID, at).Expect(http.StatusCreated)
				got := w.get("lead", r.ID)
				if c.kept {
					if !swTimeEq(got.LastFollowUpAt, at) || !swTimeEq(got.ReclaimAt, at.Add(3*swDay)) || swStr(got.ReclaimReason) != "idle" {
						t.Fatalf("after the owner's follow-up at %s: lastFollowUpAt %s, reclaimAt %s (%s), want the follow-up + 3 days",
							at, swFmt(got.LastFollowUpAt), swFmt(got.ReclaimAt), swStr(got.ReclaimReason))
					}
				} else if got.LastFollowUpAt != nil || !swTimeEq(got.ReclaimAt, deadline) {
					t.Fatalf("someone else's follow-up moved the clock: lastFollowUpAt %s, reclaimAt %s (was %s)",
						swFmt(got.LastFollowUpAt), swFmt(got.ReclaimAt), deadline)
				}

				w.advanceTo(deadline.Add(12 * time.Hour))
				res := w.sweep(false, nil)
				got = w.get("lead", r.ID)
				if kept := got.owner() == w.repA.ID; kept != c.kept || (swFind(res.Reclaimed, r.ID) == nil) != c.kept {
					t.Fatalf("past the original deadline: owner %q, reclaimed %v; want kept = %v", got.owner(), swIDs(res.Reclaimed), c.kept)
				}
				if c.kept {
					// The new deadline still holds.
					w.advanceTo(got.ReclaimAt.Add(time.Minute))
					if res := w.sweep(false, nil); swFind(res.Reclaimed, r.ID) == nil {
						t.Fatalf("not reclaimed at its moved deadline %s", swFmt(got.ReclaimAt))
					}
				}
			})
		})
	}
}

// TestSweepFollowUpRace logs a follow-up on each of many due leads while
// sweeps run at the same time.
//
// The sweep re-judges each record inside the transaction that reclaims it,
// under the record's lock, and a follow-up is accepted only from the
// current owner. So for every lead exactly one of two things is true:
//
//   - the follow-up was accepted (201): it committed before any sweep's
//     transaction for that lead, so the lead must still be owned by its rep,
//     with lastFollowUpAt = the follow-up's time, a deadline 3 days after
//     it, and no reclaim in its history; or
//   - the follow-up was refused with 403 not_record_owner: a sweep took the
//     lead first, so it must be pooled with exactly one reclaim in its
//     history.
//
// A lead both followed up and reclaimed (the follow-up ignored) or neither
// (a lost update) breaks the invariant. Besides: no request fails with a
// 5xx, every reclaim is reported by exactly one sweep, and the rep's
// owned-leads counter equals the number of leads he owns.
func TestSweepFollowUpRace(t *testing.T) {
	t.Parallel()
	const leads, sweeps, rounds = 20, 4, 3
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3})
		outcomes := map[string]int{}
		for round := range rounds {
			rep := w.user("rep", &w.team)
			ids := make([]string, leads)
			for i := range ids {
				ids[i] = w.owned(rep, "lead").ID
			}
			// Every lead of this round (and whatever earlier rounds kept) is due.
			w.advance(3*swDay + time.Minute)

			type result struct {
				status int
				code   string
				at     time.Time
			}
			fus := make([]result, leads)
			sws := make([]*apitest.Response, sweeps)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i, id := range ids {
				wg.Go(func() {
					<-start
					at := w.clock.Now().Truncate(time.Millisecond)
					res := swFollowUp(rep.Client, "lead", id, at)
					fus[i] = result{status: res.Status, at: at}
					if res.Status >= 400 && res.Header.Get("Content-Type") == "application/problem+json" {
						fus[i].code = res.Problem().Code
					}
				})
			}
			for i := range sws {
				wg.Go(func() {
					<-start
					sws[i] = w.admin.Do("POST", "/v1/sweeps", map[string]any{"dryRun": false})
				})
			}
			close(start)
			wg.Wait()

			reported := map[string]int{}
			for _, res := range sws {
				if res.Status != http.StatusOK {
					t.Fatalf("round %d: a sweep answered %d: %s", round, res.Status, res.Body)
				}
				var r swResult
				res.JSON(&r)
				for _, it := range r.Reclaimed {
					reported[it.ID]++
				}
			}
			for i, id := range ids {
				fu := fus[i]
				r := w.get("lead", id)
				h := w.history("lead", id)
				reclaims := 0
				for _, e := range h {
					if e.Operation == "reclaim" {
						reclaims++
					}
				}
				switch {
				case fu.status == http.StatusCreated:
					outcomes["kept"]++
					if r.owner() != rep.ID || reclaims != 0 || reported[id] != 0 {
						t.Fatalf("round %d lead %d: follow-up accepted but owner %q, %d reclaims in history, reported %d times",
							round, i, r.owner(), reclaims, reported[id])
					}
					if !swTimeEq(r.LastFollowUpAt, fu.at) || !swTimeEq(r.ReclaimAt, fu.at.Add(3*swDay)) {
						t.Fatalf("round %d lead %d: follow-up at %s accepted but lastFollowUpAt %s, reclaimAt %s",
							round, i, fu.at, swFmt(r.LastFollowUpAt), swFmt(r.ReclaimAt))
					}
				case fu.status == http.StatusForbidden && fu.code == "not_record_owner":
					outcomes["reclaimed"]++
					if r.OwnerID != nil || reclaims != 1 || h[len(h)-1].Operation != "reclaim" || reported[id] != 1 {
						t.Fatalf("round %d lead %d: follow-up refused but owner %q, %d reclaims in history (last %q), reported %d times",
							round, i, r.owner(), reclaims, h[len(h)-1].Operation, reported[id])
					}
				default:
					t.Fatalf("round %d lead %d: follow-up answered %d %q", round, i, fu.status, fu.code)
				}
			}
			for id, n := range reported {
				if n != 1 {
					t.Fatalf("round %d: %s reported reclaimed %d times", round, id, n)
				}
			}
			for _, u := range []swActor{rep, w.repA, w.repB} {
				if c, n := w.ownedLeads(u); c != n {
					t.Fatalf("round %d: %s's owned-leads counter %d, owns %d", round, u.ID, c, n)
				}
			}
		}
		t.Logf("outcomes over %d rounds: %v", rounds, outcomes)
	})
}

// TestSweepFreeze: a frozen record is not reclaimed; when its freeze ends,
// the sweep releases it (releasedAt = the freeze's end) and a fresh grace
// period starts from there; a freeze beyond freezeMaxDays is refused.
func TestSweepFreeze(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3, "freezeMaxDays": 5})
		r := w.owned(w.repA, "lead")
		freeze := func(until time.Time) *apitest.Response {
			return w.repA.Do("POST", "/v1/leads/"+r.ID+"/freeze", map[string]any{"until": until.UTC().Format(time.RFC3339Nano)})
		}
		freeze(w.clock.Now().Add(5*swDay+time.Hour)).ExpectProblem(http.StatusConflict, "freeze_too_long")
		freeze(w.clock.Now().Add(4 * swDay)).Expect(http.StatusOK)
		r = w.get("lead", r.ID)
		if r.FrozenUntil == nil || r.ReclaimAt != nil || r.ReclaimReason != nil {
			t.Fatalf("frozen lead: frozenUntil %s, reclaimAt %s (%s), want frozen with no deadline", swFmt(r.FrozenUntil), swFmt(r.ReclaimAt), swStr(r.ReclaimReason))
		}
		end := *r.FrozenUntil

		// Past the idle deadline, still frozen: nothing happens.
		w.advance(3*swDay + 12*time.Hour)
		res := w.sweep(false, nil)
		if swFind(res.Reclaimed, r.ID) != nil || swFind(res.Released, r.ID) != nil {
			t.Fatalf("a sweep during the freeze did %+v", res)
		}
		if got := w.get("lead", r.ID); got.owner() != w.repA.ID || got.FrozenUntil == nil {
			t.Fatalf("during the freeze: owner %q frozenUntil %s", got.owner(), swFmt(got.FrozenUntil))
		}

		// The freeze ends: released, with a fresh grace period from its end.
		w.advanceTo(end.Add(time.Hour))
		res = w.sweep(false, nil)
		if it := swFind(res.Released, r.ID); it == nil || swStr(it.OwnerID) != w.repA.ID || len(res.Released) != 1 {
			t.Fatalf("released %v, want [%s] owned by %s", swIDs(res.Released), r.ID, w.repA.ID)
		}
		if swFind(res.Reclaimed, r.ID) != nil {
			t.Fatalf("reclaimed the moment its freeze ended")
		}
		got := w.get("lead", r.ID)
		if got.owner() != w.repA.ID || got.FrozenUntil != nil || !swTimeEq(got.ReleasedAt, end) ||
			!swTimeEq(got.ReclaimAt, end.Add(3*swDay)) || swStr(got.ReclaimReason) != "idle" {
			t.Fatalf("after release: owner %q frozenUntil %s releasedAt %s reclaimAt %s (%s); want releasedAt %s, reclaimAt +3 days",
				got.owner(), swFmt(got.FrozenUntil), swFmt(got.ReleasedAt), swFmt(got.ReclaimAt), swStr(got.ReclaimReason), end)
		}
		h := w.history("lead", r.ID)
		if last := h[len(h)-1]; last.Operation != "unfreeze" || last.ActorType != "system" {
			t.Fatalf("last history row %+v, want the system's unfreeze", last)
		}
		if res := w.sweep(false, nil); len(res.Released) != 0 {
			t.Fatalf("released twice: %v", swIDs(res.Released))
		}

		// The grace period runs out.
		w.advanceTo(end.Add(3*swDay - time.Hour))
		if res := w.sweep(false, nil); swFind(res.Reclaimed, r.ID) != nil {
			t.Fatal("reclaimed before the end of the grace period")
		}
		w.advanceTo(end.Add(3*swDay + time.Minute))
		if res := w.sweep(false, nil); swFind(res.Reclaimed, r.ID) == nil {
			t.Fatalf("not reclaimed after the grace period: %+v", res)
		}

		// A freeze without until lasts freezeMaxDays.
		r2 := w.owned(w.repA, "lead")
		w.repA.Do("POST", "/v1/leads/"+r2.ID+"/freeze", map[string]any{}).Expect(http.StatusOK)
		if got := w.get("lead", r2.ID); got.FrozenUntil == nil || got.FrozenUntil.Sub(w.clock.Now()) > 5*swDay || got.FrozenUntil.Sub(w.clock.Now()) < 5*swDay-time.Minute {
			t.Fatalf("a freeze without until ends at %s, want now + 5 days", swFmt(got.FrozenUntil))
		}
	})
}

// TestReclaimWarnings: the owner is warned notifyDaysBefore ahead of a
// deadline, once per deadline; the warning is his (and his supervisor's) to
// see, not another rep's.
func TestReclaimWarnings(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3, "notifyDaysBefore": 1})
		r := w.owned(w.repA, "lead")
		r = w.get("lead", r.ID)
		deadline := *r.ReclaimAt

		w.advance(swDay + 12*time.Hour)
		if res := w.sweep(false, nil); len(res.Warned) != 0 {
			t.Fatalf("warned %v at 1.5 days, want nothing before 2 days", swIDs(res.Warned))
		}

		w.advance(swDay)
		res := w.sweep(false, nil)
		if len(res.Warned) != 1 {
			t.Fatalf("warned %v at 2.5 days, want [%s]", swIDs(res.Warned), r.ID)
		}
		if it := res.Warned[0]; it.ID != r.ID || it.Kind != "lead" || swStr(it.OwnerID) != w.repA.ID || swStr(it.Reason) != "idle" || !swTimeEq(it.ReclaimAt, deadline) {
			t.Fatalf("warned %+v, want %s owned by %s, idle at %s", it, r.ID, w.repA.ID, deadline)
		}
		if len(res.Reclaimed) != 0 {
			t.Fatalf("reclaimed %v before the deadline", swIDs(res.Reclaimed))
		}

		visible := []struct {
			name string
			who  swActor
			sees bool
		}{
			{"owner", w.repA, true},
			{"his supervisor", w.sup, true},
			{"admin", w.admin, true},
			{"another rep", w.repB, false},
		}
		for _, v := range visible {
			ws := swWarnings(t, v.who.Client)
			if v.sees {
				if len(ws) != 1 || ws[0].RecordID != r.ID || ws[0].OwnerID != w.repA.ID || !ws[0].ReclaimAt.Equal(deadline) || ws[0].Reason != "idle" || ws[0].Kind != "lead" {
					t.Fatalf("%s sees warnings %+v, want the one on %s", v.name, ws, r.ID)
				}
			} else if len(ws) != 0 {
				t.Fatalf("%s sees warnings %+v, want none", v.name, ws)
			}
		}

		// Once per deadline.
		if res := w.sweep(false, nil); len(res.Warned) != 0 {
			t.Fatalf("a second sweep warned %v again", swIDs(res.Warned))
		}
		if ws := swWarnings(t, w.repA.Client); len(ws) != 1 {
			t.Fatalf("owner sees %d warnings after the second sweep, want 1", len(ws))
		}

		// A follow-up moves the deadline: the new one is warned about too.
		at := w.clock.Now().Truncate(time.Millisecond)
		swFollowUp(w.repA.Client, "lead", r.ID, at).Expect(http.StatusCreated)
		if res := w.sweep(false, nil); len(res.Warned) != 0 {
			t.Fatalf("warned %v right after the follow-up", swIDs(res.Warned))
		}
		w.advanceTo(at.Add(2*swDay + time.Hour))
		res = w.sweep(false, nil)
		if len(res.Warned) != 1 || !swTimeEq(res.Warned[0].ReclaimAt, at.Add(3*swDay)) {
			t.Fatalf("warned %+v for the new deadline, want one at %s", res.Warned, at.Add(3*swDay))
		}
		if ws := swWarnings(t, w.repA.Client); len(ws) != 2 || !ws[0].ReclaimAt.Equal(at.Add(3*swDay)) {
			t.Fatalf("owner sees %+v, want two warnings, newest first", ws)
		}
	})
}

// TestSweepReclaimCooldown: a rep who lost a record to reclaim may not claim
// it back during claimCooldownDays; another rep may, and so may he once the
// cooldown is over.
func TestSweepReclaimCooldown(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3, "claimCooldownDays": 2})
		l1, l2 := w.owned(w.repA, "lead"), w.owned(w.repA, "lead")
		w.advance(3*swDay + time.Minute)
		if res := w.sweep(false, nil); !slices.Equal(swIDs(res.Reclaimed), swIDs([]swItem{{ID: l1.ID}, {ID: l2.ID}})) {
			t.Fatalf("reclaimed %v, want both leads", swIDs(res.Reclaimed))
		}
		claim := func(c swActor, id string) *apitest.Response {
			return c.Do("POST", "/v1/leads/"+id+"/claim", nil)
		}
		claim(w.repA, l1.ID).ExpectProblem(http.StatusConflict, "claim_cooldown")
		claim(w.repA, l2.ID).ExpectProblem(http.StatusConflict, "claim_cooldown")
		claim(w.repB, l2.ID).Expect(http.StatusOK)
		if got := w.get("lead", l2.ID); got.owner() != w.repB.ID {
			t.Fatalf("l2 owned by %q after repB's claim", got.owner())
		}
		w.advance(swDay)
		claim(w.repA, l1.ID).ExpectProblem(http.StatusConflict, "claim_cooldown")
		w.advance(swDay + time.Minute)
		claim(w.repA, l1.ID).Expect(http.StatusOK)
		if got := w.get("lead", l1.ID); got.owner() != w.repA.ID {
			t.Fatalf("l1 owned by %q after the cooldown claim", got.owner())
		}
	})
}

// TestSweepConcurrentSweeps: two sweeps at once reclaim each due record
// once and warn each record once (invariant 5).
func TestSweepConcurrentSweeps(t *testing.T) {
	t.Parallel()
	const n = 15
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3, "notifyDaysBefore": 1})
		w.rules(w.defaultPool["customer"], map[string]any{"idleDays": 3, "notifyDaysBefore": 1})
		var due, warn []string
		kinds := map[string]string{}
		for range n {
			for _, kind := range []string{"lead", "customer"} {
				id := w.owned(w.repA, kind).ID
				due, kinds[id] = append(due, id), kind
			}
		}
		t0 := w.clock.Now()
		w.advance(swDay)
		for range n {
			warn = append(warn, w.owned(w.repB, "lead").ID, w.owned(w.repB, "customer").ID)
		}
		// The first set is due (3 days), the second within a day of its
		// deadline (4 days).
		w.advanceTo(t0.Add(3*swDay + time.Hour))

		for round := range 2 {
			var res [2]*apitest.Response
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range res {
				wg.Go(func() {
					<-start
					res[i] = w.admin.Do("POST", "/v1/sweeps", map[string]any{"dryRun": false})
				})
			}
			close(start)
			wg.Wait()
			var reclaimed, warned []swItem
			for _, r := range res {
				if r.Status != http.StatusOK {
					t.Fatalf("round %d: a sweep answered %d: %s", round, r.Status, r.Body)
				}
				var out swResult
				r.JSON(&out)
				reclaimed = append(reclaimed, out.Reclaimed...)
				warned = append(warned, out.Warned...)
			}
			wantReclaimed, wantWarned := slices.Sorted(slices.Values(due)), slices.Sorted(slices.Values(warn))
			if round == 1 {
				wantReclaimed, wantWarned = nil, nil
			}
			if got := swIDs(reclaimed); !slices.Equal(got, wantReclaimed) {
				t.Fatalf("round %d: the sweeps reclaimed %v (%d), want %d records each once", round, got, len(got), len(wantReclaimed))
			}
			if got := swIDs(warned); !slices.Equal(got, wantWarned) {
				t.Fatalf("round %d: the sweeps warned %v (%d), want %d records each once", round, got, len(got), len(wantWarned))
			}
		}

		ctx := context.Background()
		db := w.env.App.Store.Client
		for _, id := range warn {
			n, err := db.ReclaimWarning.Query().Where(reclaimwarning.RecordID(uuid.MustParse(id))).Count(ctx)
			if err != nil || n != 1 {
				t.Fatalf("%s has %d warning rows (%v), want 1", id, n, err)
			}
			n, err = db.DomainEvent.Query().Where(domainevent.SubjectID(uuid.MustParse(id)), domainevent.TypeHasSuffix(".reclaim_warned")).Count(ctx)
			if err != nil || n != 1 {
				t.Fatalf("%s has %d reclaimWarning events (%v), want 1", id, n, err)
			}
		}
		for _, id := range due {
			kind := kinds[id]
			reclaims := 0
			for _, e := range w.history(kind, id) {
				if e.Operation == "reclaim" {
					reclaims++
				}
			}
			if reclaims != 1 {
				t.Fatalf("%s %s has %d reclaims in its history, want 1", kind, id, reclaims)
			}
			n, err := db.DomainEvent.Query().Where(domainevent.SubjectID(uuid.MustParse(id)), domainevent.TypeEQ(kind+".reclaimed")).Count(ctx)
			if err != nil || n != 1 {
				t.Fatalf("%s %s has %d reclaim events (%v), want 1", kind, id, n, err)
			}
		}
		for _, u := range []swActor{w.repA, w.repB} {
			if c, n := w.ownedLeads(u); c != n {
				t.Fatalf("%s's owned-leads counter %d, owns %d", u.ID, c, n)
			}
		}
	})
}

// TestSweepDryRun: a dry run may look ahead and changes nothing; a real run
// may not look ahead; only admins sweep.
func TestSweepDryRun(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		w.rules(w.defaultPool["lead"], map[string]any{"idleDays": 3, "notifyDaysBefore": 1, "freezeMaxDays": 10})
		r := w.owned(w.repA, "lead")
		r = w.get("lead", r.ID)
		frozen := w.owned(w.repA, "lead")
		w.repA.Do("POST", "/v1/leads/"+frozen.ID+"/freeze", map[string]any{"until": w.clock.Now().Add(2 * swDay).UTC().Format(time.RFC3339Nano)}).Expect(http.StatusOK)
		before, hBefore := w.get("lead", r.ID), w.history("lead", r.ID)

		cases := []struct {
			name                                string
			asOf                                time.Duration
			reclaimed, warned, released, frozen bool
		}{
			{name: "now", asOf: 0},
			{name: "in a day", asOf: swDay},
			{name: "in 2.5 days", asOf: 2*swDay + 12*time.Hour, warned: true, released: true},
			{name: "in 4 days", asOf: 4 * swDay, reclaimed: true, released: true},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				asOf := w.clock.Now().Add(c.asOf)
				res := w.sweep(true, &asOf)
				it := swFind(res.Reclaimed, r.ID)
				if (it != nil) != c.reclaimed || (swFind(res.Warned, r.ID) != nil) != c.warned || (swFind(res.Released, frozen.ID) != nil) != c.released {
					t.Fatalf("dry run as of +%s: %+v; want reclaimed %v, warned %v, released %v", c.asOf, res, c.reclaimed, c.warned, c.released)
				}
				if it != nil && (swStr(it.PreviousOwnerID) != w.repA.ID || swStr(it.Reason) != "idle" || !swTimeEq(it.ReclaimAt, *before.ReclaimAt)) {
					t.Fatalf("dry-run item %+v", it)
				}
				// Nothing changed.
				got := w.get("lead", r.ID)
				if got.owner() != w.repA.ID || !swTimeEq(got.ReclaimAt, *before.ReclaimAt) || len(w.history("lead", r.ID)) != len(hBefore) {
					t.Fatalf("a dry run changed the lead: owner %q reclaimAt %s", got.owner(), swFmt(got.ReclaimAt))
				}
				if f := w.get("lead", frozen.ID); f.FrozenUntil == nil {
					t.Fatal("a dry run released a freeze")
				}
				if ws := swWarnings(t, w.repA.Client); len(ws) != 0 {
					t.Fatalf("a dry run created warnings %+v", ws)
				}
			})
		}

		asOf := w.clock.Now().Add(4 * swDay)
		w.admin.Do("POST", "/v1/sweeps", map[string]any{"dryRun": false, "asOf": asOf.Format(time.RFC3339Nano)}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		w.admin.Do("POST", "/v1/sweeps", map[string]any{}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		w.repA.Do("POST", "/v1/sweeps", map[string]any{"dryRun": true}).ExpectProblem(http.StatusForbidden, "forbidden")
		w.sup.Do("POST", "/v1/sweeps", map[string]any{"dryRun": false}).ExpectProblem(http.StatusForbidden, "forbidden")
		w.env.Anonymous().Do("POST", "/v1/sweeps", map[string]any{"dryRun": true}).Expect(http.StatusUnauthorized)
		if got := w.get("lead", r.ID); got.owner() != w.repA.ID {
			t.Fatalf("the refused sweeps changed the lead: owner %q", got.owner())
		}
	})
}

// TestTestClockAdvance: the test clock moves only forward, only for admins,
// and exists only on a server built with it.
func TestTestClockAdvance(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		before := w.clock.Now()
		var out struct {
			Now time.Time `json:"now"`
		}
		w.admin.Do("POST", "/v1/test-clock/advance", map[string]any{"seconds": 3600}).Expect(http.StatusOK).JSON(&out)
		if d := out.Now.Sub(before); d < time.Hour || d > time.Hour+time.Minute {
			t.Fatalf("advanced by %s, want an hour", d)
		}
		// Rules see the moved clock: a new record's ownedAt is in the future
		// of the wall clock.
		r := w.owned(w.repA, "lead")
		if r.OwnedAt == nil || r.OwnedAt.Before(time.Now().Add(59*time.Minute)) {
			t.Fatalf("ownedAt %s after advancing an hour (wall clock %s)", swFmt(r.OwnedAt), time.Now().UTC())
		}
		for _, c := range []struct {
			name   string
			who    *apitest.Client
			body   any
			status int
			code   string
		}{
			{"rep", w.repA.Client, map[string]any{"seconds": 60}, http.StatusForbidden, "forbidden"},
			{"supervisor", w.sup.Client, map[string]any{"seconds": 60}, http.StatusForbidden, "forbidden"},
			{"zero seconds", w.admin.Client, map[string]any{"seconds": 0}, http.StatusBadRequest, "validation_failed"},
			{"negative seconds", w.admin.Client, map[string]any{"seconds": -60}, http.StatusBadRequest, "validation_failed"},
			{"no seconds", w.admin.Client, map[string]any{}, http.StatusBadRequest, "validation_failed"},
		} {
			t.Run(c.name, func(t *testing.T) {
				c.who.Do("POST", "/v1/test-clock/advance", c.body).ExpectProblem(c.status, c.code)
			})
		}
		w.env.Anonymous().Do("POST", "/v1/test-clock/advance", map[string]any{"seconds": 60}).Expect(http.StatusUnauthorized)
		if d := w.clock.Now().Sub(before); d > time.Hour+time.Minute {
			t.Fatalf("refused advances moved the clock by %s", d-time.Hour)
		}

		// A server built without the test clock has no such operation.
		fresh := testdb.SQLite
		if strings.HasPrefix(databaseURL, "postgres") {
			fresh = testdb.Postgres
		}
		plain := apitest.New(t, fresh(t))
		admin, _ := plain.User("admin", nil)
		plain.Login(admin.Email, apitest.Password).Do("POST", "/v1/test-clock/advance", map[string]any{"seconds": 60}).
			ExpectProblem(http.StatusNotFound, "route_not_found")
	})
}

// TestSweepReclaimRuleChange: changing a pool's rules re-judges the stored
// deadline of its owned records (and the sweep follows the new one).
func TestSweepReclaimRuleChange(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		pl := w.defaultPool["lead"]
		w.rules(pl, map[string]any{"idleDays": 3})
		a, b := w.owned(w.repA, "lead"), w.owned(w.repB, "lead")
		pooled := swBody("lead", map[string]any{"poolId": pl})
		var p swRecord
		w.admin.Do("POST", "/v1/leads", pooled).Expect(http.StatusCreated).JSON(&p)
		if p.OwnerID != nil {
			t.Fatalf("admin-created lead owned by %q", p.owner())
		}
		steps := []struct {
			name  string
			rules map[string]any
			days  int // 0: no deadline
		}{
			{"longer", map[string]any{"idleDays": 10}, 10},
			{"shorter", map[string]any{"idleDays": 2}, 2},
			{"off", map[string]any{"idleDays": nil}, 0},
			{"back on", map[string]any{"idleDays": 3}, 3},
		}
		version := 0
		for _, s := range steps {
			v := w.rules(pl, s.rules)
			if v <= version {
				t.Fatalf("%s: rule version %d after %d", s.name, v, version)
			}
			version = v
			for _, id := range []string{a.ID, b.ID} {
				r := w.get("lead", id)
				if s.days == 0 {
					if r.ReclaimAt != nil || r.ReclaimReason != nil {
						t.Fatalf("%s: reclaimAt %s (%s), want none", s.name, swFmt(r.ReclaimAt), swStr(r.ReclaimReason))
					}
					continue
				}
				if !swTimeEq(r.ReclaimAt, r.OwnedAt.Add(time.Duration(s.days)*swDay)) || swStr(r.ReclaimReason) != "idle" {
					t.Fatalf("%s: reclaimAt %s (%s), want ownedAt %s + %d days", s.name, swFmt(r.ReclaimAt), swStr(r.ReclaimReason), swFmt(r.OwnedAt), s.days)
				}
			}
			if r := w.get("lead", p.ID); r.ReclaimAt != nil {
				t.Fatalf("%s: the pooled lead got a deadline %s", s.name, swFmt(r.ReclaimAt))
			}
		}

		// Past 3 days, under a 10-day rule nothing is due; shortened to 2
		// days, both leads go, under the new rule version.
		w.rules(pl, map[string]any{"idleDays": 10})
		w.advance(3*swDay + time.Hour)
		if res := w.sweep(false, nil); len(res.Reclaimed) != 0 {
			t.Fatalf("reclaimed %v under a 10-day rule after 3 days", swIDs(res.Reclaimed))
		}
		version = w.rules(pl, map[string]any{"idleDays": 2})
		res := w.sweep(false, nil)
		if got, want := swIDs(res.Reclaimed), swIDs([]swItem{{ID: a.ID}, {ID: b.ID}}); !slices.Equal(got, want) {
			t.Fatalf("reclaimed %v after shortening the rule, want %v", got, want)
		}
		for _, id := range []string{a.ID, b.ID} {
			h := w.history("lead", id)
			if last := h[len(h)-1]; last.Operation != "reclaim" || last.RuleVersion != version {
				t.Fatalf("last history row %+v, want a reclaim under rule version %d", last, version)
			}
		}
	})
}

// TestSweepStaleDeadline: a stored deadline that no longer matches the rules
// (here set behind the engine's back, as a crash between a rule change and
// its re-judging would leave it) is corrected by the sweep, not acted on,
// and the record is not picked up again.
func TestSweepStaleDeadline(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		ctx := context.Background()
		db := w.env.App.Store.Client
		r := w.owned(w.repA, "lead")
		if got := w.get("lead", r.ID); got.ReclaimAt != nil {
			t.Fatalf("reclaimAt %s with no rule", swFmt(got.ReclaimAt))
		}
		past := w.clock.Now().Add(-time.Hour)
		if err := db.Lead.Update().Where(lead.ID(uuid.MustParse(r.ID))).SetReclaimAt(past).SetReclaimReason("idle").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if res := w.sweep(false, nil); len(res.Reclaimed) != 0 {
			t.Fatalf("reclaimed %v on a stale deadline", swIDs(res.Reclaimed))
		}
		row, err := db.Lead.Get(ctx, uuid.MustParse(r.ID))
		if err != nil {
			t.Fatal(err)
		}
		if row.ReclaimAt != nil || row.OwnerID == nil || row.OwnerID.String() != w.repA.ID {
			t.Fatalf("after the sweep: reclaimAt %s owner %v, want no deadline and still repA's", swFmt(row.ReclaimAt), row.OwnerID)
		}
	})
}
