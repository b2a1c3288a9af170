package httpapi_test

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// imResult is an Import as the API answers it.
type imResult struct {
	ID, Status, Encoding, Format string
	Total, Processed             int
	Counts                       struct{ Created, Owned, Pooled, OverCap, Invalid, Duplicates int }
	Problems                     []struct {
		Row          int
		Column, Code string
	}
	ProblemCount int
}

func (r imResult) problems() []string {
	var out []string
	for _, p := range r.Problems {
		out = append(out, fmt.Sprintf("%d/%s/%s", p.Row, p.Column, p.Code))
	}
	slices.Sort(out)
	return out
}

// imForm is a createImport multipart body and its Content-Type.
func imForm(t *testing.T, fileName string, file []byte, fields map[string]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if file != nil {
		fw, err := mw.CreateFormFile("file", fileName)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(file)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// imPost uploads a file and returns the answer.
func imPost(t *testing.T, c *apitest.Client, fileName string, file []byte, fields map[string]string) *apitest.Response {
	t.Helper()
	body, ct := imForm(t, fileName, file, fields)
	return c.Do("POST", "/v1/imports", body, "Content-Type", ct)
}

// imRun uploads a file, waits for its job and returns the finished import.
func imRun(t *testing.T, env *apitest.Env, c *apitest.Client, fileName string, file []byte, fields map[string]string) imResult {
	t.Helper()
	res := imPost(t, c, fileName, file, fields).Expect(http.StatusAccepted)
	var r imResult
	res.JSON(&r)
	if r.Status != "queued" || res.Header.Get("Location") != "/v1/imports/"+r.ID {
		t.Fatalf("created: %s, Location %q", res.Body, res.Header.Get("Location"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		env.WorkJobs()
		c.Do("GET", "/v1/imports/"+r.ID, nil).Expect(http.StatusOK).JSON(&r)
		if r.Status == "succeeded" || r.Status == "failed" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("import still %s after 30 s", r.Status)
		}
	}
}

// imCounts counts the rows a created record writes to.
func imCounts(t *testing.T, env *apitest.Env) [4]int {
	t.Helper()
	c, ctx := env.World.Store.Client, env.World.Ctx
	leads, err1 := c.Lead.Query().Count(ctx)
	custs, err2 := c.Customer.Query().Count(ctx)
	keys, err3 := c.DedupeKey.Query().Count(ctx)
	evs, err4 := c.DomainEvent.Query().Where(domainevent.SubjectKindNEQ("import")).Count(ctx)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return [4]int{leads, custs, keys, evs}
}

// TestImportContract: a GBK CSV of leads with bad, duplicate and over-cap
// rows, dry and real, then again; an XLSX of customers with Chinese
// headers; who sees an import; refusals.
func TestImportContract(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		team := env.Team("sales", nil).ID
		three := 3
		repU, rep := env.User(auth.RoleRep, &team, org.Caps{MaxOwnedLeads: &three})
		_, other := env.User(auth.RoleRep, &team)
		_, admin := env.User(auth.RoleAdmin, nil)
		other.Do("POST", "/v1/leads", map[string]any{"name": "老客户", "phone": "13900000000"}).Expect(http.StatusCreated)

		csv := strings.Join([]string{
			"姓名,公司,手机,邮箱,来源,地区,生日",
			"张三,甲公司,13800000001,,展会,上海,",
			",乙公司,13800000002,,,,",
			"李四,,phone?,,,,",
			"王五,,,not-an-email,,,",
			"赵六,,138 0000 0001,,,,",
			"孙七,,13900000000,,,,",
			"周八,丙公司,,zhou@example.com,,,",
			"吴九,丁公司,13800000009,,,,",
			"郑十,戊公司,13800000010,,,,",
		}, "\r\n")
		gbk, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(csv))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"10//over_cap", "1/生日/unknown_column", "3/姓名/required", "4/手机/invalid_phone",
			"5/邮箱/invalid_email", "6/手机/duplicate_in_file", "7/手机/duplicate"}
		slices.Sort(want)

		before := imCounts(t, env)
		dry := imRun(t, env, rep, "线索.csv", gbk, map[string]string{"kind": "lead", "dryRun": "true"})
		if after := imCounts(t, env); after != before {
			t.Fatalf("dry run wrote: %v -> %v", before, after)
		}
		if dry.Status != "succeeded" || dry.Encoding != "gb18030" || dry.Total != 9 || dry.Processed != 9 ||
			dry.Counts.Created != 4 || dry.Counts.OverCap != 1 || dry.Counts.Invalid != 3 || dry.Counts.Duplicates != 2 {
			t.Errorf("dry run: %+v", dry)
		}
		if got := dry.problems(); !slices.Equal(got, want) {
			t.Errorf("dry run problems %q, want %q", got, want)
		}

		real := imRun(t, env, rep, "线索.csv", gbk, map[string]string{"kind": "lead"})
		if real.Counts != dry.Counts || !slices.Equal(real.problems(), want) {
			t.Errorf("real run: %+v, %q; dry run said %+v", real.Counts, real.problems(), dry.Counts)
		}
		after := imCounts(t, env)
		if after[0] != before[0]+4 {
			t.Errorf("leads %d -> %d, want 4 more", before[0], after[0])
		}
		if mine, err := env.World.Store.Client.Lead.Query().Where(lead.OwnerID(repU.ID)).Count(env.World.Ctx); err != nil || mine != 3 {
			t.Errorf("the rep owns %d leads (%v), want his cap of 3", mine, err)
		}

		again := imRun(t, env, rep, "线索.csv", gbk, map[string]string{"kind": "lead"})
		if again.Counts.Created != 0 || again.Counts.Duplicates != 6 {
			t.Errorf("re-run: %+v", again.Counts)
		}
		if final := imCounts(t, env); final != after {
			t.Errorf("re-run wrote: %v -> %v", after, final)
		}

		// An XLSX of customers with Chinese headers and a first contact.
		xlsx := imXLSX(t, [][]string{
			{"客户名称", "联系人", "手机", "邮箱", "客户等级"},
			{"北京某某科技有限公司", "刘经理", "13600000001", "liu@example.com", "A"},
			{"深圳某某电子", "陈总", "13800000001", "", "B"}, // the phone of an imported lead
		})
		cu := imRun(t, env, rep, "客户.xlsx", xlsx, map[string]string{"kind": "customer"})
		if cu.Format != "xlsx" || cu.Counts.Created != 1 || cu.Counts.Duplicates != 1 ||
			!slices.Equal(cu.problems(), []string{"3/手机/duplicate"}) {
			t.Errorf("xlsx: %+v %q", cu.Counts, cu.problems())
		}

		// Who sees imports: the creator and admins; another rep, 404.
		var list struct{ Items []imResult }
		rep.Do("GET", "/v1/imports", nil).Expect(http.StatusOK).JSON(&list)
		if len(list.Items) != 4 {
			t.Errorf("the importer lists %d imports, want 4", len(list.Items))
		}
		admin.Do("GET", "/v1/imports/"+real.ID, nil).Expect(http.StatusOK)
		other.Do("GET", "/v1/imports/"+real.ID, nil).ExpectProblem(http.StatusNotFound, "not_found")
		other.Do("GET", "/v1/imports", nil).Expect(http.StatusOK).JSON(&list)
		if len(list.Items) != 0 {
			t.Errorf("another rep lists %d imports", len(list.Items))
		}

		// Refusals change nothing.
		n := imCounts(t, env)
		imPost(t, rep, "x.csv", []byte("公司,手机\n甲,1\n"), map[string]string{"kind": "lead"}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		imPost(t, rep, "x.xls", []byte{0xD0, 0xCF, 0x11, 0xE0, 1, 2}, map[string]string{"kind": "lead"}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		imPost(t, rep, "x.csv", []byte("姓名\n甲\n"), map[string]string{"kind": "opportunity"}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		imPost(t, rep, "", nil, map[string]string{"kind": "lead"}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		imPost(t, rep, "x.csv", []byte("姓名\n甲\n"), map[string]string{"kind": "lead", "mapping": "{not json"}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		rep.Do("POST", "/v1/imports", map[string]any{"kind": "lead"}).ExpectProblem(http.StatusUnsupportedMediaType, "unsupported_media")
		big := append([]byte("姓名\n"), bytes.Repeat([]byte("甲\n"), 11<<20)...)
		bigBody, bigType := imForm(t, "big.csv", big, map[string]string{"kind": "lead"})
		rep.Do("POST", "/v1/imports", bigBody, "Content-Type", bigType, "Expect", "100-continue").
			ExpectProblem(http.StatusRequestEntityTooLarge, "payload_too_large")
		if imCounts(t, env) != n {
			t.Errorf("a refused import wrote")
		}

		// API keys: the kind's write scope.
		leadsKey := idKeyClient(env, idCreateKey(t, admin, "leads:write").Secret)
		imPost(t, leadsKey, "c.csv", []byte("客户名称\n甲\n"), map[string]string{"kind": "customer"}).
			ExpectProblem(http.StatusForbidden, "insufficient_scope")
		k := imRun(t, env, leadsKey, "k.csv", []byte("name,email\nPartner Lead,partner@example.com\n"), map[string]string{"kind": "lead"})
		if k.Counts.Created != 1 || k.Counts.Pooled != 1 {
			t.Errorf("key import: %+v", k.Counts)
		}
		rep.Do("GET", "/v1/imports/"+k.ID, nil).ExpectProblem(http.StatusNotFound, "not_found")
	})
}

// A key revoked before its import ran: the import fails and writes
// nothing. Its own world, so that the job queue first starts (WorkJobs)
// after the revocation: in a world whose queue already runs, the import
// may be worked before the key is revoked.
func TestImportOfRevokedKey(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		_, admin := env.User(auth.RoleAdmin, nil)
		gone := idCreateKey(t, admin, "leads:write")
		var queued imResult
		imPost(t, idKeyClient(env, gone.Secret), "g.csv", []byte("name,email\nGone,gone@example.com\n"), map[string]string{"kind": "lead"}).
			Expect(http.StatusAccepted).JSON(&queued)
		admin.Do("DELETE", "/v1/api-keys/"+gone.ID.String(), nil).Expect(http.StatusNoContent)
		n := imCounts(t, env)
		env.WorkJobs()
		var failed struct {
			Status string
			Error  *string
		}
		admin.Do("GET", "/v1/imports/"+queued.ID, nil).Expect(http.StatusOK).JSON(&failed)
		if failed.Status != "failed" || failed.Error == nil || imCounts(t, env) != n {
			t.Errorf("import of a revoked key: %+v", failed)
		}
	})
}

func imXLSX(t *testing.T, rows [][]string) []byte {
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

// TestImportProductsContract: a products CSV through createImport by a
// supervisor (dry, real, again); a rep, an auditor and an API key get
// 403, a poolId 422; no answer echoes an internal cost.
func TestImportProductsContract(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		team := env.Team("sales", nil).ID
		_, sup := env.User(auth.RoleSupervisor, &team)
		_, rep := env.User(auth.RoleRep, &team)
		_, auditor := env.User(auth.RoleAuditor, nil)
		_, admin := env.User(auth.RoleAdmin, nil)
		sup.Do("POST", "/v1/products", map[string]any{"sku": "EXIST-1", "name": "已有", "listPrice": "1.00"}).Expect(http.StatusCreated)

		csv := []byte("产品编号,产品名称,类别,单位,规格,标准价,成本价,启用\r\n" +
			"CRM-1,客户管理系统,软件,套,标准版,1000.00,600.50,是\r\n" +
			"crm-1,重复,,,,10,,\r\n" +
			"Exist-1,已有,,,,10,,\r\n" +
			"CRM-2,坏成本,,,,10,-777.77,\r\n" +
			"CRM-3,坏价格,,,,12.345,,\r\n" +
			"CRM-4,停用品,,,,0.5,,停用\r\n")
		count := func() [2]int {
			c, ctx := env.World.Store.Client, env.World.Ctx
			n, err1 := c.Product.Query().Count(ctx)
			ev, err2 := c.DomainEvent.Query().Where(domainevent.TypeEQ("product.created")).Count(ctx)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			return [2]int{n, ev}
		}
		before := count()

		// Who may: those who may createProduct.
		imPost(t, rep, "p.csv", csv, map[string]string{"kind": "product"}).ExpectProblem(http.StatusForbidden, "forbidden")
		imPost(t, auditor, "p.csv", csv, map[string]string{"kind": "product"}).ExpectProblem(http.StatusForbidden, "forbidden")
		key := idKeyClient(env, idCreateKey(t, admin, "leads:write", "customers:write").Secret)
		imPost(t, key, "p.csv", csv, map[string]string{"kind": "product"}).ExpectProblem(http.StatusForbidden, "forbidden")
		imPost(t, sup, "p.csv", csv, map[string]string{"kind": "product", "poolId": "01a25160-1d0e-7a39-8e55-3b1c4f0e9a21"}).
			ExpectProblem(http.StatusUnprocessableEntity, "not_applicable")
		imPost(t, sup, "p.csv", []byte("产品编号,产品名称\nA-1,甲\n"), map[string]string{"kind": "product"}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		if count() != before {
			t.Fatalf("a refused import wrote")
		}

		want := []string{"3/产品编号/duplicate_in_file", "4/产品编号/duplicate", "5/成本价/invalid_amount", "6/标准价/invalid_amount"}
		dry := imRun(t, env, sup, "产品.csv", csv, map[string]string{"kind": "product", "dryRun": "true"})
		if count() != before {
			t.Fatalf("dry run wrote")
		}
		if dry.Status != "succeeded" || dry.Counts.Created != 2 || dry.Counts.Invalid != 2 || dry.Counts.Duplicates != 2 ||
			dry.Counts.Owned+dry.Counts.Pooled != 0 || !slices.Equal(dry.problems(), want) {
			t.Errorf("dry run: %+v %q", dry, dry.problems())
		}
		real := imRun(t, env, sup, "产品.csv", csv, map[string]string{"kind": "product"})
		if real.Counts != dry.Counts || !slices.Equal(real.problems(), want) {
			t.Errorf("real run: %+v %q", real.Counts, real.problems())
		}
		if got := count(); got != [2]int{before[0] + 2, before[1] + 2} {
			t.Errorf("products and product.created %v -> %v, want 2 more each", before, got)
		}
		// Nothing an import answers carries an amount of the file.
		for _, c := range []*apitest.Client{sup, admin} {
			body := string(c.Do("GET", "/v1/imports/"+real.ID, nil).Expect(http.StatusOK).Body)
			for _, v := range []string{"777", "12.345", "600.5", "1000"} {
				if strings.Contains(body, v) {
					t.Errorf("getImport echoes %s: %s", v, body)
				}
			}
		}
		// The imported products are the catalogue's: a rep reads them
		// without their cost.
		var list struct {
			Items []map[string]any
		}
		rep.Do("GET", "/v1/products?q=CRM", nil).Expect(http.StatusOK).JSON(&list)
		if len(list.Items) != 2 {
			t.Fatalf("rep lists %d products", len(list.Items))
		}
		for _, p := range list.Items {
			if _, ok := p["internalCost"]; ok {
				t.Errorf("a rep sees the cost: %v", p)
			}
		}

		again := imRun(t, env, sup, "产品.csv", csv, map[string]string{"kind": "product"})
		if again.Counts.Created != 0 || again.Counts.Duplicates != 4 || again.Counts.Invalid != 2 {
			t.Errorf("re-run: %+v", again.Counts)
		}
		if got := count(); got != [2]int{before[0] + 2, before[1] + 2} {
			t.Errorf("re-run wrote: %v", got)
		}
	})
}
