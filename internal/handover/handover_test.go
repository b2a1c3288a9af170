package handover_test

import (
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/claimrequest"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/handover"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func ptr[T any](v T) *T { return &v }

// fixture: a team with a supervisor, a leaver and a target rep; an admin;
// a supervisor of another team.
type fixture struct {
	w                      *testkit.World
	svc                    *handover.Service
	team                   uuid.UUID
	admin, sup, other      *auth.Principal
	leaver, target         *ent.User
	leaverP                *auth.Principal
	leadPool, customerPool uuid.UUID
}

// newFixture: the target may own targetLeadCap leads (nil: no cap).
func newFixture(t *testing.T, url string, targetLeadCap *int) *fixture {
	t.Helper()
	w := testkit.New(t, url, app.Config{})
	f := &fixture{w: w, svc: w.App.Handover}
	f.team = w.Team("sales", nil).ID
	otherTeam := w.Team("elsewhere", nil).ID
	_, f.admin = w.Actor(auth.RoleAdmin, nil)
	_, f.sup = w.Actor(auth.RoleSupervisor, &f.team)
	_, f.other = w.Actor(auth.RoleSupervisor, &otherTeam)
	f.leaver = w.User(auth.RoleRep, &f.team)
	f.leaverP = testkit.Principal(f.leaver)
	f.target = w.User(auth.RoleRep, &f.team, org.Caps{MaxOwnedLeads: targetLeadCap})
	f.leadPool, f.customerPool = pool.DefaultPoolID(kinds.Lead), pool.DefaultPoolID(kinds.Customer)
	return f
}

func (f *fixture) lead(p *auth.Principal) uuid.UUID {
	f.w.T.Helper()
	name := f.w.Unique("lead")
	v, err := f.w.App.Records.CreateLead(f.w.Ctx, p, records.LeadInput{Name: &name})
	if err != nil {
		f.w.T.Fatalf("create lead: %v", err)
	}
	if v.OwnerID == nil || *v.OwnerID != p.ID {
		f.w.T.Fatalf("lead not owned by its creator")
	}
	return v.ID
}

// customer creates a customer owned by p with n contacts.
func (f *fixture) customer(p *auth.Principal, contacts int) uuid.UUID {
	f.w.T.Helper()
	name := f.w.Unique("customer")
	v, err := f.w.App.Records.CreateCustomer(f.w.Ctx, p, records.CustomerInput{Name: &name})
	if err != nil {
		f.w.T.Fatalf("create customer: %v", err)
	}
	for range contacts {
		cn := f.w.Unique("contact")
		if _, err := f.w.App.Records.CreateContact(f.w.Ctx, p, v.ID, records.ContactInput{Name: &cn}); err != nil {
			f.w.T.Fatalf("create contact: %v", err)
		}
	}
	return v.ID
}

func (f *fixture) user(id uuid.UUID) *ent.User {
	f.w.T.Helper()
	u, err := f.w.Store.Client.User.Get(f.w.Ctx, id)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return u
}

func (f *fixture) get(id uuid.UUID) *ent.Handover {
	f.w.T.Helper()
	h, err := f.svc.Get(f.w.Ctx, f.admin, id)
	if err != nil {
		f.w.T.Fatalf("get handover: %v", err)
	}
	return h
}

// handovers counts the handover history rows and events of a record.
func (f *fixture) handovers(kind kinds.Kind, id uuid.UUID) (history, evs int) {
	f.w.T.Helper()
	history, err := f.w.Store.Client.OwnershipChange.Query().Where(ownershipchange.RecordID(id),
		ownershipchange.OperationEQ(ownershipchange.OperationHandover)).Count(f.w.Ctx)
	if err != nil {
		f.w.T.Fatal(err)
	}
	evs, err = f.w.Store.Client.DomainEvent.Query().Where(domainevent.SubjectID(id),
		domainevent.TypeEQ(string(kind)+".handed_over")).Count(f.w.Ctx)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return history, evs
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// TestHandoverToUserAtCap: a rep owning leads and customers (with
// contacts) hands over to a rep with room for one more lead: one lead and
// every customer move, the two other leads go back to their pool and are
// reported, each record gets one history row and one event, the counters
// follow, and a second handover moves nothing.
func TestHandoverToUserAtCap(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, ptr(2))
		f.lead(testkit.Principal(f.target)) // the target owns 1 of his 2
		leads := []uuid.UUID{f.lead(f.leaverP), f.lead(f.leaverP), f.lead(f.leaverP)}
		customers := []uuid.UUID{f.customer(f.leaverP, 2), f.customer(f.leaverP, 0)}

		h, err := f.svc.Start(f.w.Ctx, f.sup, f.leaver.ID, handover.Request{ToUserID: &f.target.ID, Cascade: true, Reason: "leaves"})
		if err != nil {
			t.Fatal(err)
		}
		if h.Status != "queued" || !slices.Equal(h.Kinds, []string{"lead", "customer"}) {
			t.Fatalf("started %+v", h)
		}
		f.w.WorkJobs()

		h = f.get(h.ID)
		if h.Status != "done" || h.FinishedAt == nil {
			t.Fatalf("status %s (%s)", h.Status, h.Error)
		}
		if c := h.Counts["lead"]; c.Moved != 1 || c.Overflow != 2 {
			t.Errorf("lead counts %+v, want 1 moved, 2 overflow", c)
		}
		if c := h.Counts["customer"]; c.Moved != 2 || c.Overflow != 0 {
			t.Errorf("customer counts %+v, want 2 moved", c)
		}
		if len(h.Overflow) != 2 {
			t.Fatalf("overflow %+v", h.Overflow)
		}
		for _, o := range h.Overflow {
			l, err := f.w.Store.Client.Lead.Get(f.w.Ctx, o.RecordID)
			if err != nil {
				t.Fatal(err)
			}
			if o.Kind != "lead" || o.PoolID != f.leadPool || l.OwnerID != nil || l.PoolID != f.leadPool {
				t.Errorf("overflow %+v: lead owner %v pool %v, want pooled in its own pool", o, l.OwnerID, l.PoolID)
			}
		}
		for _, id := range leads {
			if hist, evs := f.handovers(kinds.Lead, id); hist != 1 || evs != 1 {
				t.Errorf("lead %s: %d history rows, %d events, want 1 and 1", id, hist, evs)
			}
		}
		for _, id := range customers {
			c, err := f.w.Store.Client.Customer.Get(f.w.Ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if c.OwnerID == nil || *c.OwnerID != f.target.ID {
				t.Errorf("customer %s owned by %v, want the target", id, c.OwnerID)
			}
			if hist, evs := f.handovers(kinds.Customer, id); hist != 1 || evs != 1 {
				t.Errorf("customer %s: %d history rows, %d events, want 1 and 1", id, hist, evs)
			}
		}
		// Contacts hang off their customer: they went with it.
		if n, _ := f.w.Store.Client.Contact.Query().Where(contact.CustomerID(customers[0])).Count(f.w.Ctx); n != 2 {
			t.Errorf("%d contacts on the customer, want 2", n)
		}
		leaver, target := f.user(f.leaver.ID), f.user(f.target.ID)
		if leaver.OwnedLeads != 0 || leaver.OwnedCustomers != 0 {
			t.Errorf("leaver's counters %d/%d, want 0/0", leaver.OwnedLeads, leaver.OwnedCustomers)
		}
		if target.OwnedLeads != 2 || target.OwnedCustomers != 2 {
			t.Errorf("target's counters %d/%d, want 2/2", target.OwnedLeads, target.OwnedCustomers)
		}
		if n, _ := f.w.Store.Client.Lead.Query().Where(lead.OwnerID(f.leaver.ID)).Count(f.w.Ctx); n != 0 {
			t.Errorf("leaver still owns %d leads", n)
		}

		// Again: nothing left to move, nothing written.
		before, _ := f.w.Store.Client.OwnershipChange.Query().Count(f.w.Ctx)
		again, err := f.svc.Start(f.w.Ctx, f.admin, f.leaver.ID, handover.Request{ToUserID: &f.target.ID, Cascade: true, Reason: "again"})
		if err != nil {
			t.Fatal(err)
		}
		f.w.WorkJobs()
		again = f.get(again.ID)
		if again.Status != "done" || again.Counts["lead"] != (schema.HandoverCount{}) || again.Counts["customer"] != (schema.HandoverCount{}) || len(again.Overflow) != 0 {
			t.Errorf("re-run %+v, want done with zero counts", again)
		}
		if after, _ := f.w.Store.Client.OwnershipChange.Query().Count(f.w.Ctx); after != before {
			t.Errorf("re-run wrote %d history rows", after-before)
		}
		// Working the finished run again changes nothing either.
		if err := f.svc.Run(f.w.Ctx, h.ID); err != nil {
			t.Fatal(err)
		}
		if f.get(h.ID).Counts["lead"].Moved != 1 {
			t.Error("running a finished run changed it")
		}
	})
}

