package httpapi_test

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// msWorld is a team of two reps, a pool manager outside the team and an
// admin, with one lead pool and one customer pool open to the team.
type msWorld struct {
	env                      *apitest.Env
	rep, rep2, manager, admn *apitest.Client
	leadPool, customerPool   string
}

func newMSWorld(t *testing.T, dbURL string, leadVisible, customerVisible []string) *msWorld {
	t.Helper()
	env := apitest.New(t, dbURL)
	team := env.Team(env.Unique("Masked "), nil)
	_, rep := env.User("rep", &team.ID)
	_, rep2 := env.User("rep", &team.ID)
	mgr, manager := env.User("supervisor", nil)
	_, admin := env.User("admin", nil)
	pool := func(kind string, visible []string) string {
		return admin.Do("POST", "/v1/pools", map[string]any{"kind": kind, "name": env.Unique("Masked pool "),
			"memberTeamIds": []string{team.ID.String()}, "managerIds": []string{mgr.ID.String()},
			"visibleFields": visible}).Expect(http.StatusCreated).Map()["id"].(string)
	}
	return &msWorld{env: env, rep: rep, rep2: rep2, manager: manager, admn: admin,
		leadPool: pool("lead", leadVisible), customerPool: pool("customer", customerVisible)}
}

// msFound lists path?query as c and reports whether id is among the items.
func msFound(t *testing.T, c *apitest.Client, path string, query url.Values, id string) bool {
	t.Helper()
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	c.Do("GET", path+"?"+query.Encode(), nil).Expect(http.StatusOK).JSON(&page)
	for _, it := range page.Items {
		if it.ID == id {
			return true
		}
	}
	return false
}

// msMatch is one entry of GET /v1/duplicates.
type msMatch struct {
	Kind      string  `json:"kind"`
	ID        *string `json:"id"`
	MatchedOn string  `json:"matchedOn"`
}

func msDuplicates(t *testing.T, c *apitest.Client, query url.Values) []msMatch {
	t.Helper()
	var out struct {
		Matches []msMatch `json:"matches"`
	}
	c.Do("GET", "/v1/duplicates?"+query.Encode(), nil).Expect(http.StatusOK).JSON(&out)
	return out.Matches
}

