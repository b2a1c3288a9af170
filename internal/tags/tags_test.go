package tags_test

import (
	"os"
	"slices"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/tags"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// fixture is a world with an admin and records carrying tags.
type fixture struct {
	w   *testkit.World
	svc *tags.Service
	p   *auth.Principal
}

func newFixture(t *testing.T, url string) *fixture {
	t.Helper()
	w := testkit.New(t, url, app.Config{})
	_, p := w.Actor(auth.RoleAdmin, nil)
	return &fixture{w: w, svc: w.App.Tags, p: p}
}

func (f *fixture) lead(tags ...string) uuid.UUID {
	f.w.T.Helper()
	name := f.w.Unique("lead")
	v, err := f.w.App.Records.CreateLead(f.w.Ctx, f.p, records.LeadInput{Name: &name, Tags: &tags})
	if err != nil {
		f.w.T.Fatalf("create lead: %v", err)
	}
	return v.ID
}

func (f *fixture) customer(tags ...string) uuid.UUID {
	f.w.T.Helper()
	name := f.w.Unique("customer")
	v, err := f.w.App.Records.CreateCustomer(f.w.Ctx, f.p, records.CustomerInput{Name: &name, Tags: &tags})
	if err != nil {
		f.w.T.Fatalf("create customer: %v", err)
	}
	return v.ID
}

func (f *fixture) leadRow(id uuid.UUID) *ent.Lead {
	f.w.T.Helper()
	l, err := f.w.Store.Client.Lead.Get(f.w.Ctx, id)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return l
}

func (f *fixture) customerRow(id uuid.UUID) *ent.Customer {
	f.w.T.Helper()
	c, err := f.w.Store.Client.Customer.Get(f.w.Ctx, id)
	if err != nil {
		f.w.T.Fatal(err)
	}
	return c
}

// events returns the types of the events about subject, oldest first.
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

func (f *fixture) create(name string) *ent.Tag {
	f.w.T.Helper()
	t, err := f.svc.Create(f.w.Ctx, tags.Input{Name: name})
	if err != nil {
		f.w.T.Fatalf("create tag %q: %v", name, err)
	}
	return t
}

func code(err error) string {
	if e, ok := apperr.As(err); ok {
		return e.Code
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

func TestCreateAndDuplicate(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		tg, err := f.svc.Create(f.w.Ctx, tags.Input{Name: "  vip ", Color: ptr("#aa00FF"), Description: ptr("big ones")})
		if err != nil {
			t.Fatal(err)
		}
		if tg.Name != "vip" || tg.Version != 1 || *tg.Color != "#aa00FF" {
			t.Fatalf("created %+v", tg)
		}
		if _, err := f.svc.Create(f.w.Ctx, tags.Input{Name: "vip"}); code(err) != "tag_exists" {
			t.Fatalf("duplicate: %v, want tag_exists", err)
		}
		if _, err := f.svc.Create(f.w.Ctx, tags.Input{Name: "x", Color: ptr("red")}); code(err) != "validation_failed" {
			t.Fatalf("bad colour: %v", err)
		}
		if got := f.events(tg.ID); !slices.Equal(got, []string{"tag.created"}) {
			t.Fatalf("events %v", got)
		}
		got, _, err := f.svc.List(f.w.Ctx, "", ptr("v"), nil, 10)
		if err != nil || len(got) != 1 || got[0].ID != tg.ID {
			t.Fatalf("list by prefix: %v %v", got, err)
		}
	})
}

func TestRenameRenamesEverywhere(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		tg := f.create("warm")
		f.create("cold")
		l1 := f.lead("a", "warm", "b")
		l2 := f.lead("hot", "warm") // already has the new name
		l3 := f.lead("cold")        // untouched
		c1 := f.customer("warm")
		before := map[uuid.UUID]int{l1: f.leadRow(l1).Version, l2: f.leadRow(l2).Version, l3: f.leadRow(l3).Version, c1: f.customerRow(c1).Version}

		out, err := f.svc.Update(f.w.Ctx, tg.ID, ptr(etag.Of(tg.Version)), tags.Patch{Name: ptr(" hot ")})
		if err != nil {
			t.Fatal(err)
		}
		if out.Name != "hot" || out.Version != tg.Version+1 {
			t.Fatalf("renamed tag %+v", out)
		}
		for id, want := range map[uuid.UUID][]string{l1: {"a", "hot", "b"}, l2: {"hot"}, l3: {"cold"}} {
			r := f.leadRow(id)
			if !slices.Equal(r.Tags, want) {
				t.Errorf("lead tags %q, want %q", r.Tags, want)
			}
			moved := r.Version != before[id]
			if changed := id != l3; moved != changed || (changed && r.Version != before[id]+1) {
				t.Errorf("lead %s version %d (was %d)", id, r.Version, before[id])
			}
		}
		if c := f.customerRow(c1); !slices.Equal(c.Tags, []string{"hot"}) || c.Version != before[c1]+1 {
			t.Errorf("customer %q v%d", c.Tags, c.Version)
		}
		for id, want := range map[uuid.UUID]string{l1: "lead.updated", l2: "lead.updated", c1: "customer.updated"} {
			if got := f.events(id); got[len(got)-1] != want {
				t.Errorf("events of %s: %v, want last %s", id, got, want)
			}
		}
		if got := f.events(l3); slices.Contains(got, "lead.updated") {
			t.Errorf("untouched lead got %v", got)
		}
		if got := f.events(tg.ID); !slices.Equal(got, []string{"tag.created", "tag.updated"}) {
			t.Errorf("tag events %v", got)
		}
		ev, err := f.w.Store.Client.DomainEvent.Query().Where(domainevent.SubjectID(tg.ID), domainevent.Type("tag.updated")).Only(f.w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		data := ev.Data["data"].(map[string]any)
		if data["from"] != "warm" || data["to"] != "hot" || data["records"] != float64(3) {
			t.Errorf("tag.updated payload %v", data)
		}

		// A rename to another tag's name is refused, and changes nothing.
		if _, err := f.svc.Update(f.w.Ctx, tg.ID, ptr("*"), tags.Patch{Name: ptr("cold")}); code(err) != "tag_exists" {
			t.Fatalf("rename onto cold: %v", err)
		}
		if r := f.leadRow(l1); !slices.Equal(r.Tags, []string{"a", "hot", "b"}) {
			t.Errorf("refused rename changed a lead: %q", r.Tags)
		}
	})
}

