package imports_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/ent/product"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/imports"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

// productFixture: a supervisor and a rep in a team, and a product whose
// SKU is EXIST-1 in the catalogue.
type productFixture struct {
	w        *testkit.World
	svc      *imports.Service
	sup, rep *auth.Principal
}

func newProductFixture(t *testing.T, url string) *productFixture {
	w := testkit.New(t, url, app.Config{})
	team := w.Team("sales", nil).ID
	_, sup := w.Actor(auth.RoleSupervisor, &team)
	_, rep := w.Actor(auth.RoleRep, &team)
	if _, err := w.App.Products.Create(w.Ctx, sup, products.Input{SKU: "EXIST-1", Name: "已有产品", ListPrice: money.MustParse("1.00")}); err != nil {
		t.Fatal(err)
	}
	w.App.Imports.SetBatch(2)
	return &productFixture{w: w, svc: w.App.Imports, sup: sup, rep: rep}
}

func (f *productFixture) run(t *testing.T, p *auth.Principal, in imports.Request) *importResult {
	t.Helper()
	fx := &fixture{w: f.w, svc: f.svc}
	imp := fx.run(t, p, in)
	return &importResult{imp.Counts.Created, imp.Counts.Invalid, imp.Counts.Duplicates, imp.Counts.Owned + imp.Counts.Pooled, problems(imp), imp.Problems}
}

type importResult struct {
	created, invalid, duplicates, placed int
	problems                             []string
	raw                                  []schema.ImportProblem
}

