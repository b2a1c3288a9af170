package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/ent/auditevent"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestDocumentTemplates: supervisors, auditors and admins read the
// templates (the built-in default at version 1 until a change); admins
// change them with If-Match; a body that does not render the sample is
// refused with template_invalid naming its line, and nothing changes;
// reset puts the default back; the change is audited.
func TestDocumentTemplates(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		env := apitest.New(t, dbURL)
		team := env.Team(env.Unique("t"), nil)
		_, admin := env.User("admin", nil)
		_, sup := env.User("supervisor", &team.ID)
		_, rep := env.User("rep", &team.ID)
		_, auditor := env.User("auditor", nil)
		const path = "/v1/document-templates/quote"

		var list struct {
			Items []map[string]any
		}
		sup.Do("GET", "/v1/document-templates", nil).Expect(http.StatusOK).JSON(&list)
		if len(list.Items) != 1 || list.Items[0]["kind"] != "quote" || list.Items[0]["isDefault"] != true ||
			list.Items[0]["version"] != float64(1) || list.Items[0]["updatedAt"] != nil || list.Items[0]["body"] != documents.DefaultBody(documents.Quote) {
			t.Fatalf("list %v", list.Items)
		}
		res := auditor.Do("GET", path, nil).Expect(http.StatusOK)
		if res.Header.Get("ETag") != `"v1"` || res.Map()["name"] != "报价单" {
			t.Errorf("get: %s %s", res.Header.Get("ETag"), res.Body)
		}
		rep.Do("GET", path, nil).ExpectProblem(http.StatusForbidden, "forbidden")
		rep.Do("GET", "/v1/document-templates", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		sup.Do("PATCH", path, map[string]any{"companyName": "x"}, "If-Match", "*").ExpectProblem(http.StatusForbidden, "forbidden")
		auditor.Do("PATCH", path, map[string]any{"companyName": "x"}, "If-Match", "*").ExpectProblem(http.StatusForbidden, "forbidden")
		admin.Do("GET", "/v1/document-templates/invoice", nil).ExpectProblem(http.StatusBadRequest, "validation_failed")

		// The contract: at least one field, no others, bounded lengths.
		admin.Do("PATCH", path, map[string]any{}, "If-Match", "*").ExpectProblem(http.StatusBadRequest, "validation_failed")
		admin.Do("PATCH", path, map[string]any{"kind": "order"}, "If-Match", "*").ExpectProblem(http.StatusBadRequest, "validation_failed")
		admin.Do("PATCH", path, map[string]any{"companyName": strings.Repeat("长", 501)}, "If-Match", "*").ExpectProblem(http.StatusBadRequest, "validation_failed")
		admin.Do("PATCH", path, map[string]any{"reset": true, "body": "x"}, "If-Match", "*").ExpectProblem(http.StatusBadRequest, "validation_failed")
		admin.Do("PATCH", path, map[string]any{"companyName": "x"}).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")
		admin.Do("PATCH", path, map[string]any{"companyName": "x"}, "If-Match", `"v9"`).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")

		// Refused bodies: the error and its line, in both languages; nothing changes.
		p := admin.Do("PATCH", path, map[string]any{"body": "<p>\n\n{{.Nope}}</p>", "companyName": "x"}, "If-Match", "*").
			ExpectProblem(http.StatusUnprocessableEntity, "template_invalid")
		if !strings.Contains(p.Detail, "quote:3") || !strings.Contains(p.Detail, "Nope") || len(p.Errors) != 1 || p.Errors[0].Field != "body/body" {
			t.Errorf("template_invalid problem %+v", p)
		}
		p = admin.Do("PATCH", path, map[string]any{"body": "{{capital .Notes}}"}, "If-Match", "*", "Accept-Language", "zh-CN").
			ExpectProblem(http.StatusUnprocessableEntity, "template_invalid")
		if !strings.HasPrefix(p.Detail, "模板无法解析") || !strings.Contains(p.Detail, "capital") {
			t.Errorf("Chinese template_invalid detail %q", p.Detail)
		}
		admin.Do("PATCH", path, map[string]any{"body": "{{if}}"}, "If-Match", "*").ExpectProblem(http.StatusUnprocessableEntity, "template_invalid")
		if got := admin.Do("GET", path, nil).Expect(http.StatusOK).Map(); got["version"] != float64(1) || got["companyName"] != "" {
			t.Errorf("a refused change changed the template: %v", got)
		}

		// A change.
		body := `<h1>{{.Company.Name}}</h1>{{range .Lines}}<p>{{.No}} {{.Name}}</p>{{end}}<p>{{capital .Total}}</p>`
		up := admin.Do("PATCH", path, map[string]any{"body": body, "name": "报价单（简版）", "companyName": "杭州鲸鱼软件有限公司",
			"companyAddress": "杭州市西湖区", "companyPhone": "0571-8888 6666", "companyTaxId": "91330106"}, "If-Match", admin.ETag(path)).
			Expect(http.StatusOK)
		m := up.Map()
		if up.Header.Get("ETag") != `"v2"` || m["isDefault"] != false || m["body"] != body || m["companyTaxId"] != "91330106" || m["updatedAt"] == nil {
			t.Errorf("updated %s %s", up.Header.Get("ETag"), up.Body)
		}
		html, err := env.App.Documents.RenderQuote(context.Background(), documents.SampleQuote())
		if err != nil || !strings.HasPrefix(string(html), "<h1>杭州鲸鱼软件有限公司</h1><p>1 客户管理系统专业版（一年）</p>") {
			t.Errorf("render after the change: %v %s", err, html)
		}
		a, err := env.App.Store.Client.AuditEvent.Query().
			Where(auditevent.Operation("updateDocumentTemplate"), auditevent.Status(http.StatusOK)).Only(context.Background())
		if err != nil || a.TargetType != "documentTemplate" || !strings.HasPrefix(a.Detail, "kind=quote fields=body,") || a.ActorID == nil {
			t.Errorf("audit: %v %+v", err, a)
		}

		// Reset: the default body, the letterhead kept.
		r := admin.Do("PATCH", path, map[string]any{"reset": true}, "If-Match", `"v2"`, "Content-Type", "application/merge-patch+json").
			Expect(http.StatusOK).Map()
		if r["isDefault"] != true || r["version"] != float64(3) || r["companyName"] != "杭州鲸鱼软件有限公司" || r["name"] != "报价单（简版）" {
			t.Errorf("reset %v", r)
		}
		html, err = env.App.Documents.RenderQuote(context.Background(), documents.SampleQuote())
		if err != nil || !strings.Contains(string(html), "<h1>报价单</h1>") || !strings.Contains(string(html), "杭州鲸鱼软件有限公司") {
			t.Errorf("render after reset: %v %.200s", err, html)
		}
	})
}