func TestStaleIfMatchChangesNothing(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		tg := f.create("stale")
		l := f.lead("stale")
		v := f.leadRow(l).Version
		if _, err := f.svc.Update(f.w.Ctx, tg.ID, nil, tags.Patch{Name: ptr("fresh")}); code(err) != "precondition_required" {
			t.Fatalf("no If-Match: %v", err)
		}
		if _, err := f.svc.Update(f.w.Ctx, tg.ID, ptr(etag.Of(tg.Version+1)), tags.Patch{Name: ptr("fresh")}); code(err) != "precondition_failed" {
			t.Fatalf("stale If-Match: %v", err)
		}
		if err := f.svc.Delete(f.w.Ctx, tg.ID, ptr(etag.Of(tg.Version+1))); code(err) != "precondition_failed" {
			t.Fatalf("stale delete: %v", err)
		}
		r := f.leadRow(l)
		got, _ := f.svc.Get(f.w.Ctx, tg.ID)
		if !slices.Equal(r.Tags, []string{"stale"}) || r.Version != v || got.Name != "stale" || got.Version != tg.Version {
			t.Fatalf("refused changes changed something: lead %q v%d, tag %+v", r.Tags, r.Version, got)
		}
	})
}

func TestClearColorAndDescription(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		tg, err := f.svc.Create(f.w.Ctx, tags.Input{Name: "c", Color: ptr("#000000"), Description: ptr("d")})
		if err != nil {
			t.Fatal(err)
		}
		out, err := f.svc.Update(f.w.Ctx, tg.ID, ptr(etag.Of(1)), tags.Patch{Color: patch.Null[string](), Description: patch.Null[string]()})
		if err != nil {
			t.Fatal(err)
		}
		if out.Color != nil || out.Description != nil || out.Version != 2 {
			t.Fatalf("cleared %+v", out)
		}
	})
}

func TestDeleteRemovesEverywhere(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		tg := f.create("gone")
		l := f.lead("x", "gone")
		c := f.customer("gone", "y")
		lv, cv := f.leadRow(l).Version, f.customerRow(c).Version
		if err := f.svc.Delete(f.w.Ctx, tg.ID, nil); code(err) != "precondition_required" {
			t.Fatalf("delete without If-Match: %v", err)
		}
		if err := f.svc.Delete(f.w.Ctx, tg.ID, ptr(etag.Of(tg.Version))); err != nil {
			t.Fatal(err)
		}
		if r := f.leadRow(l); !slices.Equal(r.Tags, []string{"x"}) || r.Version != lv+1 {
			t.Errorf("lead %q v%d", r.Tags, r.Version)
		}
		if r := f.customerRow(c); !slices.Equal(r.Tags, []string{"y"}) || r.Version != cv+1 {
			t.Errorf("customer %q v%d", r.Tags, r.Version)
		}
		if _, err := f.svc.Get(f.w.Ctx, tg.ID); code(err) != "not_found" {
			t.Errorf("get deleted: %v", err)
		}
		if got := f.events(tg.ID); !slices.Equal(got, []string{"tag.created", "tag.deleted"}) {
			t.Errorf("tag events %v", got)
		}
		if got := f.events(c); got[len(got)-1] != "customer.updated" {
			t.Errorf("customer events %v", got)
		}
	})
}

// Two admins renaming the same tag from the same read: exactly one wins,
// the other is refused as stale, and the records carry the winner's name
// once.
func TestConcurrentRenamesOneWins(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		tg := f.create("race")
		l := f.lead("race")
		names := []string{"left", "right"}
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, n := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, errs[i] = f.svc.Update(f.w.Ctx, tg.ID, ptr(etag.Of(tg.Version)), tags.Patch{Name: ptr(n)})
			}()
		}
		close(start)
		wg.Wait()
		winner := ""
		for i, err := range errs {
			switch code(err) {
			case "":
				if err != nil {
					t.Fatalf("rename %s: %v", names[i], err)
				}
				if winner != "" {
					t.Fatalf("both renames won")
				}
				winner = names[i]
			case "precondition_failed":
			default:
				t.Fatalf("rename %s: %v", names[i], err)
			}
		}
		if winner == "" {
			t.Fatal("no rename won")
		}
		got, _ := f.svc.Get(f.w.Ctx, tg.ID)
		r := f.leadRow(l)
		if got.Name != winner || got.Version != 2 || !slices.Equal(r.Tags, []string{winner}) {
			t.Fatalf("tag %s v%d, lead %q; winner %s", got.Name, got.Version, r.Tags, winner)
		}
	})
}
