package imports_test

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/shoalcrm/shoal/ent"
	entimport "github.com/shoalcrm/shoal/ent/bulkimport"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/imports"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func ptr[T any](v T) *T { return &v }

// LeadFile is a lead file with Chinese headers: rows 2, 8, 9 and 10 are
// good; row 3 has no name, 4 a bad phone, 5 a bad email, 6 repeats row
// 2's phone, 7 has the phone of a lead already in Shoal (existingPhone).
func LeadFile(tag string) string {
	return strings.Join([]string{
		"姓名,公司,手机,邮箱,来源,地区,生日",
		fmt.Sprintf("张三,%s甲公司,13800000001,,展会,上海,", tag),
		fmt.Sprintf(",%s乙公司,13800000002,,,,", tag),
		"李四,,phone?,,,,",
		"王五,,,not-an-email,,,",
		"赵六,,138 0000 0001,,,,",
		"孙七,,13900000000,,,,",
		fmt.Sprintf("周八,%s丙公司,,zhou@example.com,,,", tag),
		fmt.Sprintf("吴九,%s丁公司,13800000009,,,,", tag),
		fmt.Sprintf("郑十,%s戊公司,13800000010,,,,1990-01-01", tag),
	}, "\n") + "\n"
}

const existingPhone = "13900000000"

// snapshot counts the rows of every table a created record writes to.
func snapshot(t *testing.T, w *testkit.World) map[string]int {
	t.Helper()
	c := w.Store.Client
	ctx := w.Ctx
	out := map[string]int{}
	count := func(name string, n int, err error) {
		if err != nil {
			t.Fatalf("count %s: %v", name, err)
		}
		out[name] = n
	}
	n, err := c.Lead.Query().Count(ctx)
	count("leads", n, err)
	n, err = c.Customer.Query().Count(ctx)
	count("customers", n, err)
	n, err = c.Contact.Query().Count(ctx)
	count("contacts", n, err)
	n, err = c.DedupeKey.Query().Count(ctx)
	count("dedupe_keys", n, err)
	n, err = c.OwnershipChange.Query().Count(ctx)
	count("history", n, err)
	n, err = c.SearchGram.Query().Count(ctx)
	count("search_grams", n, err)
	n, err = c.DomainEvent.Query().Where(domainevent.SubjectKindNEQ("import")).Count(ctx)
	count("events", n, err)
	users, err := c.User.Query().All(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		out["owned_leads"] += u.OwnedLeads
		out["owned_customers"] += u.OwnedCustomers
	}
	return out
}

type fixture struct {
	w   *testkit.World
	svc *imports.Service
	rep *auth.Principal
}

// newFixture: a rep who may own 3 leads, and a lead with existingPhone.
func newFixture(t *testing.T, url string) *fixture {
	w := testkit.New(t, url, app.Config{})
	team := w.Team("sales", nil).ID
	_, rep := w.Actor(auth.RoleRep, &team, org.Caps{MaxOwnedLeads: ptr(3)})
	_, other := w.Actor(auth.RoleRep, &team)
	if _, err := w.App.Records.CreateLead(w.Ctx, other, records.LeadInput{Name: ptr("老客户"), Phone: ptr(existingPhone)}); err != nil {
		t.Fatal(err)
	}
	w.App.Imports.SetBatch(2) // several batches, and a dry run's caps carried across them
	return &fixture{w: w, svc: w.App.Imports, rep: rep}
}