// TestMaskedFieldsDoNotLeakThroughSearch: a pool member who sees a pooled
// lead's phone as 135****7777 must not find it by the phone, a prefix of
// the company, the email, a tag, region, industry or source, nor learn its
// id from the duplicate check; those who see it unmasked (its pool's
// manager, an admin, its owner after claiming) find it by all of them.
func TestMaskedFieldsDoNotLeakThroughSearch(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newMSWorld(t, dbURL, []string{"name"}, []string{"address"})
		lead := w.admn.Do("POST", "/v1/leads", map[string]any{"name": "王小明", "company": "探针测试科技有限公司",
			"phone": "13566667777", "email": "wxm@probe.example.cn", "tags": []string{"probe-hot"},
			"region": "宁波", "industry": "制造", "source": "展会", "poolId": w.leadPool}).Expect(http.StatusCreated).Map()
		if lead["placement"] != "pooled" {
			t.Fatalf("lead placed %v, want pooled", lead["placement"])
		}
		id := lead["id"].(string)
		if got := w.rep.Do("GET", "/v1/leads/"+id, nil).Expect(http.StatusOK).Map(); got["phone"] != "135****7777" {
			t.Fatalf("the rep sees phone %v, want it masked", got["phone"])
		}

		hidden := map[string]url.Values{
			"full phone":     {"q": {"13566667777"}},
			"phone prefix":   {"q": {"1356666"}},
			"company prefix": {"q": {"探针测试"}},
			"email":          {"q": {"wxm@probe.example.cn"}},
			"tag":            {"tag": {"probe-hot"}},
			"region":         {"region": {"宁波"}},
			"industry":       {"industry": {"制造"}},
			"source":         {"source": {"展会"}},
		}
		for name, q := range hidden {
			if msFound(t, w.rep, "/v1/leads", q, id) {
				t.Errorf("the rep finds the masked lead by its %s (%v)", name, q)
			}
		}
		// The visible name still finds it.
		if !msFound(t, w.rep, "/v1/leads", url.Values{"q": {"王小明"}}, id) {
			t.Error("the rep does not find the lead by its visible name")
		}
		// Those who see it unmasked find it by everything (a phone prefix
		// is never a search, for anyone).
		for who, c := range map[string]*apitest.Client{"pool manager": w.manager, "admin": w.admn} {
			for name, q := range hidden {
				if name == "phone prefix" {
					continue
				}
				if !msFound(t, c, "/v1/leads", q, id) {
					t.Errorf("the %s does not find the lead by its %s", who, name)
				}
			}
		}

		// The duplicate check reports the match, but names the record only
		// to those who see the value.
		for name, q := range map[string]url.Values{"phone": {"phone": {"13566667777"}}, "email": {"email": {"wxm@probe.example.cn"}},
			"company": {"name": {"探针测试科技有限公司"}}} {
			m := msDuplicates(t, w.rep, q)
			if len(m) != 1 || m[0].Kind != "lead" {
				t.Fatalf("the rep's duplicate check on the %s: %+v, want one lead match", name, m)
			}
			if m[0].ID != nil {
				t.Errorf("the rep's duplicate check on the masked %s names the lead %s", name, *m[0].ID)
			}
			if m := msDuplicates(t, w.admn, q); len(m) != 1 || m[0].ID == nil || *m[0].ID != id {
				t.Errorf("the admin's duplicate check on the %s: %+v, want the lead's id", name, m)
			}
		}
		// A duplicate is still refused, without naming the record.
		dup := w.rep.Do("POST", "/v1/leads", map[string]any{"name": "冒名", "phone": "135 6666 7777"})
		dup.ExpectProblem(http.StatusConflict, "duplicate")
		var refusal struct {
			Matches []msMatch `json:"matches"`
		}
		dup.JSON(&refusal)
		if len(refusal.Matches) != 1 || refusal.Matches[0].ID != nil {
			t.Errorf("the duplicate refusal: %+v, want one match that does not name the masked lead", refusal.Matches)
		}

		// Once the rep owns it, nothing is masked for him.
		w.rep.Do("POST", "/v1/leads/"+id+"/claim", nil).Expect(http.StatusOK)
		for name, q := range hidden {
			if name == "phone prefix" {
				continue
			}
			if !msFound(t, w.rep, "/v1/leads", q, id) {
				t.Errorf("the owner does not find his lead by its %s", name)
			}
		}
		if m := msDuplicates(t, w.rep, url.Values{"phone": {"13566667777"}}); len(m) != 1 || m[0].ID == nil {
			t.Errorf("the owner's duplicate check: %+v, want the lead's id", m)
		}

		// Customers: the pool shows only the address.
		cust := w.admn.Do("POST", "/v1/customers", map[string]any{"name": "宁波探针贸易有限公司", "tags": []string{"probe-vip"},
			"region": "宁波", "industry": "贸易", "source": "转介绍", "address": "宁波市海曙区", "poolId": w.customerPool}).Expect(http.StatusCreated).Map()
		cid := cust["id"].(string)
		custHidden := map[string]url.Values{
			"name prefix": {"q": {"宁波探针"}},
			"tag":         {"tag": {"probe-vip"}},
			"region":      {"region": {"宁波"}},
			"industry":    {"industry": {"贸易"}},
			"source":      {"source": {"转介绍"}},
		}
		for name, q := range custHidden {
			if msFound(t, w.rep, "/v1/customers", q, cid) {
				t.Errorf("the rep finds the masked customer by its %s", name)
			}
			if !msFound(t, w.manager, "/v1/customers", q, cid) {
				t.Errorf("the pool manager does not find the customer by its %s", name)
			}
		}
		if m := msDuplicates(t, w.rep, url.Values{"name": {"宁波探针贸易有限公司"}}); len(m) != 1 || m[0].ID != nil {
			t.Errorf("the rep's duplicate check on the masked customer name: %+v, want one match without id", m)
		}
		// Unfiltered, the rep still lists both pooled customers he may see.
		if !msFound(t, w.rep, "/v1/customers", url.Values{"poolId": {w.customerPool}}, cid) {
			t.Error("the rep no longer lists the pooled customer at all")
		}
	})
}

