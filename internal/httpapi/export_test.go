package httpapi_test

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

const (
	mtCSV  = "text/csv"
	mtXLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
)

// exJSON walks a JSON list to its end (pages of 200) as c and returns its
// items in order.
func exJSON(t *testing.T, c *apitest.Client, path string, query url.Values) []map[string]any {
	t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", "200")
	var items []map[string]any
	for {
		var page struct {
			Items      []map[string]any `json:"items"`
			NextCursor *string          `json:"nextCursor"`
		}
		c.Do("GET", path+"?"+q.Encode(), nil).Expect(http.StatusOK).JSON(&page)
		items = append(items, page.Items...)
		if page.NextCursor == nil {
			return items
		}
		q.Set("cursor", *page.NextCursor)
	}
}

// exCell is an item's member as an export writes it.
func exCell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		return fmt.Sprint(v)
	case []any:
		parts := make([]string, len(v))
		for i, p := range v {
			parts[i] = fmt.Sprint(p)
		}
		return strings.Join(parts, "; ")
	}
	return fmt.Sprint(v)
}

// exported is an export read back: its header row and its rows.
type exported struct {
	res    *apitest.Response
	header []string
	rows   [][]string
}

// exExport asks for path?query as a file of media type mt (headers are
// further request headers) and reads it back with encoding/csv or excelize.
func exExport(t *testing.T, c *apitest.Client, path string, query url.Values, mt string, headers ...string) exported {
	t.Helper()
	res := c.Do("GET", path+"?"+query.Encode(), nil, append([]string{"Accept", mt}, headers...)...).Expect(http.StatusOK)
	want := mt
	if mt == mtCSV {
		want += "; charset=utf-8"
	}
	if ct := res.Header.Get("Content-Type"); ct != want {
		t.Fatalf("Content-Type %q, want %q", ct, want)
	}
	if cd := res.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment; filename=") {
		t.Fatalf("Content-Disposition %q", cd)
	}
	var all [][]string
	if mt == mtCSV {
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(res.Body, []byte("\xef\xbb\xbf"))))
		var err error
		if all, err = r.ReadAll(); err != nil {
			t.Fatalf("read CSV: %v", err)
		}
	} else {
		f, err := excelize.OpenReader(bytes.NewReader(res.Body))
		if err != nil {
			t.Fatalf("open XLSX: %v", err)
		}
		defer f.Close()
		sheets := f.GetSheetList()
		if len(sheets) != 1 {
			t.Fatalf("sheets %v", sheets)
		}
		if all, err = f.GetRows(sheets[0]); err != nil {
			t.Fatalf("read XLSX: %v", err)
		}
		for i := range all { // excelize drops trailing empty cells
			for len(all[i]) < len(all[0]) {
				all[i] = append(all[i], "")
			}
		}
	}
	if len(all) == 0 {
		t.Fatal("an export without a header row")
	}
	return exported{res: res, header: all[0], rows: all[1:]}
}

// exSame fails unless the export holds exactly the JSON list's items,
// in order, each column equal to the member its English header names.
func exSame(t *testing.T, what string, got exported, items []map[string]any) {
	t.Helper()
	if len(got.rows) != len(items) {
		t.Fatalf("%s: %d rows, JSON list has %d", what, len(got.rows), len(items))
	}
	for i, it := range items {
		for j, key := range got.header {
			if want := exCell(it[key]); got.rows[i][j] != want {
				t.Fatalf("%s row %d (%v) %s: %q, JSON %q", what, i, it["id"], key, got.rows[i][j], want)
			}
		}
	}
	// Every member of the JSON items is a column.
	cols := map[string]bool{}
	for _, h := range got.header {
		cols[h] = true
	}
	for _, it := range items {
		for k := range it {
			if !cols[k] {
				t.Fatalf("%s: JSON member %s has no column", what, k)
			}
		}
	}
}

