package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// ---- helpers shared by the pool rule, invariant and replica tests ----

// pwSeq numbers the names, companies and phones of the records these tests
// create, so that no two of them are duplicates of each other.
var pwSeq atomic.Int64

// pwRecordBody is the body of a new lead or customer whose duplicate keys
// (name, company, phone) are unique in the test binary.
func pwRecordBody(kind string) map[string]any {
	n := pwSeq.Add(1)
	if kind == "customer" {
		return map[string]any{"name": fmt.Sprintf("Customer %d", n)}
	}
	return map[string]any{"name": fmt.Sprintf("Lead %d", n), "company": fmt.Sprintf("Company %d Ltd", n), "phone": fmt.Sprintf("139%08d", n)}
}

func pwIntp(n int) *int { return &n }

// pwRecord is a lead or customer as the API renders it (the fields the pool
// engine changes).
type pwRecord struct {
	ID                  string     `json:"id"`
	OwnerID             *string    `json:"ownerId"`
	PoolID              string     `json:"poolId"`
	Status              string     `json:"status"`
	Phone               string     `json:"phone"`
	Name                string     `json:"name"`
	OwnedAt             *time.Time `json:"ownedAt"`
	FrozenUntil         *time.Time `json:"frozenUntil"`
	ReleasedAt          *time.Time `json:"releasedAt"`
	Placement           string     `json:"placement"`
	ConvertedCustomerID *string    `json:"convertedCustomerId"`
}

// owner is the owner's id, "" when pooled.
func (r pwRecord) owner() string {
	if r.OwnerID == nil {
		return ""
	}
	return *r.OwnerID
}

// pwHistoryEntry is one row of GET …/history.
type pwHistoryEntry struct {
	Operation   string    `json:"operation"`
	FromOwnerID *string   `json:"fromOwnerId"`
	ToOwnerID   *string   `json:"toOwnerId"`
	ActorID     *string   `json:"actorId"`
	ActorType   string    `json:"actorType"`
	Reason      *string   `json:"reason"`
	RuleVersion int       `json:"ruleVersion"`
	At          time.Time `json:"at"`
}

func pwStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// pwActor is a user with a logged-in client.
type pwActor struct {
	*apitest.Client
	ID    string
	UUID  uuid.UUID
	Email string
}

// pwWorld is an organisation for the pool tests: team T with supervisor sup
// and reps repA and repB, team T2 with supervisor sup2 and rep repC, and an
// admin, on a clock the test can move forward.
type pwWorld struct {
	t                *testing.T
	env              *apitest.Env
	clock            *clock.Adjustable
	admin, sup, sup2 pwActor
	repA, repB, repC pwActor
	team, team2      uuid.UUID
	defaultPool      map[string]string // kind → id
}

func newPWWorld(t *testing.T, databaseURL string) *pwWorld {
	t.Helper()
	clk := &clock.Adjustable{}
	env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Clock: clk}})
	w := &pwWorld{t: t, env: env, clock: clk, defaultPool: map[string]string{}}
	w.team = env.Team("T", nil).ID
	w.team2 = env.Team("T2", nil).ID
	w.admin = w.user("admin", nil)
	w.sup = w.user("supervisor", &w.team)
	w.sup2 = w.user("supervisor", &w.team2)
	w.repA = w.user("rep", &w.team)
	w.repB = w.user("rep", &w.team)
	w.repC = w.user("rep", &w.team2)
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

// user creates a user with role in team and logs him in.
func (w *pwWorld) user(role string, team *uuid.UUID, caps ...org.Caps) pwActor {
	w.t.Helper()
	u, c := w.env.User(role, team, caps...)
	return pwActor{Client: c, ID: u.ID.String(), UUID: u.ID, Email: u.Email}
}

// rep creates a rep in team T.
func (w *pwWorld) rep(caps ...org.Caps) pwActor {
	w.t.Helper()
	return w.user("rep", &w.team, caps...)
}

// newTeam creates a team through the API with the given caps.
func (w *pwWorld) newTeam(caps map[string]any) uuid.UUID {
	w.t.Helper()
	body := map[string]any{"name": w.env.Unique("Team ")}
	for k, v := range caps {
		body[k] = v
	}
	id := w.admin.Do("POST", "/v1/teams", body).Expect(http.StatusCreated).Map()["id"].(string)
	return uuid.MustParse(id)
}

