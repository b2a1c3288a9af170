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
	"github.com/shoalcrm/shoal/internal/auth"
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
	// The table tests make hundreds of calls as one admin: a request
	// budget big enough that only the rules are under test.
	env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Clock: clk, Auth: auth.Config{UserRate: 1e4, UserBurst: 1e4}}})
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

// sub points the world's helpers (and the env's clients) at the subtest t
// until it ends.
func (w *pwWorld) sub(t *testing.T) {
	parent, parentEnv := w.t, w.env.T
	w.t, w.env.T = t, t
	t.Cleanup(func() { w.t, w.env.T = parent, parentEnv })
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
	if body == nil && (op == "freeze" || op == "convert") {
		body = map[string]any{} // their bodies are required, their fields optional
	}
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
	w.admin.Do("PATCH", "/v1/users/"+u.ID, map[string]any{"active": false}, "If-Match", w.admin.ETag("/v1/users/"+u.ID)).Expect(http.StatusOK)
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
	t.Parallel()
	reason := map[string]any{"reason": "not interested"}
	leadOnly := []string{"lead"}
	rows := []pwRefusal{
		// claim
		{name: "claim own record", op: "claim", status: 409, code: "already_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.repA, w.owned(w.repA, kind), nil }},
		{name: "supervisor claims his rep's record", op: "claim", status: 409, code: "already_owned",
			setup: func(w *pwWorld, kind string) (pwActor, string, any) { return w.sup, w.owned(w.repA, kind), nil }},
		// A member of the record's pool learns that it is taken (and no
		// more); he cannot read it.
		{name: "claim another rep's record", op: "claim", status: 409, code: "already_owned",
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
					w.sub(t)
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

// ---- what each operation does ----

func TestPoolRulesEffects(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)

		for _, kind := range pwKinds {
			t.Run(kind+"/claim and return", func(t *testing.T) {
				w.sub(t)
				rep := w.rep()
				id := w.pooled(kind, "")
				var got pwRecord
				w.do(rep, kind, id, "claim", nil).Expect(http.StatusOK).JSON(&got)
				if got.owner() != rep.ID || got.OwnedAt == nil {
					t.Fatalf("claimed: owner %q ownedAt %v, want %s and a time", got.owner(), got.OwnedAt, rep.ID)
				}
				if n := w.owns(rep, kind); n != 1 {
					t.Fatalf("counter after claim %d, want 1", n)
				}
				w.do(rep, kind, id, "freeze", map[string]any{}).Expect(http.StatusOK)
				w.do(rep, kind, id, "unfreeze", nil).Expect(http.StatusOK)
				w.do(rep, kind, id, "freeze", map[string]any{}).Expect(http.StatusOK)
				w.do(rep, kind, id, "return", map[string]any{"reason": "no budget"}).Expect(http.StatusOK).JSON(&got)
				if got.OwnerID != nil || got.OwnedAt != nil || got.FrozenUntil != nil || got.ReleasedAt != nil {
					t.Fatalf("returned record keeps owner state: %+v", got)
				}
				if n := w.owns(rep, kind); n != 0 {
					t.Fatalf("counter after return %d, want 0", n)
				}
				h := w.history(kind, id)
				if want := []string{"create", "claim", "freeze", "unfreeze", "freeze", "return"}; !slices.Equal(pwOps(h), want) {
					t.Fatalf("history %v, want %v", pwOps(h), want)
				}
				last := h[len(h)-1]
				if pwStr(last.FromOwnerID) != rep.ID || last.ToOwnerID != nil || pwStr(last.Reason) != "no budget" || pwStr(last.ActorID) != rep.ID {
					t.Fatalf("return row %+v", last)
				}
				// The record is pooled again: anyone may claim it.
				w.do(w.repB, kind, id, "claim", nil).Expect(http.StatusOK)
			})

			t.Run(kind+"/supervisor returns his rep's record", func(t *testing.T) {
				w.sub(t)
				rep := w.rep()
				id := w.owned(rep, kind)
				w.do(w.sup, kind, id, "return", map[string]any{"reason": "idle"}).Expect(http.StatusOK)
				if r := w.get(kind, id); r.OwnerID != nil {
					t.Fatalf("still owned by %s", r.owner())
				}
				if n := w.owns(rep, kind); n != 0 {
					t.Fatalf("counter %d, want 0", n)
				}
			})

			t.Run(kind+"/assign", func(t *testing.T) {
				w.sub(t)
				rep := w.rep()
				managed := w.pool(kind, map[string]any{"memberTeamIds": []string{w.team.String()}, "managerIds": []string{w.sup2.ID}})
				for i, a := range []struct {
					who  pwActor
					pool string
				}{
					{w.admin, ""},     // an admin, any pool
					{w.sup, ""},       // the target's supervisor, a pool he does not manage
					{w.sup2, managed}, // the pool's manager, a member of another team
				} {
					id := w.pooled(kind, a.pool)
					var got pwRecord
					w.do(a.who, kind, id, "assign", map[string]any{"ownerId": rep.ID, "reason": "territory"}).Expect(http.StatusOK).JSON(&got)
					if got.owner() != rep.ID || got.OwnedAt == nil {
						t.Fatalf("assigner %d: owner %q", i, got.owner())
					}
					if n := w.owns(rep, kind); n != i+1 {
						t.Fatalf("assigner %d: counter %d, want %d", i, n, i+1)
					}
					last := w.history(kind, id)[1]
					if last.Operation != "assign" || pwStr(last.ToOwnerID) != rep.ID || pwStr(last.ActorID) != a.who.ID || pwStr(last.Reason) != "territory" {
						t.Fatalf("assigner %d: history %+v", i, last)
					}
				}
			})

			t.Run(kind+"/transfer", func(t *testing.T) {
				w.sub(t)
				from, to := w.rep(), w.rep()
				id := w.owned(from, kind)
				before := w.get(kind, id)
				w.clock.Advance(time.Minute)
				body := map[string]any{"ownerId": to.ID, "reason": "handover"}
				if kind == "customer" {
					body["cascade"] = false
				}
				var got pwRecord
				w.do(from, kind, id, "transfer", body).Expect(http.StatusOK).JSON(&got)
				if got.owner() != to.ID || got.OwnedAt == nil || !got.OwnedAt.After(*before.OwnedAt) {
					t.Fatalf("transferred: owner %q ownedAt %v (was %v)", got.owner(), got.OwnedAt, before.OwnedAt)
				}
				if a, b := w.owns(from, kind), w.owns(to, kind); a != 0 || b != 1 {
					t.Fatalf("counters from=%d to=%d, want 0 and 1", a, b)
				}
				last := w.history(kind, id)[1]
				if last.Operation != "transfer" || pwStr(last.FromOwnerID) != from.ID || pwStr(last.ToOwnerID) != to.ID {
					t.Fatalf("history %+v", last)
				}
				// A frozen record moves only by a supervisor (or admin), and
				// the transfer clears the freeze.
				w.do(to, kind, id, "freeze", map[string]any{}).Expect(http.StatusOK)
				w.do(to, kind, id, "transfer", map[string]any{"ownerId": from.ID}).ExpectProblem(409, "record_frozen")
				w.do(w.sup, kind, id, "transfer", map[string]any{"ownerId": from.ID}).Expect(http.StatusOK).JSON(&got)
				if got.owner() != from.ID || got.FrozenUntil != nil {
					t.Fatalf("supervisor transfer of frozen record: owner %q frozenUntil %v", got.owner(), got.FrozenUntil)
				}
				w.do(w.admin, kind, id, "transfer", map[string]any{"ownerId": w.repC.ID}).Expect(http.StatusOK)
				if a, b, c := w.owns(from, kind), w.owns(to, kind), w.owns(w.repC, kind); a != 0 || b != 0 || c < 1 {
					t.Fatalf("counters after admin transfer %d %d %d", a, b, c)
				}
			})

			t.Run(kind+"/freeze and unfreeze", func(t *testing.T) {
				w.sub(t)
				rep := w.rep(org.Caps{MaxFrozen: pwIntp(1)})
				id := w.owned(rep, kind)
				until := w.clock.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
				var got pwRecord
				w.do(rep, kind, id, "freeze", map[string]any{"until": until.Format(time.RFC3339)}).Expect(http.StatusOK).JSON(&got)
				if got.FrozenUntil == nil || !got.FrozenUntil.Equal(until) {
					t.Fatalf("frozenUntil %v, want %v", got.FrozenUntil, until)
				}
				// Extending a running freeze does not count it twice.
				w.do(rep, kind, id, "freeze", map[string]any{"until": w.in(72 * time.Hour)}).Expect(http.StatusOK)
				other := w.owned(rep, kind)
				w.do(rep, kind, other, "freeze", nil).ExpectProblem(409, "frozen_limit_reached")
				// Nobody else may take a frozen record; a member of its pool
				// is told it is owned.
				w.do(w.repB, kind, id, "claim", nil).ExpectProblem(409, "already_owned")
				w.do(w.sup, kind, id, "claim", nil).ExpectProblem(409, "already_owned")
				before := w.clock.Now()
				w.do(rep, kind, id, "unfreeze", nil).Expect(http.StatusOK).JSON(&got)
				if got.FrozenUntil != nil || got.ReleasedAt == nil || got.ReleasedAt.Before(before.Add(-time.Second)) {
					t.Fatalf("unfrozen: frozenUntil %v releasedAt %v", got.FrozenUntil, got.ReleasedAt)
				}
				w.do(rep, kind, other, "freeze", nil).Expect(http.StatusOK)
				// His supervisor may freeze and unfreeze for him, within his maxFrozen.
				w.do(w.sup, kind, id, "freeze", nil).ExpectProblem(409, "frozen_limit_reached")
				w.do(w.sup, kind, other, "unfreeze", nil).Expect(http.StatusOK)
				w.do(w.sup, kind, id, "freeze", nil).Expect(http.StatusOK)
				if ops := pwOps(w.history(kind, id)); !slices.Equal(ops, []string{"create", "freeze", "freeze", "unfreeze", "freeze"}) {
					t.Fatalf("history %v", ops)
				}
			})

			t.Run(kind+"/invalidate and restore", func(t *testing.T) {
				w.sub(t)
				rep := w.rep()
				id := w.owned(rep, kind)
				w.owned(rep, kind) // a second record, so the counter cannot just be reset
				var got pwRecord
				w.do(rep, kind, id, "invalidate", map[string]any{"reason": "fake number"}).Expect(http.StatusOK).JSON(&got)
				if got.Status != "invalid" || got.owner() != rep.ID {
					t.Fatalf("invalidated: status %q owner %q", got.Status, got.owner())
				}
				if n := w.owns(rep, kind); n != 1 {
					t.Fatalf("counter after invalidate %d, want 1", n)
				}
				w.do(w.sup, kind, id, "restore", nil).Expect(http.StatusOK).JSON(&got)
				if got.Status != "active" || got.OwnerID != nil || got.PoolID != w.defaultPool[kind] {
					t.Fatalf("restored: status %q owner %q pool %s", got.Status, got.owner(), got.PoolID)
				}
				if n := w.owns(rep, kind); n != 1 {
					t.Fatalf("counter after restore %d, want 1", n)
				}
				h := w.history(kind, id)
				if ops := pwOps(h); !slices.Equal(ops, []string{"create", "invalidate", "restore"}) {
					t.Fatalf("history %v", ops)
				}
				if pwStr(h[1].Reason) != "fake number" || pwStr(h[2].FromOwnerID) != rep.ID || h[2].ToOwnerID != nil {
					t.Fatalf("history rows %+v %+v", h[1], h[2])
				}
				// An admin restores too; a pool manager invalidates pooled records.
				pooled := w.pooled(kind, "")
				w.do(w.admin, kind, pooled, "invalidate", map[string]any{"reason": "spam"}).Expect(http.StatusOK)
				w.do(w.admin, kind, pooled, "restore", nil).Expect(http.StatusOK)
				w.do(rep, kind, pooled, "claim", nil).Expect(http.StatusOK)
			})
		}

		t.Run("convert", func(t *testing.T) {
			w.sub(t)
			rep := w.rep()
			lead := w.create(rep, "lead", "")
			if l, c := w.counters(rep); l != 1 || c != 0 {
				t.Fatalf("counters before convert %d %d", l, c)
			}
			name := fmt.Sprintf("Converted %d", pwSeq.Add(1))
			var cust pwRecord
			w.do(rep, "lead", lead.ID, "convert", map[string]any{"customerName": name}).Expect(http.StatusCreated).JSON(&cust)
			if cust.owner() != rep.ID || cust.Name != name || cust.Status != "active" || cust.PoolID != w.defaultPool["customer"] {
				t.Fatalf("customer %+v", cust)
			}
			got := w.get("lead", lead.ID)
			if got.Status != "converted" || pwStr(got.ConvertedCustomerID) != cust.ID || got.owner() != rep.ID {
				t.Fatalf("lead after convert %+v", got)
			}
			if l, c := w.counters(rep); l != 0 || c != 1 {
				t.Fatalf("counters after convert leads=%d customers=%d, want 0 and 1", l, c)
			}
			var dup struct {
				Matches []struct {
					Kind       string `json:"kind"`
					CustomerID string `json:"customerId"`
					MatchedOn  string `json:"matchedOn"`
				} `json:"matches"`
			}
			rep.Do("GET", "/v1/duplicates?phone="+url.QueryEscape(lead.Phone), nil).Expect(http.StatusOK).JSON(&dup)
			if len(dup.Matches) != 1 || dup.Matches[0].Kind != "contact" || dup.Matches[0].CustomerID != cust.ID || dup.Matches[0].MatchedOn != "phone" {
				t.Fatalf("duplicates of %s: %+v", lead.Phone, dup.Matches)
			}
			if ops := pwOps(w.history("lead", lead.ID)); !slices.Equal(ops, []string{"create", "convert"}) {
				t.Fatalf("lead history %v", ops)
			}
			ch := w.history("customer", cust.ID)
			if len(ch) != 1 || ch[0].Operation != "create" || pwStr(ch[0].ToOwnerID) != rep.ID {
				t.Fatalf("customer history %+v", ch)
			}
		})

		t.Run("history is oldest first with rule versions", func(t *testing.T) {
			w.sub(t)
			pl := w.pool("lead", map[string]any{"idleDays": 30})
			id := w.claimed(w.repA, "lead", pl)
			w.admin.Do("PATCH", "/v1/pools/"+pl, map[string]any{"name": "renamed"}, "If-Match", w.admin.ETag("/v1/pools/"+pl)).Expect(http.StatusOK)
			w.do(w.repA, "lead", id, "freeze", nil).Expect(http.StatusOK)
			var p struct {
				RuleVersion int `json:"ruleVersion"`
			}
			w.admin.Do("PATCH", "/v1/pools/"+pl, map[string]any{"idleDays": 10}, "If-Match", w.admin.ETag("/v1/pools/"+pl)).Expect(http.StatusOK).JSON(&p)
			if p.RuleVersion != 2 {
				t.Fatalf("rule version after a rule change %d, want 2 (a rename is not a rule change)", p.RuleVersion)
			}
			w.do(w.repA, "lead", id, "unfreeze", nil).Expect(http.StatusOK)
			w.do(w.repA, "lead", id, "transfer", map[string]any{"ownerId": w.repB.ID}).Expect(http.StatusOK)
			w.do(w.sup, "lead", id, "return", map[string]any{"reason": "reorg"}).Expect(http.StatusOK)
			h := w.history("lead", id)
			want := []struct {
				op       string
				from, to string
				actor    string
				version  int
			}{
				{"create", "", "", w.admin.ID, 1},
				{"claim", "", w.repA.ID, w.repA.ID, 1},
				{"freeze", w.repA.ID, w.repA.ID, w.repA.ID, 1},
				{"unfreeze", w.repA.ID, w.repA.ID, w.repA.ID, 2},
				{"transfer", w.repA.ID, w.repB.ID, w.repA.ID, 2},
				{"return", w.repB.ID, "", w.sup.ID, 2},
			}
			if len(h) != len(want) {
				t.Fatalf("history %v, want %d rows", pwOps(h), len(want))
			}
			for i, e := range want {
				got := h[i]
				if got.Operation != e.op || pwStr(got.FromOwnerID) != e.from || pwStr(got.ToOwnerID) != e.to ||
					pwStr(got.ActorID) != e.actor || got.ActorType != "user" || got.RuleVersion != e.version {
					t.Errorf("row %d: %+v, want %+v", i, got, e)
				}
				if i > 0 && got.At.Before(h[i-1].At) {
					t.Errorf("row %d at %v is before row %d at %v", i, got.At, i-1, h[i-1].At)
				}
			}
			// History is as visible as the record.
			w.repC.Do("GET", "/v1/leads/"+id+"/history", nil).Expect(http.StatusOK)
			owned := w.owned(w.repA, "lead")
			w.repB.Do("GET", "/v1/leads/"+owned+"/history", nil).ExpectProblem(404, "not_found")
			w.sup.Do("GET", "/v1/leads/"+owned+"/history", nil).Expect(http.StatusOK)
		})
	})
}

// ---- caps resolved user → team → global ----

func TestPoolRulesCapResolution(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		var st struct {
			MaxOwnedLeads *int `json:"maxOwnedLeads"`
		}
		w.admin.Do("PATCH", "/v1/settings", map[string]any{"maxOwnedLeads": 1}, "If-Match", w.admin.ETag("/v1/settings")).Expect(http.StatusOK).JSON(&st)
		if st.MaxOwnedLeads == nil || *st.MaxOwnedLeads != 1 {
			t.Fatalf("settings %+v", st)
		}
		w.repA.Do("PATCH", "/v1/settings", map[string]any{"maxOwnedLeads": 5}, "If-Match", "*").ExpectProblem(403, "forbidden")

		global := w.rep()                                     // global default: 1
		override := w.rep(org.Caps{MaxOwnedLeads: pwIntp(2)}) // his own: 2
		teamID := w.newTeam(map[string]any{"maxOwnedLeads": 3})
		teamRep := w.user("rep", &teamID) // his team's: 3
		sub := w.env.Team("sub", &teamID)
		subRep := w.user("rep", &sub.ID) // his parent team's: 3

		for _, c := range []struct {
			who pwActor
			cap int
		}{{global, 1}, {override, 2}, {teamRep, 3}, {subRep, 3}} {
			for i := range c.cap {
				if r := w.create(c.who, "lead", ""); r.Placement != "owned" {
					t.Fatalf("cap %d: lead %d placed %q, want owned", c.cap, i+1, r.Placement)
				}
			}
			// At his cap a rep's new lead goes to the default pool, unowned.
			r := w.create(c.who, "lead", "")
			if r.Placement != "pooled" || r.OwnerID != nil || r.PoolID != w.defaultPool["lead"] {
				t.Fatalf("cap %d: lead at cap placed %q owner %q pool %s, want pooled in the default pool", c.cap, r.Placement, r.owner(), r.PoolID)
			}
			w.do(c.who, "lead", r.ID, "claim", nil).ExpectProblem(409, "cap_exceeded")
			w.do(w.admin, "lead", w.pooled("lead", ""), "assign", map[string]any{"ownerId": c.who.ID}).ExpectProblem(409, "cap_exceeded")
			if n := w.owns(c.who, "lead"); n != c.cap {
				t.Fatalf("cap %d: owns %d", c.cap, n)
			}
		}
		// Lifting the global default frees those who relied on it.
		w.admin.Do("PATCH", "/v1/settings", map[string]any{"maxOwnedLeads": nil}, "If-Match", w.admin.ETag("/v1/settings")).Expect(http.StatusOK)
		w.do(global, "lead", w.pooled("lead", ""), "claim", nil).Expect(http.StatusOK)
		w.do(override, "lead", w.pooled("lead", ""), "claim", nil).ExpectProblem(409, "cap_exceeded")
	})
}