// productState counts the catalogue and its product.created events.
func productState(t *testing.T, w *testkit.World) [2]int {
	t.Helper()
	n, err := w.Store.Client.Product.Query().Count(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := w.Store.Client.DomainEvent.Query().Where(domainevent.TypeEQ("product.created")).Count(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	return [2]int{n, ev}
}

// ProductCSV: rows 2, 3 and 8 are good (8 inactive); 4 has a price with
// three decimals, 5 repeats row 2's SKU in lower case, 6 is the SKU of a
// product in Shoal (another case), 7 a negative internal cost.
const ProductCSV = "产品编号,产品名称,类别,单位,规格,标准价,成本价,启用\n" +
	"CRM-1,客户管理系统,软件,套,标准版,1000.00,600.50,是\n" +
	"CRM-2,呼叫中心,软件,套,,2000,,\n" +
	"CRM-3,坏价格,,,,12.345,100,\n" +
	"crm-1,重复,,,,10,,\n" +
	"exist-1,已有,,,,10,,\n" +
	"CRM-4,坏成本,,,,10,-777.77,\n" +
	"CRM-5,停用品,,,,0.5,,停用\n"

// TestImportProducts: a CSV of products through createProduct's rules,
// dry and real, then again; an XLSX with English headers.
func TestImportProducts(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newProductFixture(t, url)
		file := []byte(ProductCSV)
		want := []string{"4/标准价/invalid_amount", "5/产品编号/duplicate_in_file", "6/产品编号/duplicate", "7/成本价/invalid_amount"}

		before := productState(t, f.w)
		dry := f.run(t, f.sup, imports.Request{Kind: "product", File: file, DryRun: true, FileName: "产品.csv"})
		if after := productState(t, f.w); after != before {
			t.Fatalf("dry run wrote: %v -> %v", before, after)
		}
		if dry.created != 3 || dry.invalid != 2 || dry.duplicates != 2 || dry.placed != 0 || !slices.Equal(dry.problems, want) {
			t.Errorf("dry run: %+v", dry)
		}

		real := f.run(t, f.sup, imports.Request{Kind: "product", File: file})
		if real.created != 3 || real.invalid != 2 || real.duplicates != 2 || real.placed != 0 || !slices.Equal(real.problems, want) {
			t.Errorf("real run: %+v", real)
		}
		after := productState(t, f.w)
		if after != [2]int{before[0] + 3, before[1] + 3} {
			t.Errorf("real run: products and product.created %v -> %v, want 3 more each", before, after)
		}
		c := f.w.Store.Client.Product
		one, err := c.Query().Where(product.SkuNorm("CRM-1")).Only(f.w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		if one.Name != "客户管理系统" || one.ListPrice.String() != "1000.00" || one.InternalCost == nil || one.InternalCost.String() != "600.50" ||
			!one.Active || one.Category == nil || *one.Category != "软件" || one.Unit == nil || *one.Unit != "套" ||
			one.Specification == nil || *one.Specification != "标准版" {
			t.Errorf("CRM-1: %+v", one)
		}
		five, err := c.Query().Where(product.SkuNorm("CRM-5")).Only(f.w.Ctx)
		if err != nil || five.Active || five.ListPrice.String() != "0.50" || five.InternalCost != nil {
			t.Errorf("CRM-5: %+v (%v)", five, err)
		}
		if n, _ := c.Query().Where(product.SkuNorm("CRM-3")).Count(f.w.Ctx); n != 0 {
			t.Errorf("the row with a bad price was written")
		}
		// The problems never echo an amount (an internal cost above all).
		for _, r := range []*importResult{dry, real} {
			for _, p := range r.raw {
				for _, v := range []string{"-777.77", "777", "12.345", "600.50"} {
					if strings.Contains(p.Message, v) || strings.Contains(p.Column, v) {
						t.Errorf("a problem echoes %s: %+v", v, p)
					}
				}
			}
		}

		// A re-run creates nothing: every good row is a duplicate now.
		again := f.run(t, f.sup, imports.Request{Kind: "product", File: file})
		if again.created != 0 || again.duplicates != 5 || again.invalid != 2 {
			t.Errorf("re-run: %+v", again)
		}
		if final := productState(t, f.w); final != after {
			t.Errorf("re-run wrote: %v -> %v", after, final)
		}

		// An XLSX with English headers (and a column products lack).
		xlsx := xlsxFile(t, [][]string{
			{"SKU", "Name", "List Price", "Internal Cost", "Active", "Owner"},
			{"X-1", "甲", "99.9", "", "yes", "张三"},
			{"x-1", "乙", "1", "", "", ""},        // the same SKU as row 2
			{"CRM-2", "丙", "1", "", "", ""},      // a product in Shoal
			{"X-2", "丁", "abc", "", "", ""},      // not an amount
			{"X 3", "戊", "1", "", "", ""},        // not an SKU
			{"X-4", "己", "1", "", "maybe", ""},   // not a yes or no
			{"X-5", "庚", "1.5", "0.25", "0", ""}, // good, inactive
		})
		x := f.run(t, f.sup, imports.Request{Kind: "product", File: xlsx, FileName: "products.xlsx"})
		wantX := []string{"1/Owner/unknown_column", "3/SKU/duplicate_in_file", "4/SKU/duplicate", "5/List Price/invalid_amount",
			"6/SKU/invalid_value", "7/Active/invalid_value"}
		if x.created != 2 || x.duplicates != 2 || x.invalid != 3 || !slices.Equal(x.problems, wantX) {
			t.Errorf("xlsx: %+v, want problems %q", x, wantX)
		}
		if final := productState(t, f.w); final != [2]int{after[0] + 2, after[1] + 2} {
			t.Errorf("xlsx: %v -> %v", after, final)
		}
	})
}

// TestImportProductsRefusals: who may import products, and what a
// products import refuses at once.
func TestImportProductsRefusals(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		f := newProductFixture(t, url)
		w := f.w
		file := []byte(ProductCSV)
		_, admin := w.Actor(auth.RoleAdmin, nil)
		_, auditor := w.Actor(auth.RoleAuditor, nil)
		key := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"leads:write", "customers:write"}}
		for _, p := range []*auth.Principal{f.rep, auditor, key} {
			_, err := f.svc.Create(w.Ctx, p, imports.Request{Kind: "product", File: file})
			if e, ok := apperr.As(err); !ok || e.Kind != apperr.Forbidden {
				t.Errorf("%s %s: %v, want 403", p.Type, p.Role, err)
			}
		}
		_, err := f.svc.Create(w.Ctx, f.sup, imports.Request{Kind: "product", File: file, PoolID: ptr(poolOf(t, w, "lead"))})
		if e, ok := apperr.As(err); !ok || e.Kind != apperr.Unprocessable || e.Code != "not_applicable" || e.Fields[0].Field != "body/poolId" {
			t.Errorf("poolId: %v, want 422 not_applicable", err)
		}
		for name, c := range map[string]struct {
			file    string
			mapping map[string]string
			code    string
		}{
			"no price column": {"产品编号,产品名称\nA-1,甲\n", nil, "missing_column"},
			"no sku column":   {"产品名称,售价\n甲,1\n", nil, "missing_column"},
			"owner field":     {"产品编号,产品名称,售价,负责人\nA-1,甲,1,张三\n", map[string]string{"负责人": "ownerId"}, "unknown_field"},
		} {
			_, err := f.svc.Create(w.Ctx, admin, imports.Request{Kind: "product", File: []byte(c.file), Mapping: c.mapping})
			if e, ok := apperr.As(err); !ok || len(e.Fields) == 0 || e.Fields[0].Code != c.code {
				t.Errorf("%s: %v, want %s", name, err, c.code)
			}
		}
		if n, _ := w.Store.Client.BulkImport.Query().Count(w.Ctx); n != 0 {
			t.Errorf("%d imports stored by refusals", n)
		}
		// An admin imports; a mapping names an odd header.
		r := f.run(t, admin, imports.Request{Kind: "product", File: []byte("货品,产品名称,售价\nM-1,甲,3\n"), Mapping: map[string]string{"货品": "sku"}})
		if r.created != 1 || len(r.problems) != 0 {
			t.Errorf("admin with a mapping: %+v", r)
		}
	})
}