// run creates an import and works it synchronously (the job's work).
func (f *fixture) run(t *testing.T, p *auth.Principal, in imports.Request) *ent.BulkImport {
	t.Helper()
	imp, err := f.svc.Create(f.w.Ctx, p, in)
	if err != nil {
		t.Fatalf("create import: %v", err)
	}
	if imp.Status != entimport.StatusQueued {
		t.Fatalf("status %s", imp.Status)
	}
	if err := f.svc.Run(f.w.Ctx, imp.ID); err != nil {
		t.Fatalf("run import: %v", err)
	}
	got, err := f.svc.Get(f.w.Ctx, p, imp.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func problems(imp *ent.BulkImport) []string {
	var out []string
	for _, p := range imp.Problems {
		out = append(out, fmt.Sprintf("%d/%s/%s", p.Row, p.Column, p.Code))
	}
	slices.Sort(out)
	return out
}

func TestImportLeads(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		file := []byte(LeadFile("t"))
		// Row 10 is the fourth good row: over the rep's cap of 3, it is
		// created in the pool, as createLead does, and reported.
		wantProblems := []string{"10//over_cap", "1/生日/unknown_column", "3/姓名/required", "4/手机/invalid_phone",
			"5/邮箱/invalid_email", "6/手机/duplicate_in_file", "7/手机/duplicate"}
		slices.Sort(wantProblems)

		// A dry run reports every problem and changes nothing.
		before := snapshot(t, f.w)
		dry := f.run(t, f.rep, imports.Request{Kind: "lead", File: file, DryRun: true, FileName: "leads.csv"})
		if after := snapshot(t, f.w); !mapsEqual(before, after) {
			t.Fatalf("dry run changed the database:\nbefore %v\nafter  %v", before, after)
		}
		if got := problems(dry); !slices.Equal(got, wantProblems) {
			t.Errorf("dry run problems %q, want %q", got, wantProblems)
		}
		c := dry.Counts
		if dry.Status != entimport.StatusSucceeded || dry.Total != 9 || dry.Processed != 9 || c.Created != 4 || c.Owned != 3 ||
			c.Pooled != 1 || c.OverCap != 1 || c.Invalid != 3 || c.Duplicates != 2 {
			t.Errorf("dry run: status %s total %d processed %d counts %+v", dry.Status, dry.Total, dry.Processed, c)
		}

		// The real run imports the good rows, as the dry run said.
		real := f.run(t, f.rep, imports.Request{Kind: "lead", File: file})
		if real.Counts.Created != 4 || real.Counts.Owned != 3 || real.Counts.OverCap != 1 || real.Counts.Invalid != 3 || real.Counts.Duplicates != 2 {
			t.Errorf("real run counts %+v", real.Counts)
		}
		if got := problems(real); !slices.Equal(got, wantProblems) {
			t.Errorf("real run problems %q, want %q", got, wantProblems)
		}
		after := snapshot(t, f.w)
		if after["leads"] != before["leads"]+4 || after["owned_leads"] != before["owned_leads"]+3 {
			t.Errorf("real run: %v -> %v", before, after)
		}
		// Each row went through createLead's rule set: owned by the rep
		// with its history row and lead.created event.
		if n := after["history"] - before["history"]; n != 4 {
			t.Errorf("history rows %d, want 4", n)
		}
		created, err := f.w.Store.Client.DomainEvent.Query().Where(domainevent.TypeEQ("lead.created")).Count(f.w.Ctx)
		if err != nil || created != 5 {
			t.Errorf("lead.created events %d (%v), want 5", created, err)
		}

		// A re-run creates nothing: every good row is now a duplicate.
		again := f.run(t, f.rep, imports.Request{Kind: "lead", File: file})
		if again.Counts.Created != 0 || again.Counts.Duplicates != 6 || again.Counts.Invalid != 3 {
			t.Errorf("re-run counts %+v", again.Counts)
		}
		if final := snapshot(t, f.w); !mapsEqual(after, final) {
			t.Errorf("re-run changed the database:\nbefore %v\nafter  %v", after, final)
		}
		// A retried job of an ended import does nothing.
		if err := f.svc.Run(f.w.Ctx, real.ID); err != nil {
			t.Fatal(err)
		}
		if final := snapshot(t, f.w); !mapsEqual(after, final) {
			t.Errorf("a second run of the job changed the database")
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestImportEncodingsAndXLSX: a GBK CSV of leads and an XLSX of customers
// with their first contact, Chinese headers both.
func TestImportEncodingsAndXLSX(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte("姓名,公司名称,手机号,备注\r\n陈一,杭州某某贸易,13700000001,老客户介绍\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		imp := f.run(t, f.rep, imports.Request{Kind: "lead", File: gbk})
		if imp.Encoding != imports.EncodingGB18030 || imp.Counts.Created != 1 || imp.ProblemCount != 0 {
			t.Fatalf("gbk: encoding %s counts %+v problems %v", imp.Encoding, imp.Counts, problems(imp))
		}
		leads, _, _, err := f.w.App.Records.ListLeads(f.w.Ctx, f.rep, records.Filter{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(leads) != 1 || leads[0].Name != "陈一" || leads[0].Company != "杭州某某贸易" || leads[0].Notes != "老客户介绍" {
			t.Fatalf("imported lead %+v", leads)
		}

		xlsx := xlsxFile(t, [][]string{
			{"客户名称", "联系人", "手机", "邮箱", "职位", "客户等级", "地区"},
			{"北京某某科技有限公司", "刘经理", "13600000001", "liu@example.com", "采购经理", "A", "北京"},
			{"北京某某科技有限公司", "王经理", "13600000002", "", "", "", ""}, // the same company
			{"深圳某某电子", "", "13600000003", "", "", "Z", ""},       // a grade that is none
			{"广州某某物流", "", "", "", "", "B", "广州"},
		})
		imp = f.run(t, f.rep, imports.Request{Kind: "customer", File: xlsx, FileName: "客户.xlsx"})
		if imp.Format != imports.FormatXLSX || imp.Counts.Created != 2 || imp.Counts.Duplicates != 1 || imp.Counts.Invalid != 1 {
			t.Fatalf("xlsx: %+v %v", imp.Counts, problems(imp))
		}
		if got, want := problems(imp), []string{"3/客户名称/duplicate_in_file", "4/客户等级/invalid_value"}; !slices.Equal(got, want) {
			t.Errorf("xlsx problems %q, want %q", got, want)
		}
		custs, _, _, err := f.w.App.Records.ListCustomers(f.w.Ctx, f.rep, records.Filter{Limit: 10})
		if err != nil || len(custs) != 2 {
			t.Fatalf("customers %d (%v)", len(custs), err)
		}
		for _, cu := range custs {
			contacts, err := f.w.Store.Client.Contact.Query().Where(contact.CustomerID(cu.ID)).All(f.w.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cu.Name == "北京某某科技有限公司" {
				if len(contacts) != 1 || contacts[0].Name != "刘经理" || !contacts[0].IsPrimary || contacts[0].Title != "采购经理" || cu.Grade != "A" {
					t.Errorf("customer %s grade %s contacts %+v", cu.Name, cu.Grade, contacts)
				}
			} else if len(contacts) != 0 {
				t.Errorf("customer %s has contacts %+v", cu.Name, contacts)
			}
		}
	})
}

func xlsxFile(t *testing.T, rows [][]string) []byte {
	t.Helper()
	x := excelize.NewFile()
	defer x.Close()
	for i, r := range rows {
		cells := make([]any, len(r))
		for j, c := range r {
			cells[j] = c
		}
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := x.SetSheetRow(x.GetSheetName(0), cell, &cells); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := x.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportRefusals: what refuses an import at once, and who sees one.
func TestImportRefusals(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		w := f.w
		file := []byte("姓名,手机\n甲,13500000001\n")
		for name, c := range map[string]struct {
			in   imports.Request
			code string
		}{
			"no file":      {imports.Request{Kind: "lead"}, "required"},
			"bad kind":     {imports.Request{Kind: "opportunity", File: file}, "invalid"},
			"unreadable":   {imports.Request{Kind: "lead", File: []byte("PK\x03\x04nope")}, "unreadable"},
			"no name":      {imports.Request{Kind: "lead", File: []byte("公司,手机\n甲,1\n")}, "missing_column"},
			"bad encoding": {imports.Request{Kind: "lead", File: file, Encoding: "latin1"}, "invalid"},
			"unknown pool": {imports.Request{Kind: "lead", File: file, PoolID: ptr(uuid.New())}, "unknown_pool"},
			"bad mapping":  {imports.Request{Kind: "lead", File: file, Mapping: map[string]string{"手机": "mobile"}}, "unknown_field"},
			"lead pool":    {imports.Request{Kind: "customer", File: []byte("客户名称\n甲\n"), PoolID: ptr(poolOf(t, w, "lead"))}, "wrong_pool_kind"},
		} {
			_, err := f.svc.Create(w.Ctx, f.rep, c.in)
			e, ok := apperr.As(err)
			if !ok || len(e.Fields) == 0 || e.Fields[0].Code != c.code {
				if !(ok && e.Code == c.code) {
					t.Errorf("%s: %v, want %s", name, err, c.code)
				}
			}
		}
		// Nothing was queued by the refusals.
		if n, _ := w.Store.Client.BulkImport.Query().Count(w.Ctx); n != 0 {
			t.Errorf("%d imports stored", n)
		}

		imp, err := f.svc.Create(w.Ctx, f.rep, imports.Request{Kind: "lead", File: file})
		if err != nil {
			t.Fatal(err)
		}
		team := w.Team("other", nil).ID
		_, stranger := w.Actor(auth.RoleRep, &team)
		_, admin := w.Actor(auth.RoleAdmin, nil)
		if _, err := f.svc.Get(w.Ctx, stranger, imp.ID); !apperr.HasCode(err, "not_found") {
			t.Errorf("a stranger gets it: %v", err)
		}
		if _, err := f.svc.Get(w.Ctx, admin, imp.ID); err != nil {
			t.Errorf("admin: %v", err)
		}
		list, _, err := f.svc.List(w.Ctx, stranger, nil, 10)
		if err != nil || len(list) != 0 {
			t.Errorf("a stranger lists %d (%v)", len(list), err)
		}
		list, _, err = f.svc.List(w.Ctx, f.rep, nil, 10)
		if err != nil || len(list) != 1 || list[0].Content != nil {
			t.Errorf("the importer lists %d (%v)", len(list), err)
		}
	})
}

func poolOf(t *testing.T, w *testkit.World, kind string) uuid.UUID {
	t.Helper()
	pl, err := w.Store.Client.Pool.Query().Where().All(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pl {
		if string(p.Kind) == kind {
			return p.ID
		}
	}
	t.Fatal("no pool")
	return uuid.Nil
}

// TestImportResumes: a job cut short after two batches and run again
// resumes after the last committed row: the import ends as one run would
// have, and no row is imported twice.
func TestImportResumes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newFixture(t, url)
		before := snapshot(t, f.w)
		imp, err := f.svc.Create(f.w.Ctx, f.rep, imports.Request{Kind: "lead", File: []byte(LeadFile("r"))})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if done, err := f.svc.StepOnce(f.w.Ctx, imp.ID); err != nil || done {
				t.Fatalf("step: done %v, %v", done, err)
			}
		}
		mid, err := f.svc.Get(f.w.Ctx, f.rep, imp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if mid.Status != entimport.StatusRunning || mid.Processed != 4 || mid.Counts.Created != 1 {
			t.Fatalf("after two batches: %s, processed %d, counts %+v", mid.Status, mid.Processed, mid.Counts)
		}
		if err := f.svc.Run(f.w.Ctx, imp.ID); err != nil {
			t.Fatal(err)
		}
		end, err := f.svc.Get(f.w.Ctx, f.rep, imp.ID)
		if err != nil {
			t.Fatal(err)
		}
		if end.Status != entimport.StatusSucceeded || end.Processed != 9 || end.Counts.Created != 4 || end.Counts.Duplicates != 2 {
			t.Fatalf("resumed: %s, processed %d, counts %+v", end.Status, end.Processed, end.Counts)
		}
		if n := snapshot(t, f.w)["leads"] - before["leads"]; n != 4 {
			t.Errorf("%d leads created, want 4", n)
		}
	})
}
