package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// pdSecrets are the person's values, as written and normalised; none may
// be anywhere after his erasure.
var pdSecrets = []string{"张三丰", "13800138000", "138-0013-8000", "138 0013 8000", "zsf@wudang.example", "13900139000", "139-0013-9000", "zsf_wudang"}

// pdWorld is an admin, an auditor and a rep, and the person as the
// rep's lead (returned and assigned back with reasons naming him) and as a
// contact of the rep's customer, with follow-ups naming him.
type pdWorld struct {
	env                   *apitest.Env
	admin, auditor, rep   *apitest.Client
	lead, customer, other string
}

func newPDWorld(t *testing.T, databaseURL string) *pdWorld {
	t.Helper()
	env := apitest.New(t, databaseURL)
	team := env.Team(env.Unique("pd"), nil)
	w := &pdWorld{env: env}
	_, w.admin = env.User(auth.RoleAdmin, nil)
	_, w.auditor = env.User(auth.RoleAuditor, nil)
	repUser, rep := env.User(auth.RoleRep, &team.ID)
	w.rep = rep
	w.lead = rep.Do("POST", "/v1/leads", map[string]any{"name": "张三丰", "company": "武当派", "phone": "+86 138-0013-8000",
		"email": "ZSF@Wudang.example", "notes": "张三丰 prefers 138 0013 8000"}).Expect(http.StatusCreated).Map()["id"].(string)
	w.other = rep.Do("POST", "/v1/leads", map[string]any{"name": "李四", "phone": "13700137000",
		"notes": "referred by 张三丰"}).Expect(http.StatusCreated).Map()["id"].(string)
	w.customer = rep.Do("POST", "/v1/customers", map[string]any{"name": "武当贸易有限公司", "creditLimit": "123456.78"}).
		Expect(http.StatusCreated).Map()["id"].(string)
	rep.Do("POST", "/v1/customers/"+w.customer+"/contacts", map[string]any{"name": "张三丰", "phone": "139-0013-9000",
		"wechat": "zsf_wudang", "notes": "also on +86 138 0013 8000"}).Expect(http.StatusCreated)
	at := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	for _, f := range []struct{ kind, id, text string }{
		{"lead", w.lead, "给张三丰打电话 13800138000"},
		{"customer", w.customer, "张三丰 visited, mobile 139-0013-9000, mail zsf@wudang.example"},
		{"lead", w.other, "李四 says 张三丰 referred him"},
	} {
		rep.Do("POST", "/v1/follow-ups", map[string]any{"subjectType": f.kind, "subjectId": f.id, "channel": "call",
			"content": f.text, "occurredAt": at}).Expect(http.StatusCreated)
	}
	rep.Do("POST", "/v1/leads/"+w.lead+"/return", map[string]any{"reason": "张三丰 asked us to call later"}).Expect(http.StatusOK)
	w.admin.Do("POST", "/v1/leads/"+w.lead+"/assign", map[string]any{"ownerId": repUser.ID, "reason": "back for 张三丰"}).Expect(http.StatusOK)
	return w
}

