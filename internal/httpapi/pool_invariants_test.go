package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// The invariants of domain.md, checked under concurrent load through the
// real HTTP stack and then against the database. The load helpers take a
// list of servers so that the replica test can spread the same load over
// two app instances sharing one database.

// pwOrg is the organisation of a load test: one team with reps (capped),
// its supervisor and an admin, each logged in on every server.
type pwOrg struct {
	servers     []string // base URLs
	db          *ent.Client
	admin, sup  pwLoadUser
	reps        []pwLoadUser
	defaultPool string
	capLeads    int
	maxFrozen   int
}

// pwLoadUser is a user with one access token per server.
type pwLoadUser struct {
	ID     uuid.UUID
	Email  string
	tokens []string
	// on is the client of the first server, for sequential setup.
	on *apitest.Client
}

// newPWOrg creates the organisation through envs[0] and logs everyone in
// on every env.
func newPWOrg(t *testing.T, envs []*apitest.Env, reps, capLeads, maxFrozen int) *pwOrg {
	t.Helper()
	first := envs[0]
	o := &pwOrg{db: first.App.Store.Client, capLeads: capLeads, maxFrozen: maxFrozen}
	for _, e := range envs {
		o.servers = append(o.servers, e.URL)
	}
	team := first.Team("T", nil)
	mk := func(role string, teamID *uuid.UUID, caps ...org.Caps) pwLoadUser {
		u, c := first.User(role, teamID, caps...)
		lu := pwLoadUser{ID: u.ID, Email: u.Email, tokens: []string{c.Bearer}, on: c}
		for _, e := range envs[1:] {
			lu.tokens = append(lu.tokens, e.Login(u.Email, apitest.Password).Bearer)
		}
		return lu
	}
	o.admin = mk("admin", nil)
	o.sup = mk("supervisor", &team.ID)
	for range reps {
		o.reps = append(o.reps, mk("rep", &team.ID, org.Caps{MaxOwnedLeads: pwIntp(capLeads), MaxFrozen: pwIntp(maxFrozen)}))
	}
	var page struct {
		Items []struct {
			ID        string `json:"id"`
			IsDefault bool   `json:"isDefault"`
		} `json:"items"`
	}
	o.admin.on.Do("GET", "/v1/pools?kind=lead", nil).Expect(http.StatusOK).JSON(&page)
	for _, p := range page.Items {
		if p.IsDefault {
			o.defaultPool = p.ID
		}
	}
	if o.defaultPool == "" {
		t.Fatal("no default lead pool")
	}
	return o
}

// pwHTTP is shared by every load goroutine; the default transport keeps
// only two idle connections per host.
var pwHTTP = &http.Client{
	Timeout:   2 * time.Minute,
	Transport: &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute},
}

// pwReply is the outcome of one load request.
type pwReply struct {
	status int
	code   string
	body   []byte
}

// call sends one request as u to server s, never failing the test itself
// (it runs on load goroutines).
func (o *pwOrg) call(s int, u pwLoadUser, method, path string, body any) (pwReply, error) {
	var r io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return pwReply{}, err
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, o.servers[s]+path, r)
	if err != nil {
		return pwReply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+u.tokens[s])
	res, err := pwHTTP.Do(req)
	if err != nil {
		return pwReply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return pwReply{}, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	out := pwReply{status: res.StatusCode, body: raw}
	if res.StatusCode >= 400 {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(raw, &p)
		out.code = p.Code
	}
	return out, nil
}