// TestHandoverResumes: a run cut after its first batch (a crash) resumes
// where it stopped: every record moves once.
func TestHandoverResumes(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		f.svc.SetBatch(1)
		leads := []uuid.UUID{f.lead(f.leaverP), f.lead(f.leaverP), f.lead(f.leaverP)}
		h, err := f.svc.Start(f.w.Ctx, f.admin, f.leaver.ID, handover.Request{ToUserID: &f.target.ID, Kinds: []kinds.Kind{kinds.Lead}, Reason: "leaves"})
		if err != nil {
			t.Fatal(err)
		}
		// The first batch, as the job would, before the job runs.
		done, err := f.svc.Step(f.w.Ctx, h.ID)
		if err != nil || done {
			t.Fatalf("first step: %v %v", done, err)
		}
		if p := f.get(h.ID); p.Status != "running" || p.Counts["lead"].Moved != 1 {
			t.Fatalf("after one batch: %s %+v", p.Status, p.Counts)
		}
		f.w.WorkJobs()
		if p := f.get(h.ID); p.Status != "done" || p.Counts["lead"].Moved != 3 {
			t.Fatalf("after the job: %s %+v", p.Status, p.Counts)
		}
		for _, id := range leads {
			if hist, evs := f.handovers(kinds.Lead, id); hist != 1 || evs != 1 {
				t.Errorf("lead %s: %d history rows, %d events, want 1 and 1", id, hist, evs)
			}
		}
	})
}