// TestExportEqualsJSONList: each list's CSV and XLSX export, read back,
// holds the JSON list's rows for the same caller and query: the same ids
// in the same order, the same values, the pooled ones masked the same.
func TestExportEqualsJSONList(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newMSWorld(t, dbURL, []string{"name"}, []string{"name"})
		// Pooled leads the rep sees masked but for their names.
		for i := range 3 {
			w.admn.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("池中客户%d", i), "company": w.env.Unique("导出测试科技有限公司"),
				"phone": fmt.Sprintf("1356666%04d", i), "email": fmt.Sprintf("pool%d@export.example.cn", i), "tags": []string{"hot", "展会"},
				"notes": "line one\nline \"two\", with a comma", "region": "宁波", "poolId": w.leadPool}).Expect(http.StatusCreated)
		}
		// His own leads, unmasked, one whose name a spreadsheet would run.
		mine := []string{}
		for i, name := range []string{"=HYPERLINK(\"http://x\")", "张三"} {
			id := w.rep.Do("POST", "/v1/leads", map[string]any{"name": name, "company": w.env.Unique("自有公司"),
				"phone": fmt.Sprintf("1390000%04d", i), "source": "website"}).Expect(http.StatusCreated).Map()["id"].(string)
			mine = append(mine, id)
		}
		// Another rep's lead, which he may not see.
		other := w.rep2.Do("POST", "/v1/leads", map[string]any{"name": "别人的", "company": w.env.Unique("他人公司")}).Expect(http.StatusCreated).Map()["id"].(string)
		w.admn.Do("POST", "/v1/customers", map[string]any{"name": w.env.Unique("池中客户公司"), "address": "宁波市某路1号",
			"creditLimit": "1234.50", "poolId": w.customerPool}).Expect(http.StatusCreated)
		customer := w.rep.Do("POST", "/v1/customers", map[string]any{"name": w.env.Unique("我的客户"), "grade": "A",
			"creditLimit": "99.90", "tags": []string{"vip"}}).Expect(http.StatusCreated).Map()["id"].(string)
		for i, name := range []string{"李四", "王五"} {
			w.rep.Do("POST", "/v1/customers/"+customer+"/contacts", map[string]any{"name": name, "phone": fmt.Sprintf("1380000%04d", i),
				"wechat": "wx_" + name}).Expect(http.StatusCreated)
		}
		at := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
		for i := range 2 {
			logFollowUp(w.rep, "lead", mine[0], at.Add(time.Duration(i)*time.Hour), "content", "回访，第"+fmt.Sprint(i)+"次").Expect(http.StatusCreated)
		}

		cases := []struct {
			name  string
			c     *apitest.Client
			path  string
			query url.Values
		}{
			{"rep leads", w.rep, "/v1/leads", nil},
			{"rep leads oldest first", w.rep, "/v1/leads", url.Values{"sort": {"createdAt"}}},
			{"rep own leads", w.rep, "/v1/leads", url.Values{"ownerId": {"me"}}},
			{"rep pooled leads by region (masked: none)", w.rep, "/v1/leads", url.Values{"region": {"宁波"}}},
			{"admin leads", w.admn, "/v1/leads", url.Values{"q": {"池中客户"}}},
			{"rep customers", w.rep, "/v1/customers", nil},
			{"admin customers", w.admn, "/v1/customers", url.Values{"grade": {"A"}}},
			{"rep contacts", w.rep, "/v1/customers/" + customer + "/contacts", nil},
			{"rep follow-ups", w.rep, "/v1/follow-ups", url.Values{"subjectType": {"lead"}, "subjectId": {mine[0]}}},
		}
		for _, tc := range cases {
			items := exJSON(t, tc.c, tc.path, tc.query)
			for _, mt := range []string{mtCSV, mtXLSX} {
				got := exExport(t, tc.c, tc.path, tc.query, mt)
				exSame(t, tc.name+" "+mt, got, items)
				if got.header[0] != "id" {
					t.Fatalf("%s: English header %v", tc.name, got.header)
				}
			}
		}

		// Masking is in force in the export, and scope too.
		rep := exExport(t, w.rep, "/v1/leads", nil, mtCSV)
		col := func(name string) int {
			for i, h := range rep.header {
				if h == name {
					return i
				}
			}
			t.Fatalf("no column %s", name)
			return -1
		}
		masked := 0
		for _, r := range rep.rows {
			if r[col("id")] == other {
				t.Fatal("the rep's export holds another rep's lead")
			}
			if r[col("masked")] == "true" {
				masked++
				if !strings.Contains(r[col("phone")], "****") || strings.Contains(r[col("email")], "pool") || r[col("tags")] != "" {
					t.Fatalf("a masked lead exported unmasked: %q", r)
				}
			}
		}
		if masked != 3 || len(rep.rows) != 5 {
			t.Fatalf("the rep's export: %d rows, %d masked; want 5 and 3", len(rep.rows), masked)
		}
	})
}

