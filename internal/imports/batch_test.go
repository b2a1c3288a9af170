package imports_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/searchgram"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/imports"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/search"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// fiveLeads is a file of five good leads (rows 2–6) tagged tag.
func fiveLeads(tag string) []byte {
	lines := []string{"姓名,公司,手机"}
	for i := range 5 {
		lines = append(lines, fmt.Sprintf("人%d,%s公司%d,1370000%04d", i, tag, i, i))
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// TestImportBatchCap: a batch's rows are placed as createLead places them
// one after the other: the importer's until his cap, then pooled and
// reported over_cap, with a history row and a lead.created event each.
func TestImportBatchCap(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		f.svc.SetBatch(50) // the whole file in one batch
		team := f.w.Team("batch", nil).ID
		_, rep := f.w.Actor(auth.RoleRep, &team, org.Caps{MaxOwnedLeads: ptr(3)})
		before := snapshot(t, f.w)
		imp := f.run(t, rep, imports.Request{Kind: "lead", File: fiveLeads("cap")})
		c := imp.Counts
		if c.Created != 5 || c.Owned != 3 || c.Pooled != 2 || c.OverCap != 2 {
			t.Fatalf("counts %+v", c)
		}
		if got, want := problems(imp), []string{"5//over_cap", "6//over_cap"}; !slices.Equal(got, want) {
			t.Errorf("problems %q, want %q", got, want)
		}
		after := snapshot(t, f.w)
		for table, n := range map[string]int{"leads": 5, "owned_leads": 3, "history": 5, "events": 5, "dedupe_keys": 10} {
			if d := after[table] - before[table]; d != n {
				t.Errorf("%s: %d more, want %d", table, d, n)
			}
		}
		if after["search_grams"] <= before["search_grams"] {
			t.Errorf("no grams indexed")
		}
		owned, err := f.w.Store.Client.Lead.Query().Where(lead.OwnerID(rep.ID), lead.CompanyHasPrefix("cap公司")).All(f.w.Ctx)
		if err != nil || len(owned) != 3 {
			t.Fatalf("owned leads %d (%v), want 3", len(owned), err)
		}
		for _, l := range owned {
			// As createLead leaves an owned lead: its reclaim clock
			// saved, one version more.
			if l.Version != 2 || l.OwnedAt == nil {
				t.Errorf("owned lead %s: version %d owned at %v", l.Company, l.Version, l.OwnedAt)
			}
		}
		// Each lead has the grams Reindex gives it.
		grams := func(c *ent.Client, id uuid.UUID) []string {
			g, err := c.SearchGram.Query().Where(searchgram.RecordID(id)).Select(searchgram.FieldGram).Strings(f.w.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(g)
			return g
		}
		got := grams(f.w.Store.Client, owned[0].ID)
		tx, err := f.w.Store.Client.Tx(f.w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := search.Reindex(f.w.Ctx, tx, kinds.Lead, owned[0].ID); err != nil {
			t.Fatal(err)
		}
		want := grams(tx.Client(), owned[0].ID)
		_ = tx.Rollback()
		if len(got) == 0 || !slices.Equal(got, want) {
			t.Errorf("grams %q, want %q", got, want)
		}
		// The same file again creates nothing.
		again := f.run(t, rep, imports.Request{Kind: "lead", File: fiveLeads("cap")})
		if again.Counts.Created != 0 || again.Counts.Duplicates != 5 {
			t.Errorf("re-run counts %+v", again.Counts)
		}
	})
}

// TestImportBatchRace: a key claimed between a batch's duplicate look-up
// and its insert (a concurrent writer) fails the batch's insert; the
// batch is undone and its rows go one by one, as before batches: the row
// whose key was taken is a duplicate, the others are created, once.
func TestImportBatchRace(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		f.svc.SetBatch(50)
		team := f.w.Team("race", nil).ID
		_, rep := f.w.Actor(auth.RoleRep, &team, org.Caps{MaxOwnedLeads: ptr(3)})
		_, rival := f.w.Actor(auth.RoleAdmin, nil)
		raced := 0
		f.svc.SetBeforeBatch(func(ctx context.Context, tx *ent.Tx) {
			if raced++; raced > 1 {
				return
			}
			// Row 4's phone, taken by another writer.
			if _, _, err := f.w.App.Records.CreateLeadIn(ctx, tx, rival, records.LeadInput{Name: ptr("抢先"), Phone: ptr("13700000002")}); err != nil {
				t.Errorf("rival lead: %v", err)
			}
		})
		before := snapshot(t, f.w)
		imp := f.run(t, rep, imports.Request{Kind: "lead", File: fiveLeads("race")})
		if raced != 1 {
			t.Fatalf("the hook ran %d times", raced)
		}
		c := imp.Counts
		if c.Created != 4 || c.Duplicates != 1 || c.Owned != 3 || c.OverCap != 1 {
			t.Fatalf("counts %+v", c)
		}
		if got, want := problems(imp), []string{"4/手机/duplicate", "6//over_cap"}; !slices.Equal(got, want) {
			t.Errorf("problems %q, want %q", got, want)
		}
		after := snapshot(t, f.w)
		// The rival's lead and four of the file's.
		for table, n := range map[string]int{"leads": 5, "owned_leads": 3 + 1, "history": 5, "events": 5} {
			if d := after[table] - before[table]; d != n {
				t.Errorf("%s: %d more, want %d", table, d, n)
			}
		}
		created, err := f.w.Store.Client.DomainEvent.Query().Where(domainevent.TypeEQ("lead.created")).Count(f.w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, err := f.w.Store.Client.Lead.Query().Count(f.w.Ctx); err != nil || n != created {
			t.Errorf("%d leads, %d lead.created events (%v)", n, created, err)
		}
	})
}
