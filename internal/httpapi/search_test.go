package httpapi_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestSubstringSearch: q finds a substring of a name, company, email,
// phone (four digits at least) or, for customers, of a contact's name,
// email or phone; never through a field the caller sees masked, never a
// record outside his scope; and the index follows every write.
func TestSubstringSearch(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		// Pooled leads show name, company and email, not the phone;
		// pooled customers show only the address.
		w := newMSWorld(t, dbURL, []string{"name", "company", "email"}, []string{"address"})
		pooled := w.admn.Do("POST", "/v1/leads", map[string]any{"name": "张三丰", "company": "苏州恒达机械有限公司",
			"phone": "13912345678", "email": "Sales.Dept@HengDa-Machinery.cn", "poolId": w.leadPool}).Expect(http.StatusCreated).Map()["id"].(string)
		mine := w.rep.Do("POST", "/v1/leads", map[string]any{"name": "李四", "company": "无锡恒达电子有限公司",
			"phone": "13812349999"}).Expect(http.StatusCreated).Map()["id"].(string)
		// rep2 is of the same team, but a rep sees only his own.
		theirs := w.rep2.Do("POST", "/v1/leads", map[string]any{"name": "王五", "company": "恒达精工",
			"phone": "13712345678"}).Expect(http.StatusCreated).Map()["id"].(string)

		leads := func(c *apitest.Client, q string) map[string]bool {
			t.Helper()
			return msIDs(t, c, "/v1/leads", url.Values{"q": {q}})
		}
		cases := []struct {
			name    string
			c       *apitest.Client
			q       string
			want    []string // found
			notWant []string // not found
		}{
			{"two characters in the company", w.rep, "恒达", []string{pooled, mine}, []string{theirs}},
			{"four characters", w.rep, "恒达机械", []string{pooled}, []string{mine, theirs}},
			{"the middle of the company", w.rep, "州恒达机", []string{pooled}, []string{mine}},
			{"the legal form is no part of the name", w.rep, "恒达机械有限公司", []string{pooled}, []string{mine}},
			{"two characters of the name", w.rep, "三丰", []string{pooled}, []string{mine}},
			{"email substring, any case", w.rep, "HENGDA-mach", []string{pooled}, nil},
			{"email domain part", w.rep, "machinery.cn", []string{pooled}, nil},
			{"masked phone, middle digits", w.rep, "2345678", nil, []string{pooled}},
			{"masked phone, four digits", w.rep, "5678", nil, []string{pooled}},
			{"own phone, middle digits", w.rep, "1234 99", []string{mine}, []string{pooled, theirs}},
			{"admin, phone middle", w.admn, "2345", []string{pooled, theirs}, []string{mine}},
			{"admin, phone with separators", w.admn, "139-1234", []string{pooled}, []string{theirs}},
			{"admin, three digits are no phone search", w.admn, "345", nil, []string{pooled, theirs}},
			{"admin sees every team's", w.admn, "恒达", []string{pooled, mine, theirs}, nil},
			{"no match", w.admn, "恒达汽车", nil, []string{pooled, mine, theirs}},
		}
		for _, tc := range cases {
			got := leads(tc.c, tc.q)
			for _, id := range tc.want {
				if !got[id] {
					t.Errorf("%s: q=%s does not find %s", tc.name, tc.q, id)
				}
			}
			for _, id := range tc.notWant {
				if got[id] {
					t.Errorf("%s: q=%s finds %s", tc.name, tc.q, id)
				}
			}
		}

		// An update re-indexes: the old company no longer finds the lead,
		// the new one does.
		w.rep.Do("PATCH", "/v1/leads/"+mine, map[string]any{"company": "无锡华兴电子有限公司", "phone": "13800000000"},
			"If-Match", w.rep.ETag("/v1/leads/"+mine)).Expect(http.StatusOK)
		if leads(w.rep, "恒达")[mine] || leads(w.rep, "2349")[mine] {
			t.Error("the old company or phone still finds the updated lead")
		}
		if !leads(w.rep, "华兴")[mine] || !leads(w.rep, "锡华兴电")[mine] {
			t.Error("the new company does not find the updated lead")
		}

		// A masked company is never matched: hide it from members.
		w.admn.Do("PATCH", "/v1/pools/"+w.leadPool, map[string]any{"visibleFields": []string{"name"}},
			"If-Match", w.admn.ETag("/v1/pools/"+w.leadPool)).Expect(http.StatusOK)
		if leads(w.rep, "恒达机械")[pooled] || leads(w.rep, "hengda")[pooled] {
			t.Error("the rep finds the pooled lead by its masked company or email")
		}
		if !leads(w.manager, "恒达机械")[pooled] {
			t.Error("the pool manager does not find the lead by its company")
		}

		// Customers: by name and by a contact's name, email and phone.
		customers := func(c *apitest.Client, q string) map[string]bool {
			t.Helper()
			return msIDs(t, c, "/v1/customers", url.Values{"q": {q}})
		}
		own := w.rep.Do("POST", "/v1/customers", map[string]any{"name": "杭州瑞丰贸易有限公司"}).Expect(http.StatusCreated).Map()["id"].(string)
		var ct struct {
			ID string `json:"id"`
		}
		w.rep.Do("POST", "/v1/customers/"+own+"/contacts", map[string]any{"name": "欧阳建国", "phone": "13600001111",
			"email": "jianguo@ruifeng.example"}).Expect(http.StatusCreated).JSON(&ct)
		for _, q := range []string{"瑞丰", "欧阳", "建国", "jianguo@", "0000111"} {
			if !customers(w.rep, q)[own] {
				t.Errorf("q=%s does not find the customer", q)
			}
		}
		if customers(w.rep2, "瑞丰")[own] || customers(w.rep2, "建国")[own] {
			t.Error("another rep finds the customer")
		}
		// Renaming the contact re-indexes the customer.
		w.rep.Do("PATCH", "/v1/contacts/"+ct.ID, map[string]any{"name": "司马光明"}, "If-Match", w.rep.ETag("/v1/contacts/"+ct.ID)).Expect(http.StatusOK)
		if customers(w.rep, "建国")[own] || !customers(w.rep, "光明")[own] {
			t.Error("the renamed contact is not re-indexed")
		}
		// Deleting it too.
		w.rep.Do("DELETE", "/v1/contacts/"+ct.ID, nil, "If-Match", w.rep.ETag("/v1/contacts/"+ct.ID)).Expect(http.StatusNoContent)
		if customers(w.rep, "光明")[own] || customers(w.rep, "0000111")[own] {
			t.Error("a deleted contact still finds the customer")
		}

		// A pooled customer's contacts are masked as its name is: members
		// never find it by them; the pool manager does.
		pc := w.admn.Do("POST", "/v1/customers", map[string]any{"name": "宁波远航物流有限公司", "poolId": w.customerPool}).Expect(http.StatusCreated).Map()["id"].(string)
		w.admn.Do("POST", "/v1/customers/"+pc+"/contacts", map[string]any{"name": "诸葛明亮", "phone": "13511112222"}).Expect(http.StatusCreated)
		for _, q := range []string{"远航", "诸葛", "1111222"} {
			if customers(w.rep, q)[pc] {
				t.Errorf("a member finds the pooled customer by its masked %s", q)
			}
			if !customers(w.manager, q)[pc] {
				t.Errorf("the pool manager does not find the pooled customer by %s", q)
			}
		}

		// A converted lead's customer is found by its contact at once.
		conv := w.rep.Do("POST", "/v1/leads", map[string]any{"name": "慕容复", "company": "姑苏燕子坞有限公司"}).Expect(http.StatusCreated).Map()["id"].(string)
		cust := w.rep.Do("POST", "/v1/leads/"+conv+"/convert", nil).Expect(http.StatusCreated).Map()["id"].(string)
		if !customers(w.rep, "慕容")[cust] || !customers(w.rep, "燕子")[cust] {
			t.Error("the converted customer is not found by its name or contact")
		}

		// One character stays a prefix search; nothing to search for is
		// refused.
		if !leads(w.rep, "张")[pooled] {
			t.Error("a one-character prefix does not find the lead")
		}
		w.rep.Do("GET", "/v1/leads?q="+url.QueryEscape("，"), nil).ExpectProblem(http.StatusBadRequest, "validation_failed")
	})
}

// msIDs lists path?query as c and returns the ids listed (one page of the
// largest size).
func msIDs(t *testing.T, c *apitest.Client, path string, query url.Values) map[string]bool {
	t.Helper()
	query.Set("limit", "200")
	var page struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	c.Do("GET", path+"?"+query.Encode(), nil).Expect(http.StatusOK).JSON(&page)
	out := map[string]bool{}
	for _, it := range page.Items {
		out[it.ID] = true
	}
	return out
}