// ---- rules that depend on the clock: daily limits, cooldowns, freezes ----

func TestPoolRulesClock(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)

		t.Run("daily limit", func(t *testing.T) {
			w.sub(t)
			// Start just after midnight in Asia/Shanghai, where days are
			// counted, so that the claims below fall on one day.
			shanghai := time.FixedZone("CST", 8*3600)
			now := w.clock.Now().In(shanghai)
			y, m, d := now.Date()
			w.clock.Advance(time.Date(y, m, d+1, 0, 1, 0, 0, shanghai).Sub(now))
			pl := w.pool("lead", map[string]any{"dailyClaimLimit": 2})
			ids := make([]string, 8)
			for i := range ids {
				ids[i] = w.pooled("lead", pl)
			}
			w.do(w.repA, "lead", ids[0], "claim", nil).Expect(http.StatusOK)
			w.do(w.repA, "lead", ids[1], "claim", nil).Expect(http.StatusOK)
			w.do(w.repA, "lead", ids[2], "claim", nil).ExpectProblem(409, "daily_limit_reached")
			// Returning does not give a claim back.
			w.do(w.repA, "lead", ids[0], "return", map[string]any{"reason": "x"}).Expect(http.StatusOK)
			w.do(w.repA, "lead", ids[2], "claim", nil).ExpectProblem(409, "daily_limit_reached")
			// The limit is per rep and per pool.
			w.do(w.repB, "lead", ids[2], "claim", nil).Expect(http.StatusOK)
			w.do(w.repA, "lead", w.pooled("lead", ""), "claim", nil).Expect(http.StatusOK)
			// Assignments are not claims.
			w.do(w.sup, "lead", ids[3], "assign", map[string]any{"ownerId": w.repA.ID}).Expect(http.StatusOK)
			// The next day (Asia/Shanghai) the count starts again; batch
			// claims count too.
			w.clock.Advance(24 * time.Hour)
			var res struct {
				Results []struct {
					ID   string  `json:"id"`
					OK   bool    `json:"ok"`
					Code *string `json:"code"`
				} `json:"results"`
			}
			w.repA.Do("POST", "/v1/leads/batch-claim", map[string]any{"ids": ids[4:7]}).Expect(http.StatusOK).JSON(&res)
			if len(res.Results) != 3 || !res.Results[0].OK || !res.Results[1].OK || res.Results[2].OK || pwStr(res.Results[2].Code) != "daily_limit_reached" {
				t.Fatalf("batch claim on a new day: %+v", res.Results)
			}
		})

		t.Run("cooldown", func(t *testing.T) {
			w.sub(t)
			pl := w.pool("lead", map[string]any{"claimCooldownDays": 3})
			id := w.claimed(w.repA, "lead", pl)
			w.do(w.repA, "lead", id, "return", map[string]any{"reason": "x"}).Expect(http.StatusOK)
			w.do(w.repA, "lead", id, "claim", nil).ExpectProblem(409, "claim_cooldown")
			// Another rep is not blocked.
			w.do(w.repB, "lead", id, "claim", nil).Expect(http.StatusOK)
			w.do(w.repB, "lead", id, "return", map[string]any{"reason": "x"}).Expect(http.StatusOK)
			w.clock.Advance(2 * 24 * time.Hour)
			w.do(w.repA, "lead", id, "claim", nil).ExpectProblem(409, "claim_cooldown")
			w.clock.Advance(24*time.Hour + time.Minute)
			w.do(w.repA, "lead", id, "claim", nil).Expect(http.StatusOK)
			// A return by his supervisor starts his cooldown too; other
			// records are not affected.
			w.do(w.sup, "lead", id, "return", map[string]any{"reason": "reorg"}).Expect(http.StatusOK)
			w.do(w.repA, "lead", id, "claim", nil).ExpectProblem(409, "claim_cooldown")
			w.do(w.repA, "lead", w.pooled("lead", pl), "claim", nil).Expect(http.StatusOK)
			// A pool without cooldown lets him take it straight back.
			free := w.claimed(w.repA, "lead", "")
			w.do(w.repA, "lead", free, "return", map[string]any{"reason": "x"}).Expect(http.StatusOK)
			w.do(w.repA, "lead", free, "claim", nil).Expect(http.StatusOK)
		})

		t.Run("freeze limits", func(t *testing.T) {
			w.sub(t)
			pl := w.pool("lead", map[string]any{"freezeMaxDays": 7})
			id := w.claimed(w.repA, "lead", pl)
			var got pwRecord
			now := w.clock.Now()
			w.do(w.repA, "lead", id, "freeze", nil).Expect(http.StatusOK).JSON(&got)
			if got.FrozenUntil == nil || got.FrozenUntil.Sub(now) < 7*24*time.Hour-time.Minute || got.FrozenUntil.Sub(now) > 7*24*time.Hour+time.Minute {
				t.Fatalf("freeze without until in a 7-day pool ends %v (now %v)", got.FrozenUntil, now)
			}
			w.do(w.repA, "lead", id, "freeze", map[string]any{"until": w.in(7*24*time.Hour - time.Minute)}).Expect(http.StatusOK)
			w.do(w.repA, "lead", id, "freeze", map[string]any{"until": w.in(7*24*time.Hour + time.Hour)}).ExpectProblem(409, "freeze_too_long")

			rep := w.rep(org.Caps{MaxFrozen: pwIntp(1)})
			a, b := w.owned(rep, "lead"), w.owned(rep, "lead")
			w.do(rep, "lead", a, "freeze", map[string]any{"until": w.in(24 * time.Hour)}).Expect(http.StatusOK)
			w.do(rep, "lead", b, "freeze", nil).ExpectProblem(409, "frozen_limit_reached")
			// A freeze whose end has passed no longer counts, even before
			// any sweep ran, and cannot be ended again.
			w.clock.Advance(24*time.Hour + time.Minute)
			w.do(rep, "lead", b, "freeze", nil).Expect(http.StatusOK)
			w.do(rep, "lead", a, "unfreeze", nil).ExpectProblem(409, "not_frozen")
		})
	})
}