// TestHandoverToPool: leads go into the target lead pool, customers back
// to their own pool, all unowned.
func TestHandoverToPool(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		pl, err := f.w.App.Pools.CreatePool(f.w.Ctx, f.admin, pool.PoolInput{Kind: "lead", Name: ptr("leavers")})
		if err != nil {
			t.Fatal(err)
		}
		ld, cu := f.lead(f.leaverP), f.customer(f.leaverP, 1)
		h, err := f.svc.Start(f.w.Ctx, f.admin, f.leaver.ID, handover.Request{ToPoolID: &pl.ID, Cascade: true, Reason: "leaves"})
		if err != nil {
			t.Fatal(err)
		}
		f.w.WorkJobs()
		h = f.get(h.ID)
		if h.Status != "done" || h.Counts["lead"].Moved != 1 || h.Counts["customer"].Moved != 1 || len(h.Overflow) != 0 {
			t.Fatalf("%s %+v %+v", h.Status, h.Counts, h.Overflow)
		}
		l, _ := f.w.Store.Client.Lead.Get(f.w.Ctx, ld)
		c, _ := f.w.Store.Client.Customer.Get(f.w.Ctx, cu)
		if l.OwnerID != nil || l.PoolID != pl.ID {
			t.Errorf("lead owner %v pool %v, want pooled in the target pool", l.OwnerID, l.PoolID)
		}
		if c.OwnerID != nil || c.PoolID != f.customerPool {
			t.Errorf("customer owner %v pool %v, want pooled in its own pool", c.OwnerID, c.PoolID)
		}
		if u := f.user(f.leaver.ID); u.OwnedLeads != 0 || u.OwnedCustomers != 0 {
			t.Errorf("leaver's counters %d/%d", u.OwnedLeads, u.OwnedCustomers)
		}
	})
}

