package documents_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/ent/domainevent"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func code(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

// TestDefaultQuoteRenders: the built-in quote template renders the sample
// with the letterhead, every line, the totals in figures (grouped) and in
// capital numerals, and the signature block.
func TestDefaultQuoteRenders(t *testing.T) {
	if err := documents.Check(documents.Quote, documents.DefaultBody(documents.Quote)); err != nil {
		t.Fatalf("the default template fails its own check: %v", err)
	}
	if got := money.Capital(money.MustParse(documents.SampleQuote().Total)); got != "陆万零玖佰陆拾叁元壹角壹分" {
		t.Errorf("the sample's total in capitals: %s", got)
	}
}

func TestGrouped(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0.00", "999.99": "999.99", "1000": "1,000.00", "1234567.50": "1,234,567.50",
		"-1000.05": "-1,000.05", "999999999999999.99": "999,999,999,999,999.99", "100000": "100,000.00",
	} {
		if got := documents.Grouped(money.MustParse(in)); got != want {
			t.Errorf("Grouped(%s) = %s, want %s", in, got, want)
		}
	}
}

// TestCheckRefusesBadTemplates: parse errors, unknown fields, functions
// failing on the sample and ranges over literals are refused, each error
// naming its line.
func TestCheckRefusesBadTemplates(t *testing.T) {
	for name, tc := range map[string]struct{ body, want string }{
		"unknown field":    {"<p>\n{{.Nope}}</p>", "quote:2"},
		"capital of notes": {"<p>{{capital .Notes}}</p>", "capital"},
		"money of a name":  {"<p>{{money .Customer.Name}}</p>", "money"},
		"if without pipe":  {"<p>{{if}}</p>", "missing value for if"},
		"unclosed":         {"<p>{{range .Lines}}", "unexpected EOF"},
		"unknown function": {"{{nope 1}}", "not defined"},
		"range over int":   {"a\n{{range 1000000000000}}x{{end}}", "quote:2"},
		"range over func":  {"{{range $i := add 1 2}}x{{end}}", "only data"},
		"range over var":   {"{{$n := 5}}{{range $n}}x{{end}}", "only data"},
	} {
		err := documents.Check(documents.Quote, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	for _, ok := range []string{"{{range .Lines}}{{.Name}}{{end}}", "{{range $l := $.Lines}}{{add $l.No 1}}{{end}}",
		"{{with .Customer}}{{.Name}}{{end}}", "{{capital .Total}} {{money .Subtotal}}"} {
		if err := documents.Check(documents.Quote, ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
}

// TestTemplates runs the service on both engines: the default until a
// change, bad bodies refused with template_invalid and nothing changed,
// renders with the new body and the letterhead, escaping, If-Match,
// reset, events.
func TestTemplates(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := testkit.New(t, url, app.Config{})
		_, admin := w.Actor("admin", nil)
		svc := w.App.Documents
		ctx := w.Ctx

		list, err := svc.List(ctx)
		if err != nil || len(list) != 1 || list[0].Kind != documents.Quote || !list[0].IsDefault || list[0].Version != 1 || list[0].UpdatedAt != nil {
			t.Fatalf("list: %v %+v", err, list)
		}
		if _, err := svc.Get(ctx, "invoice"); code(err) != "not_found" {
			t.Errorf("an unknown kind: %v", err)
		}

		// The default renders; data is escaped; Company is the letterhead's.
		doc := documents.SampleQuote()
		doc.Customer.Name = "<script>alert(1)</script>"
		doc.Company.Name = "caller's company"
		out, err := svc.RenderQuote(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		html := string(out)
		for _, want := range []string{"报价单", "&lt;script&gt;alert(1)&lt;/script&gt;", "60,963.11", "陆万零玖佰陆拾叁元壹角壹分",
			"客户管理系统专业版（一年）", "50 用户；含移动端 &lt;App&gt;", "@page", "签字（盖章）", "客户确认", "QT-2026-000128"} {
			if !strings.Contains(html, want) {
				t.Errorf("the default rendering lacks %q", want)
			}
		}
		if strings.Contains(html, "<script>alert") || strings.Contains(html, "caller's company") {
			t.Errorf("unescaped data or the caller's company in the rendering")
		}

		star := "*"
		// Refused bodies change nothing.
		for _, body := range []string{"{{.Nope}}", "{{capital .Notes}}", "{{if}}"} {
			_, err := svc.Update(ctx, admin, "quote", &star, documents.Patch{Body: &body, CompanyName: ptr("X")})
			if code(err) != "template_invalid" {
				t.Errorf("%q: %v, want template_invalid", body, err)
			}
		}
		if cur, _ := svc.Get(ctx, "quote"); !cur.IsDefault || cur.Version != 1 || cur.CompanyName != "" {
			t.Errorf("a refused body changed the template: %+v", cur)
		}
		if _, err := svc.Update(ctx, admin, "quote", &star, documents.Patch{Reset: true, Body: ptr("x")}); code(err) != "validation_failed" {
			t.Errorf("reset with a body: %v", err)
		}
		if _, err := svc.Update(ctx, admin, "quote", nil, documents.Patch{Name: ptr("x")}); code(err) != "precondition_required" {
			t.Errorf("no If-Match: %v", err)
		}
		if _, err := svc.Update(ctx, admin, "quote", ptr(`"v7"`), documents.Patch{Name: ptr("x")}); code(err) != "precondition_failed" {
			t.Errorf("a stale If-Match: %v", err)
		}

		// A new body and letterhead: the next render uses them.
		body := `<h1>{{.Company.Name}} {{.Company.TaxID}}</h1><p>{{.Customer.Name}} {{capital .Total}}</p>`
		up, err := svc.Update(ctx, admin, "quote", ptr(`"v1"`), documents.Patch{Body: &body, CompanyName: ptr(" 杭州鲸鱼软件有限公司 "), CompanyTaxID: ptr("91330100")})
		if err != nil {
			t.Fatal(err)
		}
		if up.IsDefault || up.Version != 2 || up.CompanyName != "杭州鲸鱼软件有限公司" || up.UpdatedAt == nil || up.UpdatedBy == nil || *up.UpdatedBy != admin.ID {
			t.Errorf("updated %+v", up)
		}
		out, err = svc.RenderQuote(ctx, doc)
		if err != nil {
			t.Fatal(err)
		}
		if want := "<h1>杭州鲸鱼软件有限公司 91330100</h1><p>&lt;script&gt;alert(1)&lt;/script&gt; 陆万零玖佰陆拾叁元壹角壹分</p>"; string(out) != want {
			t.Errorf("rendered %s, want %s", out, want)
		}
		// The same change again is no change: no version, no event.
		same, err := svc.Update(ctx, admin, "quote", &star, documents.Patch{Body: &body})
		if err != nil || same.Version != 2 {
			t.Errorf("a no-op update: %v %+v", err, same)
		}
		// Reset: the built-in body, the letterhead kept.
		reset, err := svc.Update(ctx, admin, "quote", ptr(`"v2"`), documents.Patch{Reset: true})
		if err != nil || !reset.IsDefault || reset.Version != 3 || reset.CompanyName != "杭州鲸鱼软件有限公司" {
			t.Fatalf("reset: %v %+v", err, reset)
		}
		out, err = svc.RenderQuote(ctx, doc)
		if err != nil || !strings.Contains(string(out), "<title>报价单 QT-2026-000128</title>") || !strings.Contains(string(out), "杭州鲸鱼软件有限公司") {
			t.Errorf("render after reset: %v %.300s", err, out)
		}
		if _, err := svc.Render(ctx, "quote", 42); err == nil {
			t.Errorf("rendering a quote of an int succeeded")
		}

		evs, err := w.App.Store.Client.DomainEvent.Query().Where(domainevent.Type("document_template.updated")).Order(domainevent.ByID()).All(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Fatalf("%d document_template.updated events, want 2", len(evs))
		}
		for i, want := range []string{"kind=quote fields=[body companyName companyTaxId]", "kind=quote fields=[body]"} {
			data, _ := evs[i].Data["data"].(map[string]any)
			if got := fmt.Sprintf("kind=%v fields=%v", data["kind"], data["fields"]); got != want || len(data) != 2 || evs[i].SubjectKind != "document_template" {
				t.Errorf("event %d: %s %v, want %s", i, evs[i].SubjectKind, evs[i].Data, want)
			}
		}
	})
}