// pool creates a pool of kind with the given rules and returns its id.
func (w *pwWorld) pool(kind string, rules map[string]any) string {
	w.t.Helper()
	body := map[string]any{"kind": kind, "name": w.env.Unique("Pool ")}
	for k, v := range rules {
		body[k] = v
	}
	return w.admin.Do("POST", "/v1/pools", body).Expect(http.StatusCreated).Map()["id"].(string)
}

// create creates a record as c, in poolID unless it is "".
func (w *pwWorld) create(c pwActor, kind, poolID string) pwRecord {
	w.t.Helper()
	body := pwRecordBody(kind)
	if poolID != "" {
		body["poolId"] = poolID
	}
	var r pwRecord
	c.Do("POST", "/v1/"+kind+"s", body).Expect(http.StatusCreated).JSON(&r)
	return r
}

// pooled creates a pooled record in poolID (the default pool of kind when
// "") and returns its id.
func (w *pwWorld) pooled(kind, poolID string) string {
	w.t.Helper()
	if poolID == "" {
		poolID = w.defaultPool[kind]
	}
	r := w.create(w.admin, kind, poolID)
	if r.Placement != "pooled" || r.OwnerID != nil {
		w.t.Fatalf("admin-created record placed %q with owner %v, want pooled", r.Placement, r.OwnerID)
	}
	return r.ID
}

// owned creates a record owned by c and returns its id.
func (w *pwWorld) owned(c pwActor, kind string) string {
	w.t.Helper()
	r := w.create(c, kind, "")
	if r.Placement != "owned" || r.owner() != c.ID {
		w.t.Fatalf("rep-created record placed %q with owner %q, want owned by %s", r.Placement, r.owner(), c.ID)
	}
	return r.ID
}

// claimed creates a pooled record in poolID and has c claim it.
func (w *pwWorld) claimed(c pwActor, kind, poolID string) string {
	w.t.Helper()
	id := w.pooled(kind, poolID)
	w.do(c, kind, id, "claim", nil).Expect(http.StatusOK)
	return id
}

// invalid creates a record owned by c (pooled when c is the admin) and
// invalidates it.
func (w *pwWorld) invalid(c pwActor, kind string) string {
	w.t.Helper()
	var id string
	if c.ID == w.admin.ID {
		id = w.pooled(kind, "")
	} else {
		id = w.owned(c, kind)
	}
	w.do(c, kind, id, "invalidate", map[string]any{"reason": "wrong number"}).Expect(http.StatusOK)
	return id
}

// frozen creates a record owned by c and freezes it for a day.
func (w *pwWorld) frozen(c pwActor, kind string) string {
	w.t.Helper()
	id := w.owned(c, kind)
	w.do(c, kind, id, "freeze", map[string]any{"until": w.in(24 * time.Hour)}).Expect(http.StatusOK)
	return id
}

// in is the engine's now + d, as the API writes times.
func (w *pwWorld) in(d time.Duration) string {
	return w.clock.Now().Add(d).UTC().Format(time.RFC3339Nano)
}

// do runs an ownership operation (claim, return, …) on a record as c.
func (w *pwWorld) do(c pwActor, kind, id, op string, body any) *apitest.Response {
	w.t.Helper()
	return c.Do("POST", "/v1/"+kind+"s/"+id+"/"+op, body)
}

// get reads a record as the admin.
func (w *pwWorld) get(kind, id string) pwRecord {
	w.t.Helper()
	var r pwRecord
	w.admin.Do("GET", "/v1/"+kind+"s/"+id, nil).Expect(http.StatusOK).JSON(&r)
	return r
}

// history reads a record's ownership history as the admin.
func (w *pwWorld) history(kind, id string) []pwHistoryEntry {
	w.t.Helper()
	var page struct {
		Items []pwHistoryEntry `json:"items"`
	}
	w.admin.Do("GET", "/v1/"+kind+"s/"+id+"/history?limit=200", nil).Expect(http.StatusOK).JSON(&page)
	return page.Items
}