// ---- batch claims ----

type pwBatchResult struct {
	Results []struct {
		ID   string  `json:"id"`
		OK   bool    `json:"ok"`
		Code *string `json:"code"`
	} `json:"results"`
}

func TestPoolRulesBatchClaim(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		for _, kind := range pwKinds {
			t.Run(kind, func(t *testing.T) {
				w.sub(t)
				rep := w.rep(org.Caps{MaxOwnedLeads: pwIntp(3), MaxOwnedCustomers: pwIntp(3)})
				mine := w.owned(rep, kind)
				hidden := w.pooled(kind, w.pool(kind, map[string]any{"memberTeamIds": []string{w.team2.String()}}))
				ids := []string{
					w.pooled(kind, ""),       // ok
					mine,                     // already_owned
					w.invalid(w.admin, kind), // record_invalid
					uuid.NewString(),         // not_found
					hidden,                   // not_found: not his pool
					w.pooled(kind, ""),       // ok: now at cap
					w.pooled(kind, ""),       // cap_exceeded
				}
				want := []string{"", "already_owned", "record_invalid", "not_found", "not_found", "", "cap_exceeded"}
				var res pwBatchResult
				rep.Do("POST", "/v1/"+kind+"s/batch-claim", map[string]any{"ids": ids}).Expect(http.StatusOK).JSON(&res)
				if len(res.Results) != len(ids) {
					t.Fatalf("%d results for %d ids", len(res.Results), len(ids))
				}
				for i, r := range res.Results {
					if r.ID != ids[i] || r.OK != (want[i] == "") || pwStr(r.Code) != want[i] {
						t.Errorf("item %d: %+v, want ok=%v code %q", i, r, want[i] == "", want[i])
					}
				}
				if n := w.owns(rep, kind); n != 3 {
					t.Fatalf("counter %d, want 3", n)
				}
				for _, i := range []int{0, 5} {
					if got := w.get(kind, ids[i]); got.owner() != rep.ID {
						t.Fatalf("item %d owned by %q", i, got.owner())
					}
				}
				if got := w.get(kind, ids[6]); got.OwnerID != nil {
					t.Fatalf("refused item owned by %q", got.owner())
				}
				// Auditors and admins may not claim.
				w.admin.Do("POST", "/v1/"+kind+"s/batch-claim", map[string]any{"ids": ids[6:]}).ExpectProblem(403, "forbidden")
			})
		}
	})
}