// createPooled has the admin create n pooled leads in the default pool, a
// few at a time, and returns their ids.
func (o *pwOrg) createPooled(t *testing.T, n int) []string {
	t.Helper()
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body := pwRecordBody("lead")
			body["poolId"] = o.defaultPool
			res, err := o.call(i%len(o.servers), o.admin, "POST", "/v1/leads", body)
			if err == nil && res.status != http.StatusCreated {
				err = fmt.Errorf("create pooled lead: %d %s", res.status, res.body)
			}
			if err != nil {
				errs[i] = err
				return
			}
			var r pwRecord
			if err := json.Unmarshal(res.body, &r); err != nil {
				errs[i] = err
				return
			}
			if r.OwnerID != nil || r.Placement != "pooled" {
				errs[i] = fmt.Errorf("admin-created lead placed %q owner %q", r.Placement, r.owner())
			}
			ids[i] = r.ID
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

// ---- the mixed load ----

// pwLoadStats counts what a load run did.
type pwLoadStats struct {
	mu sync.Mutex
	// ok counts successes per operation; each wrote one history row
	// (batch claims: one per claimed item).
	ok map[string]int
	// outcomes counts "op status code" of every request.
	outcomes map[string]int
	// unexpected lists replies that no rule explains (5xx among them).
	unexpected []string
	requests   int
}

// historyRows is the number of history rows the successes wrote.
func (s *pwLoadStats) historyRows() int {
	n := 0
	for _, v := range s.ok {
		n += v
	}
	return n
}

func (s *pwLoadStats) String() string {
	var ops []string
	for op, n := range s.ok {
		ops = append(ops, fmt.Sprintf("%s=%d", op, n))
	}
	sort.Strings(ops)
	var outs []string
	for k, n := range s.outcomes {
		outs = append(outs, fmt.Sprintf("%s:%d", k, n))
	}
	sort.Strings(outs)
	return fmt.Sprintf("%d requests; successes: %s\noutcomes: %s", s.requests, strings.Join(ops, " "), strings.Join(outs, ", "))
}

// pwExpected are the refusals the rules give under this load: records
// taken or moved meanwhile (404 once someone else owns it), caps, frozen
// records and limits.
var pwExpected = map[string]bool{
	"404 not_found": true, "409 already_owned": true, "409 cap_exceeded": true, "409 record_frozen": true,
	"409 frozen_limit_reached": true, "409 not_owned": true, "409 not_frozen": true, "409 record_invalid": true,
}

// pwLoad runs the random mix of domain.md's operations.
type pwLoad struct {
	o     *pwOrg
	stats *pwLoadStats
	mu    sync.Mutex
	// hint is each lead's owner as last seen in a reply ("" pooled), to
	// aim operations at records they can succeed on; stale hints only
	// make more refusals.
	hint map[string]string
	ids  []string
}

func newPWLoad(o *pwOrg, ids []string) *pwLoad {
	l := &pwLoad{o: o, stats: &pwLoadStats{ok: map[string]int{}, outcomes: map[string]int{}}, hint: map[string]string{}}
	for _, id := range ids {
		l.hint[id] = ""
		l.ids = append(l.ids, id)
	}
	return l
}

// pick returns up to n distinct random leads whose hinted owner is owner
// (any lead when none matches).
func (l *pwLoad) pick(rng *rand.Rand, owner string, n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var match []string
	for _, id := range l.ids {
		if l.hint[id] == owner {
			match = append(match, id)
		}
	}
	if len(match) < n {
		match = append(match, l.ids...)
	}
	rng.Shuffle(len(match), func(i, j int) { match[i], match[j] = match[j], match[i] })
	var out []string
	for _, id := range match {
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
		if len(out) == n {
			break
		}
	}
	return out
}

func (l *pwLoad) setHint(id, owner string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, known := l.hint[id]; !known {
		l.ids = append(l.ids, id)
	}
	l.hint[id] = owner
}

// record notes a reply: success, expected refusal or anomaly.
func (l *pwLoad) record(op string, r pwReply, err error, okCount int) {
	s := l.stats
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if err != nil {
		s.unexpected = append(s.unexpected, fmt.Sprintf("%s: %v", op, err))
		return
	}
	key := fmt.Sprintf("%d %s", r.status, r.code)
	s.outcomes[op+" "+key]++
	switch {
	case r.status < 300:
		s.ok[op] += okCount
	case !pwExpected[key]:
		s.unexpected = append(s.unexpected, fmt.Sprintf("%s: %d %s", op, r.status, r.body))
	}
}

// step runs one random operation on server s.
func (l *pwLoad) step(rng *rand.Rand, s int) {
	o := l.o
	rep := o.reps[rng.IntN(len(o.reps))]
	me := rep.ID.String()
	switch p := rng.IntN(100); {
	case p < 20: // claim
		id := l.pick(rng, "", 1)[0]
		r, err := o.call(s, rep, "POST", "/v1/leads/"+id+"/claim", nil)
		if err == nil && r.status == http.StatusOK {
			l.setHint(id, me)
		}
		l.record("claim", r, err, 1)
	case p < 30: // batch claim of three
		ids := l.pick(rng, "", 3)
		r, err := o.call(s, rep, "POST", "/v1/leads/batch-claim", map[string]any{"ids": ids})
		n := 0
		if err == nil && r.status == http.StatusOK {
			var res pwBatchResult
			if err = json.Unmarshal(r.body, &res); err == nil {
				for _, it := range res.Results {
					if it.OK {
						n++
						l.setHint(it.ID, me)
					} else if !pwExpected["409 "+pwStr(it.Code)] && !pwExpected["404 "+pwStr(it.Code)] {
						err = fmt.Errorf("batch item refused with %q", pwStr(it.Code))
					}
				}
			}
		}
		l.record("batchClaim", r, err, n)
	case p < 45: // return
		id := l.pick(rng, me, 1)[0]
		r, err := o.call(s, rep, "POST", "/v1/leads/"+id+"/return", map[string]any{"reason": "load"})
		if err == nil && r.status == http.StatusOK {
			l.setHint(id, "")
		}
		l.record("return", r, err, 1)
	case p < 55: // assign by the supervisor
		id := l.pick(rng, "", 1)[0]
		r, err := o.call(s, o.sup, "POST", "/v1/leads/"+id+"/assign", map[string]any{"ownerId": me})
		if err == nil && r.status == http.StatusOK {
			l.setHint(id, me)
		}
		l.record("assign", r, err, 1)
	case p < 70: // transfer to another rep
		id := l.pick(rng, me, 1)[0]
		to := o.reps[rng.IntN(len(o.reps))].ID.String()
		if to == me {
			to = o.reps[(slices.IndexFunc(o.reps, func(u pwLoadUser) bool { return u.ID == rep.ID })+1)%len(o.reps)].ID.String()
		}
		r, err := o.call(s, rep, "POST", "/v1/leads/"+id+"/transfer", map[string]any{"ownerId": to})
		if err == nil && r.status == http.StatusOK {
			l.setHint(id, to)
		}
		l.record("transfer", r, err, 1)
	case p < 80: // freeze
		id := l.pick(rng, me, 1)[0]
		r, err := o.call(s, rep, "POST", "/v1/leads/"+id+"/freeze", map[string]any{})
		l.record("freeze", r, err, 1)
	case p < 90: // unfreeze
		id := l.pick(rng, me, 1)[0]
		r, err := o.call(s, rep, "POST", "/v1/leads/"+id+"/unfreeze", nil)
		l.record("unfreeze", r, err, 1)
	case p < 94: // convert
		id := l.pick(rng, me, 1)[0]
		r, err := o.call(s, rep, "POST", "/v1/leads/"+id+"/convert", map[string]any{})
		if err == nil && r.status == http.StatusCreated {
			l.setHint(id, "converted")
		}
		l.record("convert", r, err, 1)
	default: // create: owned, or pooled at the cap
		r, err := o.call(s, rep, "POST", "/v1/leads", pwRecordBody("lead"))
		if err == nil && r.status == http.StatusCreated {
			var rec pwRecord
			if err = json.Unmarshal(r.body, &rec); err == nil {
				// (The owner shown is read after the commit; another
				// request may already have moved the lead.)
				if rec.Placement != "owned" && rec.Placement != "pooled" || rec.PoolID != o.defaultPool {
					err = fmt.Errorf("created lead placed %q in pool %s", rec.Placement, rec.PoolID)
				}
				owner := ""
				if rec.Placement == "owned" {
					owner = me
				}
				l.setHint(rec.ID, owner)
			}
		}
		l.record("create", r, err, 1)
	}
}

// run starts goroutines × iterations random operations, spread over the
// servers, and waits for them.
func (l *pwLoad) run(t *testing.T, goroutines, iterations int) {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	t.Logf("load seed %d", seed)
	start := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := range iterations {
				l.step(rng, (g+i)%len(l.o.servers))
			}
		}()
	}
	wg.Wait()
	t.Logf("%d goroutines × %d iterations in %v\n%s", goroutines, iterations, time.Since(start).Round(time.Millisecond), l.stats)
	if n := len(l.stats.unexpected); n > 0 {
		shown := l.stats.unexpected[:min(n, 20)]
		t.Fatalf("%d unexpected replies, e.g.:\n%s", n, strings.Join(shown, "\n"))
	}
}