// ops lists the operations of a history.
func pwOps(h []pwHistoryEntry) []string {
	out := make([]string, len(h))
	for i, e := range h {
		out[i] = e.Operation
	}
	return out
}

// counters returns a user's stored owned-leads and owned-customers counters.
func (w *pwWorld) counters(u pwActor) (leads, customers int) {
	w.t.Helper()
	row, err := w.env.App.Store.Client.User.Get(context.Background(), u.UUID)
	if err != nil {
		w.t.Fatalf("load user: %v", err)
	}
	return row.OwnedLeads, row.OwnedCustomers
}

// owns returns the counter of kind.
func (w *pwWorld) owns(u pwActor, kind string) int {
	w.t.Helper()
	l, c := w.counters(u)
	if kind == "customer" {
		return c
	}
	return l
}

// deactivate makes a user inactive through the API.
func (w *pwWorld) deactivate(u pwActor) {
	w.t.Helper()
	w.admin.Do("PATCH", "/v1/users/"+u.ID, map[string]any{"active": false}).Expect(http.StatusOK)
}

// pwKinds are the two record kinds the engine governs.
var pwKinds = []string{"lead", "customer"}

// ---- every refusal of domain.md's operations table ----

// pwRefusal is one request that the rules must refuse: setup builds the
// fixture and returns who asks, about which record, with what body.
type pwRefusal struct {
	name   string
	kinds  []string // nil: both kinds
	op     string
	setup  func(w *pwWorld, kind string) (actor pwActor, id string, body any)
	status int
	code   string
	// noRecord: the id names no record.
	noRecord bool
}