// ---- claims that need approval ----

type pwClaimRequest struct {
	ID          string  `json:"id"`
	Kind        string  `json:"kind"`
	RecordID    string  `json:"recordId"`
	PoolID      string  `json:"poolId"`
	RequesterID string  `json:"requesterId"`
	Status      string  `json:"status"`
	DeciderID   *string `json:"deciderId"`
	Reason      *string `json:"reason"`
}

func (w *pwWorld) claimRequests(c pwActor, status string) []pwClaimRequest {
	w.t.Helper()
	var page struct {
		Items []pwClaimRequest `json:"items"`
	}
	c.Do("GET", "/v1/claim-requests?status="+status+"&limit=200", nil).Expect(http.StatusOK).JSON(&page)
	return page.Items
}

func pwHasRequest(list []pwClaimRequest, id string) bool {
	return slices.ContainsFunc(list, func(r pwClaimRequest) bool { return r.ID == id })
}

func TestPoolRulesApproval(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		for _, kind := range pwKinds {
			t.Run(kind, func(t *testing.T) {
				w.sub(t)
				pl := w.pool(kind, map[string]any{"claimRequiresApproval": true,
					"memberTeamIds": []string{w.team.String(), w.team2.String()}, "managerIds": []string{w.sup.ID}})
				rep := w.rep()
				id := w.pooled(kind, pl)

				// A claim files a request; claiming again returns the same one.
				var req, again pwClaimRequest
				w.do(rep, kind, id, "claim", nil).Expect(http.StatusAccepted).JSON(&req)
				if req.Status != "pending" || req.RequesterID != rep.ID || req.RecordID != id || req.PoolID != pl || req.Kind != kind {
					t.Fatalf("request %+v", req)
				}
				w.do(rep, kind, id, "claim", nil).Expect(http.StatusAccepted).JSON(&again)
				if again.ID != req.ID {
					t.Fatalf("second claim filed request %s, want the pending %s", again.ID, req.ID)
				}
				if got := w.get(kind, id); got.OwnerID != nil {
					t.Fatalf("a request gave the record to %s", got.owner())
				}
				// Batch claims report the pending request.
				var res pwBatchResult
				rep.Do("POST", "/v1/"+kind+"s/batch-claim", map[string]any{"ids": []string{id}}).Expect(http.StatusOK).JSON(&res)
				if res.Results[0].OK || pwStr(res.Results[0].Code) != "claim_request_pending" {
					t.Fatalf("batch claim in an approval pool: %+v", res.Results[0])
				}
				// Who sees it: the requester, the pool's manager, admins; not
				// other reps.
				for _, c := range []pwActor{rep, w.sup, w.admin} {
					if !pwHasRequest(w.claimRequests(c, "pending"), req.ID) {
						t.Fatalf("%s does not see the request", c.Email)
					}
				}
				if pwHasRequest(w.claimRequests(w.repB, "pending"), req.ID) {
					t.Fatal("another rep sees the request")
				}
				// Only a manager of the pool decides.
				rep.Do("POST", "/v1/claim-requests/"+req.ID+"/approve", map[string]any{}).ExpectProblem(403, "forbidden")
				w.sup2.Do("POST", "/v1/claim-requests/"+req.ID+"/approve", map[string]any{}).ExpectProblem(403, "wrong_pool")
				w.sup.Do("POST", "/v1/claim-requests/"+uuid.NewString()+"/approve", map[string]any{}).ExpectProblem(404, "not_found")

				var decided pwClaimRequest
				w.sup.Do("POST", "/v1/claim-requests/"+req.ID+"/approve", map[string]any{"reason": "fits"}).Expect(http.StatusOK).JSON(&decided)
				if decided.Status != "approved" || pwStr(decided.DeciderID) != w.sup.ID {
					t.Fatalf("approved request %+v", decided)
				}
				if got := w.get(kind, id); got.owner() != rep.ID {
					t.Fatalf("approved record owned by %q, want %s", got.owner(), rep.ID)
				}
				if n := w.owns(rep, kind); n != 1 {
					t.Fatalf("counter %d, want 1", n)
				}
				h := w.history(kind, id)
				if last := h[len(h)-1]; last.Operation != "claim" || pwStr(last.ToOwnerID) != rep.ID || pwStr(last.ActorID) != w.sup.ID {
					t.Fatalf("history %+v", last)
				}
				w.sup.Do("POST", "/v1/claim-requests/"+req.ID+"/approve", map[string]any{}).ExpectProblem(409, "request_not_pending")
				w.sup.Do("POST", "/v1/claim-requests/"+req.ID+"/reject", map[string]any{}).ExpectProblem(409, "request_not_pending")

				// Reject leaves the record pooled.
				other := w.pooled(kind, pl)
				var r2 pwClaimRequest
				w.do(w.repB, kind, other, "claim", nil).Expect(http.StatusAccepted).JSON(&r2)
				w.sup.Do("POST", "/v1/claim-requests/"+r2.ID+"/reject", map[string]any{"reason": "no"}).Expect(http.StatusOK).JSON(&decided)
				if decided.Status != "rejected" || pwStr(decided.Reason) != "no" {
					t.Fatalf("rejected request %+v", decided)
				}
				if got := w.get(kind, other); got.OwnerID != nil {
					t.Fatalf("rejected record owned by %q", got.owner())
				}
				if ops := pwOps(w.history(kind, other)); !slices.Equal(ops, []string{"create"}) {
					t.Fatalf("history after reject %v", ops)
				}
				w.sup.Do("POST", "/v1/claim-requests/"+r2.ID+"/approve", map[string]any{}).ExpectProblem(409, "request_not_pending")

				// Approval re-checks the rules for the requester: at his cap
				// by then, it is refused and the request stays pending.
				capped := w.rep(org.Caps{MaxOwnedLeads: pwIntp(1), MaxOwnedCustomers: pwIntp(1)})
				third := w.pooled(kind, pl)
				var r3 pwClaimRequest
				w.do(capped, kind, third, "claim", nil).Expect(http.StatusAccepted).JSON(&r3)
				w.owned(capped, kind)
				w.sup.Do("POST", "/v1/claim-requests/"+r3.ID+"/approve", map[string]any{}).ExpectProblem(409, "cap_exceeded")
				if !pwHasRequest(w.claimRequests(w.sup, "pending"), r3.ID) {
					t.Fatal("a refused approval decided the request")
				}
				if got := w.get(kind, third); got.OwnerID != nil {
					t.Fatalf("refused approval gave the record to %q", got.owner())
				}
				w.sup.Do("POST", "/v1/claim-requests/"+r3.ID+"/reject", map[string]any{}).Expect(http.StatusOK)
				// And a request filed while the record was pooled cannot be
				// approved once someone else owns it.
				fourth := w.pooled(kind, pl)
				var r4 pwClaimRequest
				w.do(rep, kind, fourth, "claim", nil).Expect(http.StatusAccepted).JSON(&r4)
				w.do(w.admin, kind, fourth, "assign", map[string]any{"ownerId": w.repC.ID}).Expect(http.StatusOK)
				w.admin.Do("POST", "/v1/claim-requests/"+r4.ID+"/approve", map[string]any{}).ExpectProblem(409, "already_owned")
				// The pool's manager can still decide it, though the new owner
				// is outside his team.
				w.sup.Do("POST", "/v1/claim-requests/"+r4.ID+"/approve", map[string]any{}).ExpectProblem(409, "already_owned")
				w.sup.Do("POST", "/v1/claim-requests/"+r4.ID+"/reject", map[string]any{}).Expect(http.StatusOK)
				if got := w.get(kind, fourth); got.owner() != w.repC.ID {
					t.Fatalf("owner after refused approval %q", got.owner())
				}
			})
		}
	})
}

