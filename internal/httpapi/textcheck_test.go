package httpapi_test

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// tcCounts counts the rows the requests below could have stored.
func tcCounts(t *testing.T, env *apitest.Env) [4]int {
	t.Helper()
	ctx := context.Background()
	r := env.App.Store.Reader
	var n [4]int
	var err error
	for i, count := range []func() (int, error){
		func() (int, error) { return r.Lead.Query().Count(ctx) },
		func() (int, error) { return r.Customer.Query().Count(ctx) },
		func() (int, error) { return r.FollowUp.Query().Count(ctx) },
		func() (int, error) { return r.Contact.Query().Count(ctx) },
	} {
		if n[i], err = count(); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestTextIsCheckedTheSameEverywhere: NUL and other control characters,
// invalid UTF-8, invisible characters in personal fields and data after
// the JSON body are refused with 400 validation_failed naming the field,
// on every operation and both engines alike, and nothing is stored.
func TestTextIsCheckedTheSameEverywhere(t *testing.T) {
	t.Parallel()
	answers := map[string]map[string]int{} // engine → request → status
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		_, repC := env.User(auth.RoleRep, nil)
		var l, c struct{ ID string }
		res := repC.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("text lead ")}).Expect(http.StatusCreated)
		res.JSON(&l)
		leadTag := res.Header.Get("ETag")
		repC.Do("POST", "/v1/customers", map[string]any{"name": env.Unique("text customer ")}).Expect(http.StatusCreated).JSON(&c)
		followUp := func(extra map[string]any) map[string]any {
			b := map[string]any{"subjectType": "lead", "subjectId": l.ID, "channel": "call", "content": "called",
				"occurredAt": time.Now().UTC().Format(time.RFC3339Nano)}
			for k, v := range extra {
				b[k] = v
			}
			return b
		}

		tests := []struct {
			name, method, path string
			body               any
			header             []string
			field, code        string
		}{
			{"createLead NUL in name", "POST", "/v1/leads", map[string]any{"name": "a\x00b"}, nil, "body/name", "control_character"},
			{"createLead escape in notes", "POST", "/v1/leads", map[string]any{"name": env.Unique("n"), "notes": "bell\x07"}, nil, "body/notes", "control_character"},
			{"createLead NUL in a tag", "POST", "/v1/leads", map[string]any{"name": env.Unique("n"), "tags": []string{"ok", "b\x00d"}}, nil, "body/tags/1", "control_character"},
			{"createLead NUL in a key", "POST", "/v1/leads", map[string]any{"name": env.Unique("n"), "x\x00": 1}, nil, "body/x\uFFFD", "control_character"},
			{"createLead zero-width space in name", "POST", "/v1/leads", map[string]any{"name": "Acme\u200bCo"}, nil, "body/name", "invisible_character"},
			{"createLead bidi override in phone", "POST", "/v1/leads", map[string]any{"name": env.Unique("n"), "phone": "\u202e13800138000"}, nil, "body/phone", "invisible_character"},
			{"createLead BOM in email", "POST", "/v1/leads", map[string]any{"name": env.Unique("n"), "email": "\ufeffa@example.com"}, nil, "body/email", "invisible_character"},
			{"createLead isolate in company", "POST", "/v1/leads", map[string]any{"name": env.Unique("n"), "company": "\u2066Acme"}, nil, "body/company", "invisible_character"},
			{"createLead invalid UTF-8", "POST", "/v1/leads", "{\"name\":\"bad \xff\"}", nil, "body/name", "invalid_utf8"},
			{"createLead trailing object", "POST", "/v1/leads", `{"name":"one"} {"name":"two"}`, nil, "body", "trailing_data"},
			{"createLead trailing garbage", "POST", "/v1/leads", `{"name":"one"}garbage`, nil, "body", "trailing_data"},
			{"updateLead NUL in name", "PATCH", "/v1/leads/" + l.ID, map[string]any{"name": "x\x00"}, []string{"If-Match", leadTag}, "body/name", "control_character"},
			{"updateLead zero-width joiner in name", "PATCH", "/v1/leads/" + l.ID, map[string]any{"name": "x\u200dy"}, []string{"If-Match", leadTag}, "body/name", "invisible_character"},
			{"createCustomer NUL in name", "POST", "/v1/customers", map[string]any{"name": "c\x00"}, nil, "body/name", "control_character"},
			{"createCustomer word joiner in name", "POST", "/v1/customers", map[string]any{"name": "c\u2060d"}, nil, "body/name", "invisible_character"},
			{"createContact NUL in wechat", "POST", "/v1/customers/" + c.ID + "/contacts", map[string]any{"name": "Li", "wechat": "w\x00"}, nil, "body/wechat", "control_character"},
			{"createFollowUp NUL in content", "POST", "/v1/follow-ups", followUp(map[string]any{"content": "c\x00"}), nil, "body/content", "control_character"},
			{"listLeads NUL in q", "GET", "/v1/leads?q=a%00b", nil, nil, "query.q", "control_character"},
			{"listLeads invalid UTF-8 in q", "GET", "/v1/leads?q=%FF", nil, nil, "query.q", "invalid_utf8"},
			{"getLead NUL id", "GET", "/v1/leads/%00", nil, nil, "path.id", "control_character"},
			{"updateLead NUL id", "PATCH", "/v1/leads/%00", map[string]any{"name": "x"}, []string{"If-Match", leadTag}, "path.id", "control_character"},
			{"claimLead invalid UTF-8 id", "POST", "/v1/leads/%FF%FE/claim", nil, nil, "path.id", "invalid_utf8"},
		}
		before := tcCounts(t, env)
		got := map[string]int{}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res := repC.Do(tt.method, tt.path, tt.body, tt.header...)
				got[tt.name] = res.Status
				p := idProblem(t, res, http.StatusBadRequest, "validation_failed")
				found := false
				for _, f := range p.Errors {
					if f.Field == tt.field && f.Code == tt.code {
						found = true
					}
				}
				if !found {
					t.Errorf("errors %+v lack %s %s", p.Errors, tt.field, tt.code)
				}
			})
		}
		if after := tcCounts(t, env); after != before {
			t.Errorf("rows (leads, customers, follow-ups, contacts) went from %v to %v", before, after)
		}
		var now struct{ Name string }
		repC.Do("GET", "/v1/leads/"+l.ID, nil).Expect(http.StatusOK).JSON(&now)
		if slices.ContainsFunc([]rune(now.Name), func(r rune) bool { return r < 0x20 || r == 0x200d }) {
			t.Errorf("lead renamed to %q", now.Name)
		}

		// What stays allowed: tab, newline and CR in free text, and
		// invisible characters outside personal fields (emoji sequences
		// use zero-width joiners).
		repC.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("ok "), "notes": "line one\r\n\tline two 👨\u200d👩"}).Expect(http.StatusCreated)
		answers[databaseURL[:min(8, len(databaseURL))]] = got
	})
	var first map[string]int
	for engine, got := range answers {
		if first == nil {
			first = got
			continue
		}
		if !maps.Equal(first, got) {
			t.Errorf("engines answer differently: %s %v, other %v", engine, got, first)
		}
	}
}