func TestPoolRulesRefusals(t *testing.T) {
	reason := map[string]any{"reason": "not interested"}
	leadOnly := []string{"lead"}
	rows := []pwRefusal{
		// claim
		{name: "claim own record", op: "claim", status: 409, code: "already_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.owned(w.repA, kind), nil }},
		{name: "supervisor claims his rep's record", op: "claim", status: 409, code: "already_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.sup, w.owned(w.repA, kind), nil }},
		{name: "claim another rep's record", op: "claim", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repB, w.owned(w.repA, kind), nil }},
		{name: "claim unknown record", op: "claim", status: 404, code: "not_found", noRecord: true,
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, uuid.NewString(), nil }},
		{name: "claim from a pool of other teams", op: "claim", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				pl := w.pool(kind, map[string]any{"memberTeamIds": []string{w.team2.String()}})
				return w.repA, w.pooled(kind, pl), nil
			}},
		{name: "claim invalid record", op: "claim", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.invalid(w.admin, kind), nil }},
		{name: "claim at user cap", op: "claim", status: 409, code: "cap_exceeded",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep(org.Caps{MaxOwnedLeads: pwIntp(1), MaxOwnedCustomers: pwIntp(1)})
				w.owned(r, kind)
				return r, w.pooled(kind, ""), nil
			}},
		{name: "claim at team cap", op: "claim", status: 409, code: "cap_exceeded",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				team := w.newTeam(map[string]any{"maxOwnedLeads": 1, "maxOwnedCustomers": 1})
				r := w.user("rep", &team)
				w.owned(r, kind)
				return r, w.pooled(kind, ""), nil
			}},
		{name: "claim at cap zero", op: "claim", status: 409, code: "cap_exceeded",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.rep(org.Caps{MaxOwnedLeads: pwIntp(0), MaxOwnedCustomers: pwIntp(0)}), w.pooled(kind, ""), nil
			}},
		// batch claim refuses the whole request only when it is malformed
		{name: "batch claim without ids", op: "batch-claim", status: 400, code: "validation_failed",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, "", map[string]any{"ids": []string{}}
			}},
		// return
		{name: "return pooled record", op: "return", status: 409, code: "not_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.pooled(kind, ""), reason }},
		{name: "return another rep's record", op: "return", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repB, w.owned(w.repA, kind), reason }},
		{name: "return by another team's supervisor", op: "return", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.sup2, w.owned(w.repA, kind), reason }},
		{name: "return without a reason", op: "return", status: 400, code: "validation_failed",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.owned(w.repA, kind), map[string]any{}
			}},
		// assign
		{name: "rep assigns", op: "assign", status: 403, code: "forbidden",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.pooled(kind, ""), map[string]any{"ownerId": w.repB.ID}
			}},
		{name: "assign owned record", op: "assign", status: 409, code: "already_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.admin, w.owned(w.repA, kind), map[string]any{"ownerId": w.repB.ID}
			}},
		{name: "assign invalid record", op: "assign", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.admin, w.invalid(w.admin, kind), map[string]any{"ownerId": w.repB.ID}
			}},
		{name: "assign to inactive user", op: "assign", status: 409, code: "target_inactive",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep()
				w.deactivate(r)
				return w.admin, w.pooled(kind, ""), map[string]any{"ownerId": r.ID}
			}},
		{name: "supervisor assigns outside his team", op: "assign", status: 403, code: "target_out_of_scope",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.sup, w.pooled(kind, ""), map[string]any{"ownerId": w.repC.ID}
			}},
		{name: "pool manager assigns to a non-member", op: "assign", status: 403, code: "target_out_of_scope",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				pl := w.pool(kind, map[string]any{"memberTeamIds": []string{w.team.String()}, "managerIds": []string{w.sup.ID}})
				return w.sup, w.pooled(kind, pl), map[string]any{"ownerId": w.repC.ID}
			}},
		{name: "assign to user at cap", op: "assign", status: 409, code: "cap_exceeded",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep(org.Caps{MaxOwnedLeads: pwIntp(1), MaxOwnedCustomers: pwIntp(1)})
				w.owned(r, kind)
				return w.sup, w.pooled(kind, ""), map[string]any{"ownerId": r.ID}
			}},
		{name: "assign to unknown user", op: "assign", status: 400, code: "validation_failed",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.admin, w.pooled(kind, ""), map[string]any{"ownerId": uuid.NewString()}
			}},
		// transfer
		{name: "owner transfers frozen record", op: "transfer", status: 409, code: "record_frozen",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.frozen(w.repA, kind), map[string]any{"ownerId": w.repB.ID}
			}},
		{name: "rep transfers outside his team", op: "transfer", status: 403, code: "target_out_of_scope",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.owned(w.repA, kind), map[string]any{"ownerId": w.repC.ID}
			}},
		{name: "transfer to inactive user", op: "transfer", status: 409, code: "target_inactive",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep()
				w.deactivate(r)
				return w.repA, w.owned(w.repA, kind), map[string]any{"ownerId": r.ID}
			}},
		{name: "transfer to user at cap", op: "transfer", status: 409, code: "cap_exceeded",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep(org.Caps{MaxOwnedLeads: pwIntp(1), MaxOwnedCustomers: pwIntp(1)})
				w.owned(r, kind)
				return w.repA, w.owned(w.repA, kind), map[string]any{"ownerId": r.ID}
			}},
		{name: "transfer pooled record", op: "transfer", status: 409, code: "not_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.admin, w.pooled(kind, ""), map[string]any{"ownerId": w.repB.ID}
			}},
		{name: "transfer another rep's record", op: "transfer", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repB, w.owned(w.repA, kind), map[string]any{"ownerId": w.repB.ID}
			}},
		{name: "transfer invalid record", op: "transfer", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.invalid(w.repA, kind), map[string]any{"ownerId": w.repB.ID}
			}},
		// freeze
		{name: "freeze longer than the pool allows", op: "freeze", status: 409, code: "freeze_too_long",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				pl := w.pool(kind, map[string]any{"freezeMaxDays": 7})
				return w.repA, w.claimed(w.repA, kind, pl), map[string]any{"until": w.in(8 * 24 * time.Hour)}
			}},
		{name: "freeze into the past", op: "freeze", status: 409, code: "freeze_in_past",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.owned(w.repA, kind), map[string]any{"until": w.in(-time.Hour)}
			}},
		{name: "freeze beyond maxFrozen", op: "freeze", status: 409, code: "frozen_limit_reached",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep(org.Caps{MaxFrozen: pwIntp(1)})
				w.frozen(r, "lead") // a frozen lead counts against a customer freeze too
				return r, w.owned(r, kind), map[string]any{}
			}},
		{name: "freeze with a team maxFrozen of zero", op: "freeze", status: 409, code: "frozen_limit_reached",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				team := w.newTeam(map[string]any{"maxFrozen": 0})
				r := w.user("rep", &team)
				return r, w.owned(r, kind), map[string]any{}
			}},
		{name: "freeze pooled record", op: "freeze", status: 409, code: "not_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.admin, w.pooled(kind, ""), nil }},
		{name: "freeze another rep's record", op: "freeze", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repB, w.owned(w.repA, kind), nil }},
		{name: "freeze invalid record", op: "freeze", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.invalid(w.repA, kind), nil }},
		// unfreeze
		{name: "unfreeze unfrozen record", op: "unfreeze", status: 409, code: "not_frozen",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.owned(w.repA, kind), nil }},
		{name: "unfreeze pooled record", op: "unfreeze", status: 409, code: "not_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.admin, w.pooled(kind, ""), nil }},
		{name: "unfreeze another rep's record", op: "unfreeze", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repB, w.frozen(w.repA, kind), nil }},
		// invalidate
		{name: "rep invalidates pooled record", op: "invalidate", status: 403, code: "not_record_owner",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.pooled(kind, ""), reason }},
		{name: "invalidate twice", op: "invalidate", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.invalid(w.repA, kind), reason }},
		{name: "invalidate another rep's record", op: "invalidate", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repB, w.owned(w.repA, kind), reason }},
		// restore
		{name: "rep restores", op: "restore", status: 403, code: "forbidden",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.invalid(w.repA, kind), nil }},
		{name: "restore active record", op: "restore", status: 409, code: "not_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.sup, w.owned(w.repA, kind), nil }},
		{name: "restore by a supervisor who neither supervises nor manages", op: "restore", status: 403, code: "not_record_owner",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.sup2, w.invalid(w.admin, kind), nil }},
		// convert
		{name: "convert pooled lead", kinds: leadOnly, op: "convert", status: 409, code: "not_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.admin, w.pooled(kind, ""), map[string]any{}
			}},
		{name: "convert invalid lead", kinds: leadOnly, op: "convert", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repA, w.invalid(w.repA, kind), map[string]any{}
			}},
		{name: "convert at customer cap", kinds: leadOnly, op: "convert", status: 409, code: "cap_exceeded",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				r := w.rep(org.Caps{MaxOwnedCustomers: pwIntp(0)})
				return r, w.owned(r, kind), map[string]any{}
			}},
		{name: "convert another rep's lead", kinds: leadOnly, op: "convert", status: 404, code: "not_found",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				return w.repB, w.owned(w.repA, kind), map[string]any{}
			}},
		{name: "convert twice", kinds: leadOnly, op: "convert", status: 409, code: "record_invalid",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) {
				id := w.owned(w.repA, kind)
				w.do(w.repA, kind, id, "convert", map[string]any{}).Expect(http.StatusCreated)
				return w.repA, id, map[string]any{}
			}},
	}
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		for _, row := range rows {
			kinds := row.kinds
			if kinds == nil {
				kinds = pwKinds
			}
			for _, kind := range kinds {
				t.Run(kind+"/"+row.name, func(t *testing.T) {
					w.t = t
					actor, id, body := row.setup(w, kind)
					var before []pwHistoryEntry
					var was pwRecord
					if id != "" && !row.noRecord {
						before, was = w.history(kind, id), w.get(kind, id)
					}
					var res *apitest.Response
					if row.op == "batch-claim" {
						res = actor.Do("POST", "/v1/"+kind+"s/batch-claim", body)
					} else {
						res = w.do(actor, kind, id, row.op, body)
					}
					res.ExpectProblem(row.status, row.code)
					if before != nil {
						// A refusal changes nothing.
						after, now := w.history(kind, id), w.get(kind, id)
						if len(after) != len(before) {
							t.Fatalf("a refused %s wrote history: %v → %v", row.op, pwOps(before), pwOps(after))
						}
						if now.owner() != was.owner() || now.Status != was.Status || !pwSameTime(now.FrozenUntil, was.FrozenUntil) {
							t.Fatalf("a refused %s changed the record: %+v → %+v", row.op, was, now)
						}
					}
				})
			}
		}
	})
}

// pwSameTime reports whether two optional times are both unset or equal.
func pwSameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}