// ---- auto-assignment ----

func TestPoolRulesAutoAssign(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		team := w.newTeam(nil)
		// Members in id order (ids are time-ordered): r1, r2 (at his cap), r3.
		r1 := w.user("rep", &team)
		r2 := w.user("rep", &team, org.Caps{MaxOwnedLeads: pwIntp(1)})
		r3 := w.user("rep", &team)
		w.user("supervisor", &team) // supervisors are not auto-assigned
		w.owned(r2, "lead")
		pl := w.pool("lead", map[string]any{"memberTeamIds": []string{team.String()}, "autoAssign": "roundRobin"})

		var ids []string
		for i, want := range []pwActor{r1, r3, r1, r3} {
			r := w.create(w.admin, "lead", pl)
			if r.Placement != "autoAssigned" || r.owner() != want.ID {
				t.Fatalf("lead %d: placement %q owner %q, want autoAssigned to %s", i, r.Placement, r.owner(), want.Email)
			}
			h := w.history("lead", r.ID)
			if ops := pwOps(h); !slices.Equal(ops, []string{"create", "autoAssign"}) {
				t.Fatalf("lead %d: history %v", i, ops)
			}
			if h[1].ActorType != "system" || pwStr(h[1].ToOwnerID) != want.ID {
				t.Fatalf("lead %d: autoAssign row %+v", i, h[1])
			}
			ids = append(ids, r.ID)
		}
		if a, b, c := w.owns(r1, "lead"), w.owns(r2, "lead"), w.owns(r3, "lead"); a != 2 || b != 1 || c != 2 {
			t.Fatalf("counters %d %d %d, want 2 1 2", a, b, c)
		}
		// A returned record goes to the next member, never straight back
		// to the one who returned it.
		var got pwRecord
		w.do(r3, "lead", ids[1], "return", map[string]any{"reason": "busy"}).Expect(http.StatusOK).JSON(&got)
		if got.owner() != r1.ID {
			t.Fatalf("returned lead went to %q, want r1", got.owner())
		}
		if ops := pwOps(w.history("lead", ids[1])); !slices.Equal(ops, []string{"create", "autoAssign", "return", "autoAssign"}) {
			t.Fatalf("history %v", ops)
		}
		// When every member is at his cap the record stays pooled.
		w.admin.Do("PATCH", "/v1/teams/"+team.String(), map[string]any{"maxOwnedLeads": 1}, "If-Match", w.admin.ETag("/v1/teams/"+team.String())).Expect(http.StatusOK)
		r := w.create(w.admin, "lead", pl)
		if r.Placement != "pooled" || r.OwnerID != nil {
			t.Fatalf("with everyone at cap: placement %q owner %q", r.Placement, r.owner())
		}
		// leastLoaded picks the member with the fewest records.
		w.admin.Do("PATCH", "/v1/teams/"+team.String(), map[string]any{"maxOwnedLeads": nil}, "If-Match", w.admin.ETag("/v1/teams/"+team.String())).Expect(http.StatusOK)
		w.admin.Do("PATCH", "/v1/pools/"+pl, map[string]any{"autoAssign": "leastLoaded"}, "If-Match", w.admin.ETag("/v1/pools/"+pl)).Expect(http.StatusOK)
		if r := w.create(w.admin, "lead", pl); r.owner() != r3.ID {
			t.Fatalf("leastLoaded gave the lead to %q, want r3 (owns 1)", r.owner())
		}
	})
}

