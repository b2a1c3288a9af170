package merge_test

import (
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	"github.com/shoalcrm/shoal/ent/searchgram"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/merge"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// fixture: team A with a supervisor and two reps, team B with a
// supervisor and a rep, and an admin.
type fixture struct {
	w                  *testkit.World
	sup, supB, admin   *auth.Principal
	repA1, repA2, repB *auth.Principal
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	w := testkit.New(t, url, app.Config{})
	ta, tb := w.Team(w.Unique("A"), nil), w.Team(w.Unique("B"), nil)
	f := &fixture{w: w}
	_, f.sup = w.Actor(auth.RoleSupervisor, &ta.ID)
	_, f.supB = w.Actor(auth.RoleSupervisor, &tb.ID)
	_, f.admin = w.Actor(auth.RoleAdmin, nil)
	_, f.repA1 = w.Actor(auth.RoleRep, &ta.ID)
	_, f.repA2 = w.Actor(auth.RoleRep, &ta.ID)
	_, f.repB = w.Actor(auth.RoleRep, &tb.ID)
	return f
}

func ptr[T any](v T) *T { return &v }

func code(err error) string {
	if e, ok := apperr.As(err); ok {
		return e.Code
	}
	return ""
}

func (f *fixture) lead(p *auth.Principal, company, phone, email string) *records.LeadView {
	f.w.T.Helper()
	v, err := f.w.App.Records.CreateLead(f.w.Ctx, p, records.LeadInput{Name: ptr(f.w.Unique("person")), Company: &company, Phone: &phone, Email: &email})
	if err != nil {
		f.w.T.Fatalf("create lead: %v", err)
	}
	return v
}

func (f *fixture) followUp(p *auth.Principal, kind kinds.Kind, id uuid.UUID) {
	f.w.T.Helper()
	if _, err := f.w.App.Records.CreateFollowUp(f.w.Ctx, p, records.FollowUpInput{SubjectType: string(kind), SubjectID: id,
		Channel: "call", Content: "rang", OccurredAt: time.Now().Add(-time.Hour)}); err != nil {
		f.w.T.Fatalf("follow-up: %v", err)
	}
}

func (f *fixture) version(id uuid.UUID) int {
	f.w.T.Helper()
	l, err := f.w.Store.Client.Lead.Get(f.w.Ctx, id)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return l.Version
}

func (f *fixture) owned(p *auth.Principal) (leads, customers int) {
	f.w.T.Helper()
	u, err := f.w.Store.Client.User.Get(f.w.Ctx, p.ID)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return u.OwnedLeads, u.OwnedCustomers
}

func (f *fixture) followUps(kind kinds.Kind, id uuid.UUID) int {
	f.w.T.Helper()
	n, err := f.w.Store.Client.FollowUp.Query().Where(followup.SubjectTypeEQ(followup.SubjectType(kind)), followup.SubjectID(id)).Count(f.w.Ctx)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return n
}

func (f *fixture) history(kind kinds.Kind, id uuid.UUID) int {
	f.w.T.Helper()
	n, err := f.w.Store.Client.OwnershipChange.Query().Where(ownershipchange.RecordKindEQ(ownershipchange.RecordKind(kind)), ownershipchange.RecordID(id)).Count(f.w.Ctx)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return n
}

func (f *fixture) events(subject uuid.UUID) []string {
	f.w.T.Helper()
	es, err := f.w.Store.Client.DomainEvent.Query().Where(domainevent.SubjectID(subject)).Order(domainevent.ByID()).All(f.w.Ctx)
	if err != nil {
		f.w.T.Fatal(err)
	}
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// survivorOf asserts err is merged_into naming survivor.
func survivorOf(t *testing.T, err error, survivor uuid.UUID) {
	t.Helper()
	e, ok := apperr.As(err)
	if !ok || e.Code != "merged_into" || e.Extra["survivorId"] != survivor || e.Kind != apperr.Conflict {
		t.Fatalf("got %v, want merged_into %s", err, survivor)
	}
}

func TestMergeLeads(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		ctx, recs := f.w.Ctx, f.w.App.Records
		keep := f.lead(f.repA1, "Acme Ltd", "13800000001", "")
		gone := f.lead(f.repA2, "Acme Beta", "13800000002", "beta@acme.example")
		f.followUp(f.repA2, kinds.Lead, gone.ID)
		f.followUp(f.repA2, kinds.Lead, gone.ID)
		f.followUp(f.repA1, kinds.Lead, keep.ID)
		if l, _ := f.owned(f.repA2); l != 1 {
			t.Fatalf("repA2 owns %d leads before", l)
		}
		keepVersion, goneVersion := f.version(keep.ID), f.version(gone.ID)

		v, err := f.w.App.Merge.MergeLeads(ctx, f.sup, merge.Input{Survivor: keep.ID, Merged: []uuid.UUID{gone.ID},
			Fields: map[string]uuid.UUID{"phone": gone.ID, "email": gone.ID, "company": keep.ID}})
		if err != nil {
			t.Fatal(err)
		}
		// Fields: chosen ones from the merged lead, the rest the survivor's.
		if v.ID != keep.ID || v.Phone != "13800000002" || v.Email != "beta@acme.example" || v.Company != "Acme Ltd" ||
			v.Name != keep.Name || *v.OwnerID != f.repA1.ID || v.Version != keepVersion+1 {
			t.Fatalf("survivor %+v", v.Lead)
		}
		// Children moved.
		if n, m := f.followUps(kinds.Lead, keep.ID), f.followUps(kinds.Lead, gone.ID); n != 3 || m != 0 {
			t.Fatalf("follow-ups: survivor %d, merged %d", n, m)
		}
		if n, m := f.history(kinds.Lead, keep.ID), f.history(kinds.Lead, gone.ID); n != 2 || m != 0 {
			t.Fatalf("history: survivor %d, merged %d", n, m)
		}
		// The merged lead: status merged, pointer, out of its owner's cap.
		row, err := f.w.Store.Client.Lead.Get(ctx, gone.ID)
		if err != nil {
			t.Fatal(err)
		}
		if row.Status != "merged" || row.MergedIntoID == nil || *row.MergedIntoID != keep.ID || row.Version != goneVersion+1 {
			t.Fatalf("merged row %+v", row)
		}
		if l, _ := f.owned(f.repA2); l != 0 {
			t.Fatalf("repA2 still counts %d leads", l)
		}
		if l, _ := f.owned(f.repA1); l != 1 {
			t.Fatalf("repA1 counts %d leads", l)
		}
		// Its id answers merged_into, to the supervisor and to its owner,
		// on reads, writes and ownership operations alike.
		_, err = recs.GetLead(ctx, f.sup, gone.ID)
		survivorOf(t, err, keep.ID)
		_, err = recs.GetLead(ctx, f.repA2, gone.ID)
		survivorOf(t, err, keep.ID)
		_, err = recs.UpdateLead(ctx, f.sup, gone.ID, ptr("*"), records.LeadInput{Notes: ptr("x")})
		survivorOf(t, err, keep.ID)
		err = f.w.App.Pools.Return(ctx, f.repA2, kinds.Lead, gone.ID, "")
		survivorOf(t, err, keep.ID)
		_, err = recs.CreateFollowUp(ctx, f.repA2, records.FollowUpInput{SubjectType: "lead", SubjectID: gone.ID, Channel: "call", Content: "x", OccurredAt: time.Now().Add(-time.Minute)})
		survivorOf(t, err, keep.ID)
		// Who could not see it still gets 404.
		if _, err := recs.GetLead(ctx, f.repB, gone.ID); code(err) != "not_found" {
			t.Fatalf("repB: %v", err)
		}
		// Gone from lists, even when asked for by owner.
		list, _, _, err := recs.ListLeads(ctx, f.sup, records.Filter{Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range list {
			if l.ID == gone.ID {
				t.Fatal("merged lead listed")
			}
		}
		// The search index follows the merge: the survivor is found by
		// the values it took over, the merged lead has no grams left.
		for _, q := range []string{"beta@acme", "0000 0002"} {
			found, _, _, err := recs.ListLeads(ctx, f.sup, records.Filter{Q: &q, Limit: 50})
			if err != nil || len(found) != 1 || found[0].ID != keep.ID {
				t.Fatalf("q=%s after the merge: %d found, %v", q, len(found), err)
			}
		}
		if n, err := f.w.Store.Client.SearchGram.Query().Where(searchgram.RecordID(gone.ID)).Count(ctx); err != nil || n != 0 {
			t.Fatalf("the merged lead keeps %d grams (%v)", n, err)
		}
		mine, _, _, err := recs.ListLeads(ctx, f.repA2, records.Filter{Owner: ptr("me"), Limit: 50})
		if err != nil || len(mine) != 0 {
			t.Fatalf("repA2's own leads: %d %v", len(mine), err)
		}
		// Duplicate keys recomputed: the merged phone is the survivor's,
		// the survivor's old phone and the merged company are free.
		_, err = recs.CreateLead(ctx, f.repB, records.LeadInput{Name: ptr("x"), Phone: ptr("138 0000 0002")})
		if e, ok := apperr.As(err); !ok || e.Code != "duplicate" {
			t.Fatalf("merged phone: %v", err)
		}
		matches, err := recs.CheckDuplicates(ctx, f.sup, "", "13800000002", "")
		if err != nil || len(matches) != 1 || matches[0].ID == nil || *matches[0].ID != keep.ID {
			t.Fatalf("matches %+v %v", matches, err)
		}
		for _, free := range []records.LeadInput{{Name: ptr("y"), Phone: ptr("13800000001")}, {Name: ptr("z"), Company: ptr("Acme Beta")}} {
			if _, err := recs.CreateLead(ctx, f.repB, free); err != nil {
				t.Fatalf("released key still held: %v", err)
			}
		}
		n, err := f.w.Store.Client.DedupeKey.Query().Where(dedupekey.RecordID(gone.ID)).Count(ctx)
		if err != nil || n != 0 {
			t.Fatalf("merged lead holds %d keys", n)
		}
		// Events.
		if got := f.events(gone.ID); !slices.Equal(got[len(got)-1:], []string{"lead.merged"}) {
			t.Fatalf("merged lead's events %v", got)
		}
		if got := f.events(keep.ID); got[len(got)-1] != "lead.updated" {
			t.Fatalf("survivor's events %v", got)
		}
		// Merging it again: merged_into.
		_, err = f.w.App.Merge.MergeLeads(ctx, f.sup, merge.Input{Survivor: keep.ID, Merged: []uuid.UUID{gone.ID}})
		survivorOf(t, err, keep.ID)
	})
}

func TestMergeAccess(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		ctx, m := f.w.Ctx, f.w.App.Merge
		a1 := f.lead(f.repA1, "One", "13900000001", "")
		a2 := f.lead(f.repA2, "Two", "13900000002", "")
		b := f.lead(f.repB, "Three", "13900000003", "")
		versions := map[uuid.UUID]int{a1.ID: f.version(a1.ID), a2.ID: f.version(a2.ID), b.ID: f.version(b.ID)}
		for _, tc := range []struct {
			name string
			p    *auth.Principal
			in   merge.Input
			code string
		}{
			// The owner himself may not merge: it takes a supervisor.
			{"owner rep", f.repA1, merge.Input{Survivor: a1.ID, Merged: []uuid.UUID{a2.ID}}, "not_record_owner"},
			// A supervisor of only one of the owners: the other's lead
			// is out of his sight.
			{"supervisor of one owner", f.sup, merge.Input{Survivor: a1.ID, Merged: []uuid.UUID{b.ID}}, "not_found"},
			{"supervisor of the other", f.supB, merge.Input{Survivor: b.ID, Merged: []uuid.UUID{a1.ID}}, "not_found"},
			{"stale If-Match", f.admin, merge.Input{Survivor: a1.ID, Merged: []uuid.UUID{a2.ID}, IfMatch: ptr(`"v99"`)}, "precondition_failed"},
		} {
			if _, err := m.MergeLeads(ctx, tc.p, tc.in); code(err) != tc.code {
				t.Fatalf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		// Nothing moved.
		for _, id := range []uuid.UUID{a1.ID, a2.ID, b.ID} {
			if l, err := f.w.Store.Client.Lead.Get(ctx, id); err != nil || l.Status != "active" || l.Version != versions[id] {
				t.Fatalf("lead changed by a refused merge: %+v %v", l, err)
			}
		}
		// An admin merges across teams.
		if _, err := m.MergeLeads(ctx, f.admin, merge.Input{Survivor: b.ID, Merged: []uuid.UUID{a1.ID, a2.ID}, IfMatch: ptr(etag.Of(versions[b.ID]))}); err != nil {
			t.Fatal(err)
		}
		if l1, _ := f.owned(f.repA1); l1 != 0 {
			t.Fatalf("repA1 counts %d", l1)
		}
		if lb, _ := f.owned(f.repB); lb != 1 {
			t.Fatalf("repB counts %d", lb)
		}
	})
}

func TestMergeCustomersMovesContacts(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		ctx, recs := f.w.Ctx, f.w.App.Records
		mk := func(p *auth.Principal, name string) *records.CustomerView {
			v, err := recs.CreateCustomer(ctx, p, records.CustomerInput{Name: &name, Address: ptr(name + " road")})
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		keep, gone := mk(f.repA1, "Globex"), mk(f.repA2, "Globex Shanghai")
		contact := func(p *auth.Principal, cust uuid.UUID, phone string) *records.ContactView {
			c, err := recs.CreateContact(ctx, p, cust, records.ContactInput{Name: ptr("张三"), Phone: &phone, IsPrimary: ptr(true)})
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		contact(f.repA1, keep.ID, "13700000001")
		moved := contact(f.repA2, gone.ID, "13700000002")
		f.followUp(f.repA2, kinds.Customer, gone.ID)

		v, err := f.w.App.Merge.MergeCustomers(ctx, f.sup, merge.Input{Survivor: keep.ID, Merged: []uuid.UUID{gone.ID},
			Fields: map[string]uuid.UUID{"address": gone.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if v.Name != "Globex" || v.Address != "Globex Shanghai road" {
			t.Fatalf("survivor %+v", v.Customer)
		}
		c, err := f.w.Store.Client.Contact.Get(ctx, moved.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Moved, and no longer primary: the survivor had one.
		if c.CustomerID != keep.ID || c.IsPrimary || c.Version != moved.Version+1 {
			t.Fatalf("moved contact %+v", c)
		}
		cs, _, err := recs.ListContacts(ctx, f.sup, keep.ID, nil, 10)
		if err != nil || len(cs) != 2 {
			t.Fatalf("survivor's contacts: %d %v", len(cs), err)
		}
		if n := f.followUps(kinds.Customer, keep.ID); n != 1 {
			t.Fatalf("follow-ups %d", n)
		}
		// The contact's phone key now points at the survivor.
		matches, err := recs.CheckDuplicates(ctx, f.sup, "", "13700000002", "")
		if err != nil || len(matches) != 1 || matches[0].CustomerID == nil || *matches[0].CustomerID != keep.ID {
			t.Fatalf("contact match %+v %v", matches, err)
		}
		if _, cu := f.owned(f.repA2); cu != 0 {
			t.Fatalf("repA2 counts %d customers", cu)
		}
		_, err = recs.GetCustomer(ctx, f.sup, gone.ID)
		survivorOf(t, err, keep.ID)
		if got := f.events(moved.ID); got[len(got)-1] != "contact.updated" {
			t.Fatalf("contact events %v", got)
		}
		// The merged name is free again.
		if _, err := recs.CreateCustomer(ctx, f.repB, records.CustomerInput{Name: ptr("Globex Shanghai")}); err != nil {
			t.Fatal(err)
		}
	})
}

// Two merges of the same records at once: one wins, the other answers
// merged_into, and nothing moves twice.
func TestConcurrentMerges(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		keep := f.lead(f.repA1, "Initech", "13600000001", "")
		gone := f.lead(f.repA2, "Initech Two", "13600000002", "")
		f.followUp(f.repA2, kinds.Lead, gone.ID)
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// Half of them the other way round.
				in := merge.Input{Survivor: keep.ID, Merged: []uuid.UUID{gone.ID}}
				if i%2 == 1 {
					in = merge.Input{Survivor: gone.ID, Merged: []uuid.UUID{keep.ID}}
				}
				_, errs[i] = f.w.App.Merge.MergeLeads(f.w.Ctx, f.admin, in)
			}()
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			switch {
			case err == nil:
				won++
			case code(err) != "merged_into":
				t.Fatalf("loser: %v", err)
			}
		}
		if won != 1 {
			t.Fatalf("%d merges won: %v", won, errs)
		}
		a, b := f.owned(f.repA1)
		c, d := f.owned(f.repA2)
		if a+c != 1 || b != 0 || d != 0 {
			t.Fatalf("counters %d %d %d %d", a, b, c, d)
		}
		merged, err := f.w.Store.Client.Lead.Query().All(f.w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		var survivor *ent.Lead
		statuses := map[string]int{}
		for _, l := range merged {
			statuses[string(l.Status)]++
			if l.Status == "active" {
				survivor = l
			}
		}
		if statuses["merged"] != 1 || statuses["active"] != 1 {
			t.Fatalf("statuses %v", statuses)
		}
		if got := f.followUps(kinds.Lead, survivor.ID); got != 1 {
			t.Fatalf("survivor has %d follow-ups", got)
		}
		if got := f.history(kinds.Lead, survivor.ID); got != 2 {
			t.Fatalf("survivor has %d history rows", got)
		}
	})
}