// TestExportOptions: Chinese headers, the BOM and neutralized formulas of
// bom=true, the choice by Accept and 406 for an Accept nothing satisfies,
// errors as problems, and the audit row of each export.
func TestExportOptions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		rep, repC := env.User("rep", nil)
		_, admin := env.User("admin", nil)
		for _, name := range []string{"=1+2", "北京客户"} {
			repC.Do("POST", "/v1/leads", map[string]any{"name": name, "company": env.Unique("公司"), "phone": "+86 139 0000 000" + fmt.Sprint(len(name)%10)}).Expect(http.StatusCreated)
		}
		items := exJSON(t, repC, "/v1/leads", nil)

		zh := exExport(t, repC, "/v1/leads", nil, mtXLSX, "Accept-Language", "zh-CN,zh;q=0.9,en;q=0.5")
		if zh.header[0] != "编号" || zh.header[1] != "名称" {
			t.Fatalf("Chinese headers: %v", zh.header)
		}
		if en := exExport(t, repC, "/v1/leads", nil, mtCSV, "Accept-Language", "en-US,zh;q=0.1"); en.header[0] != "id" {
			t.Fatalf("English headers: %v", en.header)
		}

		plain := exExport(t, repC, "/v1/leads", url.Values{"bom": {"false"}}, mtCSV)
		if bytes.HasPrefix(plain.res.Body, []byte("\xef\xbb\xbf")) {
			t.Fatal("a BOM without bom=true")
		}
		excel := exExport(t, repC, "/v1/leads", url.Values{"bom": {"true"}}, mtCSV, "Accept-Language", "zh")
		if !bytes.HasPrefix(excel.res.Body, []byte("\xef\xbb\xbf")) {
			t.Fatalf("bom=true without a BOM: % x", excel.res.Body[:4])
		}
		if excel.header[0] != "编号" {
			t.Fatalf("bom=true, zh: headers %v", excel.header)
		}
		for i, it := range items {
			name, phone := exCell(it["name"]), exCell(it["phone"])
			if strings.HasPrefix(name, "=") {
				name = "'" + name
			}
			if excel.rows[i][1] != name || excel.rows[i][3] != "'"+phone || plain.rows[i][1] != exCell(it["name"]) {
				t.Fatalf("row %d: bom=true %q/%q, plain %q; JSON %q/%q", i, excel.rows[i][1], excel.rows[i][3], plain.rows[i][1], it["name"], phone)
			}
		}
		// bom does not apply to XLSX, where every cell is text anyway.
		exSame(t, "xlsx bom=true", exExport(t, repC, "/v1/leads", url.Values{"bom": {"true"}}, mtXLSX), items)

		// limit, cursor and includeTotal do not apply to an export.
		first := repC.Do("GET", "/v1/leads?limit=1", nil).Expect(http.StatusOK).Map()
		exSame(t, "export with a page's parameters", exExport(t, repC, "/v1/leads",
			url.Values{"limit": {"1"}, "cursor": {first["nextCursor"].(string)}, "includeTotal": {"true"}}, mtCSV), items)

		// Accept decides, with its qualities; JSON when it states no preference.
		for accept, want := range map[string]string{
			"":                                    "application/json",
			"*/*":                                 "application/json",
			"application/json, text/csv":          "application/json",
			"application/xml, text/csv;q=0.5":     mtCSV,
			"text/*":                              mtCSV,
			"application/*;q=0.2, " + mtXLSX:      mtXLSX,
			"text/csv;q=0, application/json;q=.1": "application/json",
		} {
			res := repC.Do("GET", "/v1/leads", nil, "Accept", accept).Expect(http.StatusOK)
			if ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type")); ct != want {
				t.Errorf("Accept %q: %s, want %s", accept, ct, want)
			}
		}
		for _, accept := range []string{"text/html", "application/pdf, image/*", "text/csv;q=0"} {
			repC.Do("GET", "/v1/leads", nil, "Accept", accept).ExpectProblem(http.StatusNotAcceptable, "not_acceptable")
		}
		// A bad filter is a problem, not a broken file.
		p := repC.Do("GET", "/v1/leads?q=%20-%20", nil, "Accept", mtCSV).ExpectProblem(http.StatusBadRequest, "validation_failed")
		if len(p.Errors) != 1 || p.Errors[0].Field != "query.q" {
			t.Fatalf("a bad q in an export: %+v", p)
		}
		repC.Do("GET", "/v1/customers/"+rep.ID.String()+"/contacts", nil, "Accept", mtXLSX).ExpectProblem(http.StatusNotFound, "not_found")

		// Each export is audited, with its format and row count and the
		// names of its query parameters, never their values.
		repC.Do("GET", "/v1/leads?q=%E5%8C%97%E4%BA%AC&region=x&13900000000=1", nil, "Accept", mtCSV).Expect(http.StatusOK)
		var audit struct {
			Items []struct {
				ActorID   string `json:"actorId"`
				Operation string `json:"operation"`
				Outcome   string `json:"outcome"`
				Status    int    `json:"status"`
				Detail    string `json:"detail"`
			} `json:"items"`
		}
		admin.Do("GET", "/v1/audit-events?operation=listLeads&actorId="+rep.ID.String()+"&limit=100", nil).Expect(http.StatusOK).JSON(&audit)
		details := map[string]int{}
		for _, ev := range audit.Items {
			if ev.Outcome != "success" || ev.Status != http.StatusOK || ev.ActorID != rep.ID.String() {
				t.Errorf("audit row %+v", ev)
			}
			if strings.Contains(ev.Detail, "北京") || strings.Contains(ev.Detail, "139") {
				t.Errorf("the audit row holds a query value: %q", ev.Detail)
			}
			details[ev.Detail]++
		}
		for detail, n := range map[string]int{
			"export format=xlsx rows=2":                                2, // zh; Accept application/*;q=0.2, XLSX
			"export format=csv rows=2":                                 3, // en; Accept application/xml, text/csv;q=0.5; Accept text/*
			"export format=csv rows=2 query=bom":                       2,
			"export format=xlsx rows=2 query=bom":                      1,
			"export format=csv rows=2 query=cursor,includeTotal,limit": 1,
			"export format=csv rows=0 query=q,region":                  1,
		} {
			if details[detail] != n {
				t.Errorf("audit rows %q: %d, want %d (all: %v)", detail, details[detail], n, details)
			}
		}
		if len(audit.Items) != 10 {
			t.Errorf("%d audit rows of the rep's listLeads, want 10, one per export (JSON lists are not audited): %v", len(audit.Items), details)
		}
	})
}

// TestExportByAPIKey: a partner's key exports what its JSON list shows
// it (its pool's records) under the list's scope, and no more.
func TestExportByAPIKey(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newScWorld(t, dbURL)
		for range 2 {
			w.record(t, "lead", w.leadsP)
		}
		w.record(t, "lead", w.leadsQ)
		key := w.key(t, w.leadsP, "leads:read")
		items := exJSON(t, key, "/v1/leads", nil)
		if len(items) != 2 {
			t.Fatalf("the key lists %d leads, want its pool's 2", len(items))
		}
		for _, mt := range []string{mtCSV, mtXLSX} {
			exSame(t, "key "+mt, exExport(t, key, "/v1/leads", nil, mt), items)
		}
		w.key(t, "", "customers:read").Do("GET", "/v1/leads", nil, "Accept", mtCSV).
			ExpectProblem(http.StatusForbidden, "insufficient_scope")
	})
}