// ---- who may act on what ----

func TestPoolRulesScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		for _, kind := range pwKinds {
			t.Run(kind, func(t *testing.T) {
				w.sub(t)
				// Another rep's record does not exist for a rep, whatever he
				// tries; it does for the owner's supervisor and not for
				// another team's.
				theirs := w.owned(w.repA, kind)
				w.do(w.repA, kind, theirs, "freeze", nil).Expect(http.StatusOK)
				ops := []struct {
					op   string
					body any
				}{
					{"claim", nil},
					{"return", map[string]any{"reason": "x"}},
					{"transfer", map[string]any{"ownerId": w.repB.ID}},
					{"freeze", nil},
					{"unfreeze", nil},
					{"invalidate", map[string]any{"reason": "x"}},
				}
				if kind == "lead" {
					ops = append(ops, struct {
						op   string
						body any
					}{"convert", map[string]any{}})
				}
				for _, o := range ops {
					// Both are members of the record's (default) pool: a
					// claim tells them it is owned, anything else that it
					// does not exist.
					status, code := 404, "not_found"
					if o.op == "claim" {
						status, code = 409, "already_owned"
					}
					w.do(w.repB, kind, theirs, o.op, o.body).ExpectProblem(status, code)
					w.do(w.sup2, kind, theirs, o.op, o.body).ExpectProblem(status, code)
				}
				for _, c := range []pwActor{w.repB, w.repC, w.sup2} {
					c.Do("GET", "/v1/"+kind+"s/"+theirs, nil).ExpectProblem(404, "not_found")
					c.Do("GET", "/v1/"+kind+"s/"+theirs+"/history", nil).ExpectProblem(404, "not_found")
				}
				w.sup.Do("GET", "/v1/"+kind+"s/"+theirs, nil).Expect(http.StatusOK)
				w.do(w.sup, kind, theirs, "unfreeze", nil).Expect(http.StatusOK)
				if got := w.get(kind, theirs); got.owner() != w.repA.ID || got.FrozenUntil != nil {
					t.Fatalf("after the refusals: %+v", got)
				}

				// A pooled record of a pool whose members exclude his team
				// does not exist for a rep either.
				pl := w.pool(kind, map[string]any{"memberTeamIds": []string{w.team2.String()}})
				hidden := w.pooled(kind, pl)
				w.do(w.repA, kind, hidden, "claim", nil).ExpectProblem(404, "not_found")
				w.repA.Do("GET", "/v1/"+kind+"s/"+hidden, nil).ExpectProblem(404, "not_found")
				w.repA.Do("GET", "/v1/"+kind+"s/"+hidden+"/history", nil).ExpectProblem(404, "not_found")
				w.sup.Do("GET", "/v1/"+kind+"s/"+hidden, nil).ExpectProblem(404, "not_found")
				var list struct {
					Items []pwRecord `json:"items"`
				}
				w.repA.Do("GET", "/v1/"+kind+"s?poolId="+pl, nil).Expect(http.StatusOK).JSON(&list)
				if len(list.Items) != 0 {
					t.Fatalf("rep lists %d records of a pool he is not a member of", len(list.Items))
				}
				// Members (and members of sub-teams) may claim.
				sub := w.env.Team("sub", &w.team2)
				subRep := w.user("rep", &sub.ID)
				w.do(subRep, kind, hidden, "claim", nil).Expect(http.StatusOK)
			})
		}
	})
}