// ---- checking the database ----

// check asserts domain.md's invariants on the stored leads, counters and
// history: counters equal what each user owns and stay under the cap, no
// rep holds more frozen records than allowed, replaying history gives
// every owner, and history has exactly wantHistory rows (one per change)
// with one domain event each.
func (o *pwOrg) check(t *testing.T, wantHistory int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	leads, err := o.db.Lead.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	users, err := o.db.User.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	active, frozen := map[uuid.UUID]int{}, map[uuid.UUID]int{}
	for _, l := range leads {
		if l.OwnerID == nil {
			if l.FrozenUntil != nil {
				t.Errorf("pooled lead %s is frozen until %v", l.ID, l.FrozenUntil)
			}
			continue
		}
		if l.Status == lead.StatusActive {
			active[*l.OwnerID]++
		}
		if l.FrozenUntil != nil && l.FrozenUntil.After(now) {
			frozen[*l.OwnerID]++
		}
	}
	isRep := map[uuid.UUID]bool{}
	for _, r := range o.reps {
		isRep[r.ID] = true
	}
	owned := 0
	for _, u := range users {
		if u.OwnedLeads != active[u.ID] {
			t.Errorf("user %s: owned_leads counter %d, owns %d active leads", u.Email, u.OwnedLeads, active[u.ID])
		}
		if isRep[u.ID] && active[u.ID] > o.capLeads {
			t.Errorf("rep %s owns %d leads, cap %d", u.Email, active[u.ID], o.capLeads)
		}
		if isRep[u.ID] && frozen[u.ID] > o.maxFrozen {
			t.Errorf("rep %s holds %d frozen leads, maxFrozen %d", u.Email, frozen[u.ID], o.maxFrozen)
		}
		owned += active[u.ID]
	}

	// Conversions made customers: counted on their owners, one create row
	// each.
	customers, err := o.db.Customer.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ownedCustomers := map[uuid.UUID]int{}
	for _, c := range customers {
		if c.OwnerID != nil && c.Status == customer.StatusActive && !c.DealStatus {
			ownedCustomers[*c.OwnerID]++
		}
	}
	for _, u := range users {
		if u.OwnedCustomers != ownedCustomers[u.ID] {
			t.Errorf("user %s: owned_customers counter %d, owns %d customers", u.Email, u.OwnedCustomers, ownedCustomers[u.ID])
		}
	}
	converted := 0
	for _, l := range leads {
		if l.Status == lead.StatusConverted {
			converted++
			if l.ConvertedCustomerID == nil {
				t.Errorf("converted lead %s names no customer", l.ID)
			}
		}
	}
	customerRows, err := o.db.OwnershipChange.Query().Where(ownershipchange.RecordKindEQ(ownershipchange.RecordKindCustomer)).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(customers) != converted || customerRows != len(customers) {
		t.Errorf("%d converted leads, %d customers, %d customer history rows: want all equal", converted, len(customers), customerRows)
	}

	rows, err := o.db.OwnershipChange.Query().Where(ownershipchange.RecordKindEQ(ownershipchange.RecordKindLead)).
		Order(ent.Asc(ownershipchange.FieldID)).All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	replayed := map[uuid.UUID]*uuid.UUID{}
	seen := map[uuid.UUID]bool{}
	for _, h := range rows {
		cur := replayed[h.RecordID]
		if !seen[h.RecordID] && h.Operation != ownershipchange.OperationCreate {
			t.Errorf("lead %s: first history row is %s, want create", h.RecordID, h.Operation)
		}
		if seen[h.RecordID] && h.Operation == ownershipchange.OperationCreate {
			t.Errorf("lead %s: second create row", h.RecordID)
		}
		seen[h.RecordID] = true
		if !pwSameID(h.FromOwnerID, cur) {
			t.Errorf("lead %s: %s row from %v, but replay says the owner was %v (a change was lost or recorded twice)",
				h.RecordID, h.Operation, h.FromOwnerID, cur)
		}
		switch h.Operation {
		case ownershipchange.OperationCreate, ownershipchange.OperationClaim, ownershipchange.OperationAssign,
			ownershipchange.OperationAutoAssign, ownershipchange.OperationTransfer:
			replayed[h.RecordID] = h.ToOwnerID
		case ownershipchange.OperationReturn, ownershipchange.OperationRestore, ownershipchange.OperationReclaim:
			replayed[h.RecordID] = nil
		}
	}
	for _, l := range leads {
		if !seen[l.ID] {
			t.Errorf("lead %s has no history", l.ID)
		}
		if !pwSameID(replayed[l.ID], l.OwnerID) {
			t.Errorf("lead %s: owner %v, history replays to %v", l.ID, l.OwnerID, replayed[l.ID])
		}
	}
	if len(rows) != wantHistory {
		t.Errorf("%d history rows, want %d (one per create and per successful operation)", len(rows), wantHistory)
	}
	events, err := o.db.DomainEvent.Query().Where(domainevent.SubjectKind("lead")).Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if events != len(rows) {
		t.Errorf("%d lead events for %d history rows", events, len(rows))
	}
	t.Logf("checked %d leads (%d owned, %d frozen), %d history rows, %d users", len(leads), owned, pwSum(frozen), len(rows), len(users))
}