// TestHandoverRefusals: the request's rules and its scope.
func TestHandoverRefusals(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		inactive := f.w.User(auth.RoleRep, &f.team)
		if _, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, inactive.ID, ptr("*"), org.UserPatch{Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		elsewhere := f.w.User(auth.RoleRep, nil)
		pl, err := f.w.App.Pools.CreatePool(f.w.Ctx, f.admin, pool.PoolInput{Kind: "lead", Name: ptr("not his")})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name string
			p    *auth.Principal
			in   handover.Request
			code string
		}{
			{"no target", f.sup, handover.Request{Reason: "x"}, "validation_failed"},
			{"two targets", f.sup, handover.Request{ToUserID: &f.target.ID, ToPoolID: &pl.ID, Reason: "x"}, "validation_failed"},
			{"to himself", f.sup, handover.Request{ToUserID: &f.leaver.ID, Reason: "x"}, "validation_failed"},
			{"inactive target", f.sup, handover.Request{ToUserID: &inactive.ID, Reason: "x"}, "target_inactive"},
			{"target outside his teams", f.sup, handover.Request{ToUserID: &elsewhere.ID, Reason: "x"}, "target_out_of_scope"},
			{"pool he does not manage", f.sup, handover.Request{ToPoolID: &pl.ID, Reason: "x"}, "pool_not_managed"},
			{"supervisor of another team", f.other, handover.Request{ToUserID: &f.target.ID, Reason: "x"}, "not_found"},
		} {
			_, err := f.svc.Start(f.w.Ctx, c.p, f.leaver.ID, c.in)
			if e, ok := apperr.As(err); !ok || e.Code != c.code {
				t.Errorf("%s: got %v, want %s", c.name, err, c.code)
			}
		}
		if n, _ := f.w.Store.Client.Handover.Query().Count(f.w.Ctx); n != 0 {
			t.Errorf("%d runs created by refused requests", n)
		}
	})
}

// TestDeactivation: a user who owns records is not deactivated without a
// handover or force; with a handover, the run starts in the same
// transaction; with force his records stay his.
func TestDeactivation(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		ld := f.lead(f.leaverP)
		_, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, f.leaver.ID, ptr("*"), org.UserPatch{Active: ptr(false)})
		wantCode(t, err, "user_owns_records")
		if !f.user(f.leaver.ID).Active {
			t.Fatal("refused deactivation deactivated")
		}
		_, err = f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, f.leaver.ID, ptr("*"), org.UserPatch{Force: true})
		wantCode(t, err, "validation_failed")

		// With force: inactive, still the owner.
		forced := f.w.User(auth.RoleRep, &f.team)
		fl := f.lead(testkit.Principal(forced))
		if _, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, forced.ID, ptr("*"), org.UserPatch{Active: ptr(false), Force: true}); err != nil {
			t.Fatal(err)
		}
		if l, _ := f.w.Store.Client.Lead.Get(f.w.Ctx, fl); l.OwnerID == nil || *l.OwnerID != forced.ID {
			t.Error("force moved the record")
		}

		// With a handover: deactivated, and the run moves his records.
		u, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, f.leaver.ID, ptr("*"), org.UserPatch{Active: ptr(false),
			Handover: &org.LeaveHandover{ToUserID: &f.target.ID, Reason: "leaves"}})
		if err != nil {
			t.Fatal(err)
		}
		if u.Active {
			t.Fatal("still active")
		}
		runs, err := f.w.Store.Client.Handover.Query().All(f.w.Ctx)
		if err != nil || len(runs) != 1 || runs[0].FromUserID != f.leaver.ID {
			t.Fatalf("runs %v %v", runs, err)
		}
		f.w.WorkJobs()
		if l, _ := f.w.Store.Client.Lead.Get(f.w.Ctx, ld); l.OwnerID == nil || *l.OwnerID != f.target.ID {
			t.Errorf("lead owned by %v, want the target", l.OwnerID)
		}
		// A user who owns nothing is deactivated without either.
		idle := f.w.User(auth.RoleRep, &f.team)
		if _, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, idle.ID, ptr("*"), org.UserPatch{Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
	})
}