// ---- pools and their rule versions ----

func TestPoolRulesPools(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newPWWorld(t, databaseURL)
		pl := w.pool("lead", map[string]any{"managerIds": []string{w.sup.ID}, "idleDays": 30})
		type poolView struct {
			RuleVersion int  `json:"ruleVersion"`
			IdleDays    *int `json:"idleDays"`
		}
		var p poolView
		w.sup.Do("PATCH", "/v1/pools/"+pl, map[string]any{"name": "East pool"}, "If-Match", w.sup.ETag("/v1/pools/"+pl)).Expect(http.StatusOK).JSON(&p)
		if p.RuleVersion != 1 {
			t.Fatalf("a rename made rule version %d", p.RuleVersion)
		}
		w.sup.Do("PATCH", "/v1/pools/"+pl, map[string]any{"idleDays": 14}, "If-Match", w.sup.ETag("/v1/pools/"+pl)).Expect(http.StatusOK).JSON(&p)
		if p.RuleVersion != 2 || p.IdleDays == nil || *p.IdleDays != 14 {
			t.Fatalf("after a rule change %+v", p)
		}
		w.admin.Do("PATCH", "/v1/pools/"+pl, map[string]any{"dailyClaimLimit": 5, "freezeMaxDays": nil}, "If-Match", w.admin.ETag("/v1/pools/"+pl)).Expect(http.StatusOK).JSON(&p)
		if p.RuleVersion != 3 {
			t.Fatalf("rule version %d, want 3", p.RuleVersion)
		}
		w.sup2.Do("PATCH", "/v1/pools/"+pl, map[string]any{"idleDays": 1}, "If-Match", "*").ExpectProblem(403, "wrong_pool")
		w.sup.Do("PATCH", "/v1/pools/"+pl, map[string]any{"managerIds": []string{w.sup2.ID}}, "If-Match", w.sup.ETag("/v1/pools/"+pl)).ExpectProblem(403, "forbidden")
		w.repA.Do("PATCH", "/v1/pools/"+pl, map[string]any{"idleDays": 1}, "If-Match", "*").ExpectProblem(403, "forbidden")
		w.sup.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": "mine"}).ExpectProblem(403, "forbidden")
		// Records claimed after the change carry the new version.
		id := w.claimed(w.repA, "lead", pl)
		if h := w.history("lead", id); h[0].RuleVersion != 3 || h[1].RuleVersion != 3 {
			t.Fatalf("history rule versions %d %d, want 3", h[0].RuleVersion, h[1].RuleVersion)
		}
	})
}