func pwSameID(a, b *uuid.UUID) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func pwSum(m map[uuid.UUID]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ---- races on one record and on one rep's cap ----

// pwConcurrently runs fns at once (released together) and returns their
// replies.
func pwConcurrently(fns ...func() (pwReply, error)) ([]pwReply, []error) {
	out, errs := make([]pwReply, len(fns)), make([]error, len(fns))
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i, fn := range fns {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			out[i], errs[i] = fn()
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
	return out, errs
}

// ownedBy lists the active leads a user owns, from the database.
func (o *pwOrg) ownedBy(t *testing.T, u uuid.UUID) []*ent.Lead {
	t.Helper()
	ls, err := o.db.Lead.Query().Where(lead.OwnerID(u), lead.StatusEQ(lead.StatusActive)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// counter reads a user's owned_leads counter.
func (o *pwOrg) counter(t *testing.T, u uuid.UUID) int {
	t.Helper()
	row, err := o.db.User.Get(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	return row.OwnedLeads
}

// releaseAll has the supervisor return every owned lead, so that races
// start from reps under their cap.
func (o *pwOrg) releaseAll(t *testing.T) {
	t.Helper()
	owned, err := o.db.Lead.Query().Where(lead.OwnerIDNotNil(), lead.StatusEQ(lead.StatusActive)).All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range owned {
		res, err := o.call(0, o.sup, "POST", "/v1/leads/"+l.ID.String()+"/return", map[string]any{"reason": "reset"})
		if err != nil || res.status != http.StatusOK {
			t.Fatalf("release %s: %v %d %s", l.ID, err, res.status, res.body)
		}
	}
}

// fill makes rep own exactly want active leads: the supervisor assigns
// him new ones, or he returns what is over.
func (o *pwOrg) fill(t *testing.T, rep pwLoadUser, want int) {
	t.Helper()
	mine := o.ownedBy(t, rep.ID)
	for i := len(mine); i < want; i++ {
		id := o.createPooled(t, 1)[0]
		res, err := o.call(0, o.sup, "POST", "/v1/leads/"+id+"/assign", map[string]any{"ownerId": rep.ID})
		if err != nil || res.status != http.StatusOK {
			t.Fatalf("fill: %v %d %s", err, res.status, res.body)
		}
	}
	for _, l := range mine[min(want, len(mine)):] {
		res, err := o.call(0, rep, "POST", "/v1/leads/"+l.ID.String()+"/return", map[string]any{"reason": "reset"})
		if err != nil || res.status != http.StatusOK {
			t.Fatalf("reset: %v %d %s", err, res.status, res.body)
		}
	}
	if n, c := len(o.ownedBy(t, rep.ID)), o.counter(t, rep.ID); n != want || c != want {
		t.Fatalf("rep owns %d (counter %d), want %d", n, c, want)
	}
}

// pool creates a lead pool with rules as the admin and returns its id.
func (o *pwOrg) pool(t *testing.T, rules map[string]any) string {
	t.Helper()
	body := map[string]any{"kind": "lead", "name": fmt.Sprintf("Pool %d", pwSeq.Add(1))}
	for k, v := range rules {
		body[k] = v
	}
	return o.admin.on.Do("POST", "/v1/pools", body).Expect(http.StatusCreated).Map()["id"].(string)
}

// createIn has the admin create n leads in pool at once and returns the
// replies.
func (o *pwOrg) createIn(t *testing.T, pool string, n int) []pwRecord {
	t.Helper()
	var fns []func() (pwReply, error)
	for i := range n {
		fns = append(fns, func() (pwReply, error) {
			body := pwRecordBody("lead")
			body["poolId"] = pool
			return o.call(i%len(o.servers), o.admin, "POST", "/v1/leads", body)
		})
	}
	replies, errs := pwConcurrently(fns...)
	out := make([]pwRecord, n)
	for i, r := range replies {
		if errs[i] != nil || r.status != http.StatusCreated {
			t.Fatalf("create in pool: %v %d %s", errs[i], r.status, r.body)
		}
		if err := json.Unmarshal(r.body, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// races runs the targeted races: many claims of one record, two claims by
// a rep one below his cap, every way of gaining a record at once, a create
// at the cap, claims past a daily limit, a claim back during a return, two
// approvals for one record and auto-assignment into the last free places.
// Requests go to the servers in turn.
func (o *pwOrg) races(t *testing.T) {
	t.Run("32 claims of one record", func(t *testing.T) {
		for round := range 3 {
			id := o.createPooled(t, 1)[0]
			var fns []func() (pwReply, error)
			for i := range 32 {
				rep := o.reps[i%len(o.reps)]
				fns = append(fns, func() (pwReply, error) { return o.call(i%len(o.servers), rep, "POST", "/v1/leads/"+id+"/claim", nil) })
			}
			replies, errs := pwConcurrently(fns...)
			var winners []string
			for i, r := range replies {
				switch {
				case errs[i] != nil:
					t.Fatal(errs[i])
				case r.status == http.StatusOK:
					winners = append(winners, o.reps[i%len(o.reps)].Email)
				case r.status == 404 && r.code == "not_found", r.status == 409 && r.code == "already_owned",
					r.status == 409 && r.code == "cap_exceeded":
				default:
					t.Fatalf("round %d claim %d: %d %s", round, i, r.status, r.body)
				}
			}
			if len(winners) != 1 {
				t.Fatalf("round %d: %d claims succeeded (%v), want exactly 1", round, len(winners), winners)
			}
			claims, err := o.db.OwnershipChange.Query().Where(ownershipchange.RecordID(uuid.MustParse(id)),
				ownershipchange.OperationEQ(ownershipchange.OperationClaim)).Count(context.Background())
			if err != nil || claims != 1 {
				t.Fatalf("round %d: %d claim rows (%v), want 1", round, claims, err)
			}
		}
	})

	// rep is the one the cap races are about; he starts owning cap−1.
	rep := o.reps[0]
	fill := func(t *testing.T, want int) { o.fill(t, rep, want) }

	t.Run("two claims one below the cap", func(t *testing.T) {
		for round := range 10 {
			fill(t, o.capLeads-1)
			ids := o.createPooled(t, 2)
			replies, errs := pwConcurrently(
				func() (pwReply, error) { return o.call(0, rep, "POST", "/v1/leads/"+ids[0]+"/claim", nil) },
				func() (pwReply, error) {
					return o.call(1%len(o.servers), rep, "POST", "/v1/leads/"+ids[1]+"/claim", nil)
				},
			)
			ok := 0
			for i, r := range replies {
				switch {
				case errs[i] != nil:
					t.Fatal(errs[i])
				case r.status == http.StatusOK:
					ok++
				case r.status == 409 && r.code == "cap_exceeded":
				default:
					t.Fatalf("round %d: %d %s", round, r.status, r.body)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d of two claims succeeded one below the cap, want 1", round, ok)
			}
			if n, c := len(o.ownedBy(t, rep.ID)), o.counter(t, rep.ID); n != o.capLeads || c != o.capLeads {
				t.Fatalf("round %d: owns %d (counter %d), want %d", round, n, c, o.capLeads)
			}
		}
	})

	t.Run("claim, assign, transfer and create one below the cap", func(t *testing.T) {
		giver := o.reps[1]
		for round := range 5 {
			fill(t, o.capLeads-1)
			ids := o.createPooled(t, 2)
			// giver needs a lead of his own to transfer.
			for len(o.ownedBy(t, giver.ID)) >= o.capLeads {
				l := o.ownedBy(t, giver.ID)[0]
				if res, err := o.call(0, giver, "POST", "/v1/leads/"+l.ID.String()+"/return", map[string]any{"reason": "reset"}); err != nil || res.status != 200 {
					t.Fatalf("giver reset: %v %d %s", err, res.status, res.body)
				}
			}
			gift := o.createPooled(t, 1)[0]
			if res, err := o.call(0, o.sup, "POST", "/v1/leads/"+gift+"/assign", map[string]any{"ownerId": giver.ID}); err != nil || res.status != 200 {
				t.Fatalf("giver's lead: %v %d %s", err, res.status, res.body)
			}
			srv := func(i int) int { return i % len(o.servers) }
			replies, errs := pwConcurrently(
				func() (pwReply, error) { return o.call(srv(0), rep, "POST", "/v1/leads/"+ids[0]+"/claim", nil) },
				func() (pwReply, error) {
					return o.call(srv(1), o.sup, "POST", "/v1/leads/"+ids[1]+"/assign", map[string]any{"ownerId": rep.ID})
				},
				func() (pwReply, error) {
					return o.call(srv(2), giver, "POST", "/v1/leads/"+gift+"/transfer", map[string]any{"ownerId": rep.ID})
				},
				func() (pwReply, error) { return o.call(srv(3), rep, "POST", "/v1/leads", pwRecordBody("lead")) },
			)
			gained := 0
			for i, r := range replies {
				if errs[i] != nil {
					t.Fatal(errs[i])
				}
				switch {
				case i == 3 && r.status == http.StatusCreated:
					var rec pwRecord
					if err := json.Unmarshal(r.body, &rec); err != nil {
						t.Fatal(err)
					}
					if rec.Placement == "owned" {
						gained++
					} else if rec.Placement != "pooled" || rec.OwnerID != nil {
						t.Fatalf("round %d: create placed %q owner %q", round, rec.Placement, rec.owner())
					}
				case r.status == http.StatusOK:
					gained++
				case r.status == 409 && r.code == "cap_exceeded":
				default:
					t.Fatalf("round %d, request %d: %d %s", round, i, r.status, r.body)
				}
			}
			if gained != 1 {
				t.Fatalf("round %d: the rep gained %d records one below his cap, want 1", round, gained)
			}
			if n, c := len(o.ownedBy(t, rep.ID)), o.counter(t, rep.ID); n != o.capLeads || c != o.capLeads {
				t.Fatalf("round %d: owns %d (counter %d), want %d", round, n, c, o.capLeads)
			}
		}
	})

	t.Run("create at the cap is pooled", func(t *testing.T) {
		fill(t, o.capLeads)
		for s := range o.servers {
			res, err := o.call(s, rep, "POST", "/v1/leads", pwRecordBody("lead"))
			if err != nil || res.status != http.StatusCreated {
				t.Fatalf("create: %v %d %s", err, res.status, res.body)
			}
			var rec pwRecord
			if err := json.Unmarshal(res.body, &rec); err != nil {
				t.Fatal(err)
			}
			if rec.Placement != "pooled" || rec.OwnerID != nil || rec.PoolID != o.defaultPool {
				t.Fatalf("created at cap: placement %q owner %q pool %s", rec.Placement, rec.owner(), rec.PoolID)
			}
		}
		if n := o.counter(t, rep.ID); n != o.capLeads {
			t.Fatalf("counter %d after creating at the cap, want %d", n, o.capLeads)
		}
	})

	t.Run("daily limit", func(t *testing.T) {
		claimer := o.reps[2]
		o.fill(t, claimer, 0)
		pl := o.pool(t, map[string]any{"dailyClaimLimit": 2})
		leads := o.createIn(t, pl, 6)
		var fns []func() (pwReply, error)
		for i, l := range leads {
			fns = append(fns, func() (pwReply, error) {
				return o.call(i%len(o.servers), claimer, "POST", "/v1/leads/"+l.ID+"/claim", nil)
			})
		}
		replies, errs := pwConcurrently(fns...)
		ok := 0
		for i, r := range replies {
			switch {
			case errs[i] != nil:
				t.Fatal(errs[i])
			case r.status == http.StatusOK:
				ok++
			case r.status == 409 && r.code == "daily_limit_reached":
			default:
				t.Fatalf("claim %d: %d %s", i, r.status, r.body)
			}
		}
		if ok != 2 {
			t.Fatalf("%d of 6 simultaneous claims succeeded under a daily limit of 2", ok)
		}
	})

	t.Run("return and claim back at once", func(t *testing.T) {
		claimer := o.reps[3]
		o.fill(t, claimer, 0)
		pl := o.pool(t, map[string]any{"claimCooldownDays": 1})
		for round, l := range o.createIn(t, pl, 5) {
			if res, err := o.call(0, claimer, "POST", "/v1/leads/"+l.ID+"/claim", nil); err != nil || res.status != http.StatusOK {
				t.Fatalf("claim: %v %d %s", err, res.status, res.body)
			}
			replies, errs := pwConcurrently(
				func() (pwReply, error) {
					return o.call(0, claimer, "POST", "/v1/leads/"+l.ID+"/return", map[string]any{"reason": "x"})
				},
				func() (pwReply, error) {
					return o.call(1%len(o.servers), claimer, "POST", "/v1/leads/"+l.ID+"/claim", nil)
				},
			)
			if errs[0] != nil || errs[1] != nil || replies[0].status != http.StatusOK {
				t.Fatalf("round %d: return %v %d %s", round, errs, replies[0].status, replies[0].body)
			}
			if c := replies[1]; c.status != 409 || (c.code != "already_owned" && c.code != "claim_cooldown") {
				t.Fatalf("round %d: claiming back during the return gave %d %s", round, c.status, c.body)
			}
		}
	})

	t.Run("two approvals for one record", func(t *testing.T) {
		a, b := o.reps[4], o.reps[5]
		o.fill(t, a, 0)
		o.fill(t, b, 0)
		pl := o.pool(t, map[string]any{"claimRequiresApproval": true, "managerIds": []string{o.sup.ID.String()}})
		for round, l := range o.createIn(t, pl, 3) {
			var reqs []string
			for _, u := range []pwLoadUser{a, b} {
				res, err := o.call(0, u, "POST", "/v1/leads/"+l.ID+"/claim", nil)
				if err != nil || res.status != http.StatusAccepted {
					t.Fatalf("request: %v %d %s", err, res.status, res.body)
				}
				var cr pwClaimRequest
				if err := json.Unmarshal(res.body, &cr); err != nil {
					t.Fatal(err)
				}
				reqs = append(reqs, cr.ID)
			}
			// Each request approved twice at once, by the manager and the admin.
			var fns []func() (pwReply, error)
			for i, id := range append(reqs, reqs...) {
				who := o.sup
				if i >= 2 {
					who = o.admin
				}
				fns = append(fns, func() (pwReply, error) {
					return o.call(i%len(o.servers), who, "POST", "/v1/claim-requests/"+id+"/approve", map[string]any{})
				})
			}
			replies, errs := pwConcurrently(fns...)
			ok := 0
			for i, r := range replies {
				switch {
				case errs[i] != nil:
					t.Fatal(errs[i])
				case r.status == http.StatusOK:
					ok++
				case r.status == 409 && (r.code == "already_owned" || r.code == "request_not_pending"):
				default:
					t.Fatalf("round %d approval %d: %d %s", round, i, r.status, r.body)
				}
			}
			if ok != 1 {
				t.Fatalf("round %d: %d approvals succeeded, want 1", round, ok)
			}
		}
	})

	t.Run("auto-assignment", func(t *testing.T) {
		free := 0
		for _, r := range o.reps {
			free += o.capLeads - len(o.ownedBy(t, r.ID))
		}
		pl := o.pool(t, map[string]any{"autoAssign": "roundRobin"})
		n := free + 5
		assigned := 0
		for _, r := range o.createIn(t, pl, n) {
			switch {
			case r.Placement == "autoAssigned":
				assigned++
			case r.Placement != "pooled":
				t.Fatalf("placement %q", r.Placement)
			}
		}
		if assigned != free {
			t.Fatalf("%d of %d leads auto-assigned with %d free places", assigned, n, free)
		}
		for _, r := range o.reps {
			if got := len(o.ownedBy(t, r.ID)); got != o.capLeads {
				t.Fatalf("rep %s owns %d after auto-assignment, want %d", r.Email, got, o.capLeads)
			}
		}
	})
}

// ---- the tests ----

// pwHistoryCount is the number of lead history rows in the database.
func (o *pwOrg) historyCount(t *testing.T) int {
	t.Helper()
	n, err := o.db.OwnershipChange.Query().Where(ownershipchange.RecordKindEQ(ownershipchange.RecordKindLead)).Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// pwMixedLoad seeds 100 pooled leads, runs the mixed load and checks the
// invariants.
func pwMixedLoad(t *testing.T, o *pwOrg, goroutines, iterations int) {
	t.Helper()
	before := o.historyCount(t)
	ids := o.createPooled(t, 100)
	l := newPWLoad(o, ids)
	l.run(t, goroutines, iterations)
	o.check(t, before+len(ids)+l.stats.historyRows())
}

func TestPoolInvariants(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		o := newPWOrg(t, []*apitest.Env{env}, 10, 3, 1)
		t.Run("mixed load", func(t *testing.T) { pwMixedLoad(t, o, 64, 30) })
		o.releaseAll(t)
		o.races(t)
		o.check(t, o.historyCount(t))
	})
}