// TestMaskedSearchFollowsVisibleFields: a field the pool lists is
// searchable by members; a pool without visibleFields masks nothing.
func TestMaskedSearchFollowsVisibleFields(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newMSWorld(t, dbURL, []string{"name", "phone", "region"}, nil)
		id := w.admn.Do("POST", "/v1/leads", map[string]any{"name": "李四", "company": "可见性测试有限公司", "phone": "13711112222",
			"region": "苏州", "tags": []string{"vis-tag"}, "poolId": w.leadPool}).Expect(http.StatusCreated).Map()["id"].(string)
		cases := []struct {
			name string
			q    url.Values
			want bool
		}{
			{"visible phone", url.Values{"q": {"13711112222"}}, true},
			{"visible region", url.Values{"region": {"苏州"}}, true},
			{"hidden tag", url.Values{"tag": {"vis-tag"}}, false},
			{"hidden company", url.Values{"q": {"可见性测试"}}, false},
			{"visible name", url.Values{"q": {"李四"}}, true},
		}
		for _, tc := range cases {
			if got := msFound(t, w.rep, "/v1/leads", tc.q, id); got != tc.want {
				t.Errorf("%s: found %v, want %v", tc.name, got, tc.want)
			}
		}
		// The customer pool has no visibleFields: nothing is masked.
		cid := w.admn.Do("POST", "/v1/customers", map[string]any{"name": "开放客户有限公司", "tags": []string{"open-tag"},
			"poolId": w.customerPool}).Expect(http.StatusCreated).Map()["id"].(string)
		if !msFound(t, w.rep, "/v1/customers", url.Values{"tag": {"open-tag"}}, cid) ||
			!msFound(t, w.rep, "/v1/customers", url.Values{"q": {"开放客户"}}, cid) {
			t.Error("a pool without visibleFields hides the customer from search")
		}
	})
}

// TestFollowUpsOfPooledRecordsAreMasked: follow-up content of a pooled
// record is masked for members unless the pool lists followUps; its
// author, the pool manager and admins read it in full.
func TestFollowUpsOfPooledRecordsAreMasked(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newMSWorld(t, dbURL, []string{"name"}, nil)
		id := w.admn.Do("POST", "/v1/leads", map[string]any{"name": "跟进对象", "poolId": w.leadPool}).Expect(http.StatusCreated).Map()["id"].(string)
		w.rep.Do("POST", "/v1/leads/"+id+"/claim", nil).Expect(http.StatusOK)
		const secret = "客户预算二十万，下周三签约"
		logFollowUp(w.rep, "lead", id, time.Now().Add(-time.Hour), "content", secret).Expect(http.StatusCreated)
		w.rep.Do("POST", "/v1/leads/"+id+"/return", map[string]any{"reason": "not now"}).Expect(http.StatusOK)

		content := func(c *apitest.Client, q url.Values) string {
			t.Helper()
			p := listFollowUps(t, c, q)
			for _, f := range p.Items {
				if f.SubjectID == id {
					return f.Content
				}
			}
			t.Fatalf("follow-up on %s not listed (%+v)", id, p)
			return ""
		}
		bySubject := url.Values{"subjectType": {"lead"}, "subjectId": {id}}
		all := url.Values{"subjectType": {"lead"}}
		for _, q := range []url.Values{bySubject, all} {
			if got := content(w.rep2, q); got == secret || got == "" {
				t.Errorf("another member reads %q (query %v), want it masked", got, q)
			}
			for who, c := range map[string]*apitest.Client{"author": w.rep, "pool manager": w.manager, "admin": w.admn} {
				if got := content(c, q); got != secret {
					t.Errorf("the %s reads %q, want the content", who, got)
				}
			}
		}

		// Listing followUps shows it to members.
		w.admn.Do("PATCH", "/v1/pools/"+w.leadPool, map[string]any{"visibleFields": []string{"name", "followUps"}}, "If-Match", w.admn.ETag("/v1/pools/"+w.leadPool)).Expect(http.StatusOK)
		if got := content(w.rep2, bySubject); got != secret {
			t.Errorf("with followUps visible a member reads %q, want the content", got)
		}
		// A pool without visibleFields masks nothing either.
		w.admn.Do("PATCH", "/v1/pools/"+w.leadPool, map[string]any{"visibleFields": nil}, "If-Match", w.admn.ETag("/v1/pools/"+w.leadPool)).Expect(http.StatusOK)
		if got := content(w.rep2, bySubject); got != secret {
			t.Errorf("with no visibleFields a member reads %q, want the content", got)
		}
	})
}