// TestReroute: the leaver's place among a pool's managers goes to his
// supervisor, who then decides its pending claim requests; the leaver's
// own pending requests are rejected.
func TestReroute(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		// The leaver manages an approval pool; a colleague asks for one of
		// its records, and the leaver asks for one of another's.
		managed, err := f.w.App.Pools.CreatePool(f.w.Ctx, f.admin, pool.PoolInput{Kind: "lead", Name: ptr("his"),
			ManagerIDs: &[]uuid.UUID{f.leaver.ID}, ClaimRequiresApproval: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		other, err := f.w.App.Pools.CreatePool(f.w.Ctx, f.admin, pool.PoolInput{Kind: "lead", Name: ptr("theirs"),
			ClaimRequiresApproval: ptr(true)})
		if err != nil {
			t.Fatal(err)
		}
		pooled := func(pl uuid.UUID) uuid.UUID {
			name := f.w.Unique("lead")
			v, err := f.w.App.Records.CreateLead(f.w.Ctx, f.admin, records.LeadInput{Name: &name, PoolID: &pl})
			if err != nil {
				t.Fatal(err)
			}
			return v.ID
		}
		asked, err := f.w.App.Pools.Claim(f.w.Ctx, testkit.Principal(f.target), kinds.Lead, pooled(managed.ID))
		if err != nil || asked.Request == nil {
			t.Fatalf("claim: %v", err)
		}
		mine, err := f.w.App.Pools.Claim(f.w.Ctx, f.leaverP, kinds.Lead, pooled(other.ID))
		if err != nil || mine.Request == nil {
			t.Fatalf("claim: %v", err)
		}
		// Before: the supervisor may not decide the pool's requests.
		if _, err := f.w.App.Pools.DecideClaim(f.w.Ctx, f.sup, asked.Request.ID, true, ""); err == nil {
			t.Fatal("the supervisor decided a request of a pool he does not manage")
		}

		if _, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, f.leaver.ID, ptr("*"), org.UserPatch{Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		pl, _ := f.w.Store.Client.Pool.Get(f.w.Ctx, managed.ID)
		if !slices.Equal(pl.ManagerIds, []uuid.UUID{f.sup.ID}) {
			t.Errorf("managers %v, want the supervisor only", pl.ManagerIds)
		}
		rejected, _ := f.w.Store.Client.ClaimRequest.Get(f.w.Ctx, mine.Request.ID)
		if rejected.Status != claimrequest.StatusRejected || rejected.Reason == "" {
			t.Errorf("the leaver's own request is %s (%q), want rejected with a reason", rejected.Status, rejected.Reason)
		}
		decided, err := f.w.App.Pools.DecideClaim(f.w.Ctx, f.sup, asked.Request.ID, true, "ok")
		if err != nil || decided.Status != claimrequest.StatusApproved {
			t.Fatalf("the supervisor decides the re-routed request: %v", err)
		}
		if n, _ := f.w.Store.Client.Customer.Query().Where(customer.OwnerID(f.leaver.ID)).Count(f.w.Ctx); n != 0 {
			t.Errorf("leaver owns %d customers", n)
		}
	})
}

// TestHandoverFails: a target deactivated after the run was queued stops
// it: failed, with why, and nothing half-moved.
func TestHandoverFails(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		ld := f.lead(f.leaverP)
		h, err := f.svc.Start(f.w.Ctx, f.sup, f.leaver.ID, handover.Request{ToUserID: &f.target.ID, Reason: "leaves"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.w.App.Org.UpdateUser(f.w.Ctx, f.admin, f.target.ID, ptr("*"), org.UserPatch{Active: ptr(false)}); err != nil {
			t.Fatal(err)
		}
		f.w.WorkJobs()
		h = f.get(h.ID)
		if h.Status != "failed" || h.FinishedAt == nil || !strings.HasPrefix(h.Error, "target_inactive") {
			t.Fatalf("run %s %q, want failed with target_inactive", h.Status, h.Error)
		}
		if l, _ := f.w.Store.Client.Lead.Get(f.w.Ctx, ld); l.OwnerID == nil || *l.OwnerID != f.leaver.ID {
			t.Errorf("lead owned by %v, want still the leaver", l.OwnerID)
		}
		if hist, _ := f.handovers(kinds.Lead, ld); hist != 0 {
			t.Errorf("%d handover history rows", hist)
		}
	})
}

// TestConcurrentHandovers: two runs of the same leaver to two targets,
// worked at once, move each record exactly once, and the counters match
// what each user owns.
func TestConcurrentHandovers(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url, nil)
		f.svc.SetBatch(2)
		second := f.w.User(auth.RoleRep, &f.team)
		var ids []uuid.UUID
		for range 6 {
			ids = append(ids, f.lead(f.leaverP))
		}
		for range 4 {
			ids = append(ids, f.customer(f.leaverP, 0))
		}
		var runs []uuid.UUID
		for _, to := range []uuid.UUID{f.target.ID, second.ID} {
			h, err := f.svc.Start(f.w.Ctx, f.admin, f.leaver.ID, handover.Request{ToUserID: &to, Reason: "leaves"})
			if err != nil {
				t.Fatal(err)
			}
			runs = append(runs, h.ID)
		}
		var wg sync.WaitGroup
		errs := make([]error, len(runs))
		for i, id := range runs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = f.svc.Run(f.w.Ctx, id)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		moved := 0
		for _, id := range runs {
			h := f.get(id)
			if h.Status != "done" {
				t.Fatalf("run %s: %s %q", id, h.Status, h.Error)
			}
			for _, c := range h.Counts {
				moved += c.Moved + c.Overflow
			}
		}
		if moved != len(ids) {
			t.Errorf("the runs moved %d records in all, want %d", moved, len(ids))
		}
		for i, id := range ids {
			kind := kinds.Lead
			if i >= 6 {
				kind = kinds.Customer
			}
			if hist, evs := f.handovers(kind, id); hist != 1 || evs != 1 {
				t.Errorf("%s %s: %d history rows, %d events, want 1 and 1", kind, id, hist, evs)
			}
		}
		for _, u := range []uuid.UUID{f.leaver.ID, f.target.ID, second.ID} {
			row := f.user(u)
			nl, _ := f.w.Store.Client.Lead.Query().Where(lead.OwnerID(u)).Count(f.w.Ctx)
			nc, _ := f.w.Store.Client.Customer.Query().Where(customer.OwnerID(u)).Count(f.w.Ctx)
			if row.OwnedLeads != nl || row.OwnedCustomers != nc {
				t.Errorf("user %s: counters %d/%d, owns %d/%d", u, row.OwnedLeads, row.OwnedCustomers, nl, nc)
			}
		}
	})
}