// pdDump is every row of every table, as text, by table.
func pdDump(t *testing.T, env *apitest.Env) map[string][]string {
	t.Helper()
	db := env.World.Store.DB()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if env.World.Store.Dialect == "postgres" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	}
	ctx := context.Background()
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, s)
	}
	_ = rows.Close()
	out := map[string][]string{}
	for _, tb := range tables {
		rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT * FROM "%s"`, tb))
		if err != nil {
			t.Fatalf("read %s: %v", tb, err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatalf("scan %s: %v", tb, err)
			}
			var b strings.Builder
			for i, v := range vals {
				if bs, ok := v.([]byte); ok {
					v = string(bs)
				}
				fmt.Fprintf(&b, "%s=%v|", cols[i], v)
			}
			out[tb] = append(out[tb], b.String())
		}
		_ = rows.Close()
	}
	return out
}

// pdLeaks names each secret found in text.
func pdLeaks(where, text string) []string {
	var out []string
	for _, s := range pdSecrets {
		if strings.Contains(strings.ToLower(text), strings.ToLower(s)) {
			out = append(out, where+" holds "+s)
		}
	}
	return out
}

func TestPersonalDataErasureOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		w := newPDWorld(t, databaseURL)

		// The export has every record and field, unmasked, as a file.
		res := w.auditor.Do("POST", "/v1/personal-data/export", map[string]any{"phone": "(138) 0013 8000"}).Expect(http.StatusOK)
		if !strings.HasPrefix(res.Header.Get("Content-Disposition"), "attachment") {
			t.Errorf("Content-Disposition %q", res.Header.Get("Content-Disposition"))
		}
		var ex struct {
			Leads []struct {
				Lead      map[string]any   `json:"lead"`
				History   []map[string]any `json:"history"`
				FollowUps []map[string]any `json:"followUps"`
			} `json:"leads"`
			Contacts []map[string]any `json:"contacts"`
			Mentions []map[string]any `json:"mentions"`
		}
		res.JSON(&ex)
		if len(ex.Leads) != 1 || ex.Leads[0].Lead["email"] != "ZSF@Wudang.example" || len(ex.Leads[0].History) != 3 ||
			len(ex.Leads[0].FollowUps) != 1 || len(ex.Contacts) != 0 || len(ex.Mentions) != 0 {
			t.Errorf("export by phone: %s", res.Body)
		}

		countsBefore := pdDump(t, w.env)
		seeded := 0
		for tb, rows := range countsBefore {
			for _, r := range rows {
				seeded += len(pdLeaks(tb, r))
			}
		}
		if seeded == 0 {
			t.Fatal("the database holds none of the values before the erasure: the scan would prove nothing")
		}
		customerBefore := w.admin.Do("GET", "/v1/customers/"+w.customer, nil).Expect(http.StatusOK).Map()

		// A dry run changes nothing but the audit log.
		dry := w.admin.Do("POST", "/v1/personal-data/erase", map[string]any{"name": "张三丰", "dryRun": true}).Expect(http.StatusOK).Map()
		afterDry := pdDump(t, w.env)
		for tb, rows := range countsBefore {
			if tb != "audit_events" && fmt.Sprint(afterDry[tb]) != fmt.Sprint(rows) {
				t.Errorf("the dry run changed %s", tb)
			}
		}
		real := w.admin.Do("POST", "/v1/personal-data/erase", map[string]any{"name": "张三丰"}).Expect(http.StatusOK).Map()
		if fmt.Sprint(dry["records"], dry["redacted"]) != fmt.Sprint(real["records"], real["redacted"]) || dry["dryRun"] != true || real["dryRun"] != false {
			t.Errorf("dry run %v, erasure %v", dry, real)
		}

		// No answer holds a value any more.
		var leaks []string
		for _, path := range []string{
			"/v1/leads/" + w.lead, "/v1/leads/" + w.other, "/v1/customers/" + w.customer,
			"/v1/customers/" + w.customer + "/contacts", "/v1/leads/" + w.lead + "/history",
			"/v1/follow-ups?subjectType=lead&subjectId=" + w.lead, "/v1/follow-ups?subjectType=lead&subjectId=" + w.other,
			"/v1/follow-ups?subjectType=customer&subjectId=" + w.customer,
			"/v1/leads?limit=200", "/v1/customers?limit=200", "/v1/audit-events?limit=200",
		} {
			leaks = append(leaks, pdLeaks(path, string(w.admin.Do("GET", path, nil).Expect(http.StatusOK).Body))...)
		}
		for _, q := range []string{"张三丰", "13800138000", "zsf@wudang.example", "13900139000"} {
			for _, kind := range []string{"leads", "customers"} {
				var list struct{ Items []any }
				w.admin.Do("GET", "/v1/"+kind+"?q="+url.QueryEscape(q), nil).Expect(http.StatusOK).JSON(&list)
				if len(list.Items) != 0 {
					t.Errorf("%s q=%s finds %d", kind, q, len(list.Items))
				}
			}
		}
		var dup struct{ Matches []any }
		w.admin.Do("GET", "/v1/duplicates?phone="+url.QueryEscape("13800138000"), nil).Expect(http.StatusOK).JSON(&dup)
		if len(dup.Matches) != 0 {
			t.Errorf("duplicate check still matches: %v", dup.Matches)
		}
		// Nor does any row of any table, the audit log and the event
		// feed included; and every table but those and the derived ones
		// has as many rows as before.
		after := pdDump(t, w.env)
		for tb, rows := range after {
			for _, r := range rows {
				leaks = append(leaks, pdLeaks(tb, r)...)
			}
		}
		for _, l := range leaks {
			t.Error(l)
		}
		for tb, rows := range countsBefore {
			switch tb {
			case "audit_events", "domain_events", "dedupe_keys", "search_grams":
				continue
			}
			if len(after[tb]) != len(rows) {
				t.Errorf("%s: %d rows, had %d", tb, len(after[tb]), len(rows))
			}
		}
		cu := w.admin.Do("GET", "/v1/customers/"+w.customer, nil).Expect(http.StatusOK).Map()
		if cu["creditLimit"] != customerBefore["creditLimit"] || cu["ownerId"] != customerBefore["ownerId"] || cu["creditLimit"] != "123456.78" {
			t.Errorf("customer %v, was %v", cu, customerBefore)
		}
		// The audit row says what was done and by which kind of value.
		var audit struct{ Items []map[string]any }
		w.admin.Do("GET", "/v1/audit-events?operation=erasePersonalData", nil).Expect(http.StatusOK).JSON(&audit)
		if len(audit.Items) != 2 || audit.Items[0]["targetType"] != "personalData" || audit.Items[0]["detail"] != "by=name" {
			t.Errorf("audit rows %v", audit.Items)
		}
		// The phone is free for a new lead; the value is gone.
		w.rep.Do("POST", "/v1/leads", map[string]any{"name": "新客户", "phone": "13800138000"}).Expect(http.StatusCreated)
		w.admin.Do("POST", "/v1/personal-data/erase", map[string]any{"email": "zsf@wudang.example"}).ExpectProblem(http.StatusNotFound, "not_found")
	})
}

func TestPersonalDataAccess(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		t.Parallel()
		w := newPDWorld(t, databaseURL)
		secret := w.admin.Do("POST", "/v1/api-keys", map[string]any{"name": "all", "scopes": []string{"leads:read", "leads:write",
			"customers:read", "customers:write"}}).Expect(http.StatusCreated).Map()["secret"].(string)
		key := w.env.Anonymous()
		key.APIKey = secret
		body := map[string]any{"phone": "13800138000"}
		for _, c := range []struct {
			name   string
			client *apitest.Client
			path   string
			body   any
			status int
			code   string
		}{
			{"rep exports", w.rep, "export", body, http.StatusForbidden, "forbidden"},
			{"rep erases", w.rep, "erase", body, http.StatusForbidden, "forbidden"},
			{"auditor erases", w.auditor, "erase", body, http.StatusForbidden, "forbidden"},
			{"key exports", key, "export", body, http.StatusForbidden, ""},
			{"key erases", key, "erase", body, http.StatusForbidden, ""},
			{"anonymous", w.env.Anonymous(), "export", body, http.StatusUnauthorized, ""},
			{"two values", w.admin, "erase", map[string]any{"phone": "13800138000", "name": "张三丰"}, http.StatusBadRequest, "validation_failed"},
			{"no value", w.admin, "export", map[string]any{}, http.StatusBadRequest, "validation_failed"},
			{"only dryRun", w.admin, "erase", map[string]any{"dryRun": true}, http.StatusBadRequest, "validation_failed"},
			{"short phone", w.admin, "erase", map[string]any{"phone": "12-3"}, http.StatusBadRequest, "validation_failed"},
			{"not an email", w.auditor, "export", map[string]any{"email": "zsf"}, http.StatusBadRequest, "validation_failed"},
			{"unknown field", w.admin, "export", map[string]any{"idCard": "110101"}, http.StatusBadRequest, ""},
			{"nobody", w.admin, "erase", map[string]any{"email": "nobody@nowhere.example"}, http.StatusNotFound, "not_found"},
			{"nobody exported", w.auditor, "export", map[string]any{"name": "无名氏"}, http.StatusNotFound, "not_found"},
		} {
			res := c.client.Do("POST", "/v1/personal-data/"+c.path, c.body)
			if c.code != "" {
				res.ExpectProblem(c.status, c.code)
			} else {
				res.Expect(c.status)
			}
		}
		// Odd values are answered, never 500, on either engine.
		for _, body := range []map[string]any{
			{"email": `%_\@x.example`}, {"name": "%%"}, {"name": "'; DROP TABLE leads; --"}, {"phone": "0086-138-0013-8000 ext 12"},
			{"phone": "＋８６ １３８ ００１３ ８０００"}, {"email": "ＺＳＦ＠ｗｕｄａｎｇ．ｅｘａｍｐｌｅ"}, {"name": "张三丰张三丰张三丰"},
			{"phone": strings.Repeat("9", 40)}, {"email": "a@b"}, {"name": "_"},
		} {
			for _, op := range []string{"export", "erase"} {
				b := map[string]any{"dryRun": true}
				for k, v := range body {
					b[k] = v
				}
				if op == "export" {
					delete(b, "dryRun")
				}
				switch st := w.admin.Do("POST", "/v1/personal-data/"+op, b).Status; st {
				case http.StatusOK, http.StatusBadRequest, http.StatusNotFound:
				default:
					t.Errorf("%s %v: %d", op, body, st)
				}
			}
		}
		// Nothing above changed the person's lead.
		l := w.admin.Do("GET", "/v1/leads/"+w.lead, nil).Expect(http.StatusOK).Map()
		if l["name"] != "张三丰" || l["phone"] != "+86 138-0013-8000" {
			t.Errorf("lead changed: %v", l)
		}
	})
}
