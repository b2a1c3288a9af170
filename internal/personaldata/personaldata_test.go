package personaldata_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/claimrequest"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/convert"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/personaldata"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func ptr[T any](v T) *T { return &v }

func code(err error) string {
	if e, ok := apperr.As(err); ok {
		return e.Code
	}
	return ""
}

// The person every test erases, and spellings of his values.
const (
	person     = "张三丰"
	phone      = "+86 138-0013-8000"
	phoneNorm  = "13800138000"
	email      = "ZSF@Wudang.example"
	emailNorm  = "zsf@wudang.example"
	phone2     = "139 0013 9000"
	phone2Norm = "13900139000"
	wechat     = "zsf_wudang"
)

// secrets are the strings no table may hold after the person's erasure.
var secrets = []string{person, phoneNorm, "138-0013-8000", "138 0013 8000", emailNorm, email, phone2Norm, phone2, wechat}

type world struct {
	w                   *testkit.World
	admin, auditor, rep *auth.Principal
	lead, other         *records.LeadView
	customer            *records.CustomerView
	contact, bystander  *records.ContactView
}

// seed writes the person as a lead (owned by a rep, returned with a
// reason naming him, assigned back), as a contact of a customer with a
// credit limit, follow-ups naming him on both and on another lead, a
// claim request, and an unrelated lead and contact.
func seed(t *testing.T, url string) *world {
	t.Helper()
	w := testkit.New(t, url, app.Config{})
	team := w.Team(w.Unique("team"), nil)
	s := &world{w: w}
	_, s.admin = w.Actor(auth.RoleAdmin, nil)
	_, s.auditor = w.Actor(auth.RoleAuditor, nil)
	repUser, rep := w.Actor(auth.RoleRep, &team.ID)
	s.rep = rep
	ctx, r := w.Ctx, w.App.Records
	var err error
	s.lead, err = r.CreateLead(ctx, rep, records.LeadInput{Name: ptr(person), Company: ptr("武当派"), Phone: ptr(phone),
		Email: ptr(email), Notes: ptr("张三丰 prefers calls on 138 0013 8000, wechat zsf_wudang")})
	if err != nil {
		t.Fatalf("create lead: %v", err)
	}
	s.other, err = r.CreateLead(ctx, rep, records.LeadInput{Name: ptr("李四"), Company: ptr("峨眉贸易"), Phone: ptr("13700137000"),
		Notes: ptr("referred by 张三丰 (zsf@wudang.example)")})
	if err != nil {
		t.Fatalf("create other lead: %v", err)
	}
	s.customer, err = r.CreateCustomer(ctx, rep, records.CustomerInput{Name: ptr("武当贸易有限公司"), Address: ptr("湖北十堰武当山"),
		CreditLimit: patch.Value(money.MustFen(12345600))})
	if err != nil {
		t.Fatalf("create customer: %v", err)
	}
	s.contact, err = r.CreateContact(ctx, rep, s.customer.ID, records.ContactInput{Name: ptr(" 张三丰 "), Title: ptr("掌门"),
		Phone: ptr(phone2), Wechat: ptr(wechat), Notes: ptr("手机也可以打 +86 138 0013 8000")})
	if err != nil {
		t.Fatalf("create contact: %v", err)
	}
	s.bystander, err = r.CreateContact(ctx, rep, s.customer.ID, records.ContactInput{Name: ptr("宋远桥"), Phone: ptr("13600136000"),
		Notes: ptr("张三丰的大弟子")})
	if err != nil {
		t.Fatalf("create bystander: %v", err)
	}
	at := time.Now().Add(-time.Hour)
	for _, f := range []records.FollowUpInput{
		{SubjectType: "lead", SubjectID: s.lead.ID, Content: "给张三丰打电话 +86 138 0013 8000，邮件 zsf@WUDANG.example"},
		{SubjectType: "customer", SubjectID: s.customer.ID, Content: "张三丰 visited; mobile 139-0013-9000"},
		{SubjectType: "lead", SubjectID: s.other.ID, Content: "李四 says 张三丰 referred him"},
		{SubjectType: "lead", SubjectID: s.other.ID, Content: "nothing personal here"},
	} {
		f.Channel, f.OccurredAt = "call", at
		if _, err := r.CreateFollowUp(ctx, rep, f); err != nil {
			t.Fatalf("follow-up: %v", err)
		}
	}
	if err := w.App.Pools.Return(ctx, rep, kinds.Lead, s.lead.ID, "张三丰 asked us to call later"); err != nil {
		t.Fatalf("return: %v", err)
	}
	if _, err := w.App.Pools.Assign(ctx, s.admin, kinds.Lead, s.lead.ID, repUser.ID, "back to the rep who knows 张三丰"); err != nil {
		t.Fatalf("assign: %v", err)
	}
	// A claim request (pools needing approval make them; its reason is
	// free text like any other).
	cl := w.Store.Client
	if err := cl.ClaimRequest.Create().SetKind(claimrequest.KindLead).SetRecordID(s.lead.ID).SetPoolID(s.lead.PoolID).
		SetRequesterID(repUser.ID).SetReason("I know 张三丰 personally").SetCreatedAt(time.Now()).Exec(ctx); err != nil {
		t.Fatalf("claim request: %v", err)
	}
	// A follow-up from before the erasure's pre-scan margin (its id an
	// hour old): only the pre-scan's candidates lead the erasure to it.
	old, err := uuid.NewV7()
	if err != nil {
		t.Fatal(err)
	}
	hourAgo := personaldata.LowestID(time.Now().Add(-time.Hour))
	copy(old[:6], hourAgo[:6])
	if err := cl.FollowUp.Create().SetID(old).SetSubjectType(followup.SubjectTypeLead).SetSubjectID(s.other.ID).SetAuthorID(repUser.ID).
		SetChannel(followup.ChannelOther).SetContent("old note: 张三丰 138 0013 8000").SetOccurredAt(time.Now().Add(-time.Hour)).Exec(ctx); err != nil {
		t.Fatalf("old follow-up: %v", err)
	}
	if err := cl.ReclaimWarning.Create().SetKind(reclaimwarning.KindLead).SetRecordID(s.lead.ID).SetOwnerID(repUser.ID).
		SetReclaimAt(time.Now().Add(time.Hour)).SetReason("no follow-up with 张三丰 for 30 days").SetCreatedAt(time.Now()).Exec(ctx); err != nil {
		t.Fatalf("reclaim warning: %v", err)
	}
	return s
}

// dump is every row of every table of the database, as text.
func dump(t *testing.T, w *testkit.World) map[string][]string {
	t.Helper()
	db := w.Store.DB()
	q := "SELECT name FROM sqlite_master WHERE type = 'table'"
	if w.Store.Dialect == "postgres" {
		q = "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
	}
	tables := queryStrings(t, db, q)
	out := map[string][]string{}
	for _, tb := range tables {
		rows, err := db.QueryContext(context.Background(), fmt.Sprintf(`SELECT * FROM "%s"`, tb))
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
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func queryStrings(t *testing.T, db *sql.DB, q string) []string {
	t.Helper()
	rows, err := db.QueryContext(context.Background(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// leaks lists the rows of d holding one of values (case-insensitively).
func leaks(d map[string][]string, values []string) []string {
	var out []string
	for tb, rows := range d {
		for _, r := range rows {
			for _, v := range values {
				if strings.Contains(strings.ToLower(r), strings.ToLower(v)) {
					out = append(out, tb+": "+v+" in "+r)
				}
			}
		}
	}
	return out
}

func TestEraseLeavesNoPersonalValue(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		s := seed(t, url)
		w, ctx := s.w, s.w.Ctx
		leadBefore, err := w.App.Records.GetLead(ctx, s.admin, s.lead.ID)
		if err != nil {
			t.Fatal(err)
		}
		before := dump(t, w)
		if len(leaks(before, []string{person, phoneNorm, emailNorm, wechat})) == 0 {
			t.Fatal("the seed holds none of the values: the test would prove nothing")
		}

		// A dry run answers what would change and changes nothing.
		dry, err := w.App.PersonalData.Erase(ctx, s.admin, personaldata.Query{Name: ptr("张三丰")}, true)
		if err != nil {
			t.Fatalf("dry run: %v", err)
		}
		if after := dump(t, w); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Fatalf("the dry run changed the database")
		}

		real, err := w.App.PersonalData.Erase(ctx, s.admin, personaldata.Query{Name: ptr(" 张三丰 ")}, false)
		if err != nil {
			t.Fatalf("erase: %v", err)
		}
		if fmt.Sprint(dry.Records, dry.Redacted) != fmt.Sprint(real.Records, real.Redacted) || real.DryRun || !dry.DryRun {
			t.Errorf("dry run %+v differs from the erasure %+v", dry, real)
		}
		erased := map[uuid.UUID][]string{}
		for _, c := range real.Records {
			if c.Erased {
				erased[c.ID] = c.Fields
			}
		}
		if got := erased[s.lead.ID]; strings.Join(got, ",") != "email,name,notes,phone" {
			t.Errorf("lead erased fields %v", got)
		}
		if got := erased[s.contact.ID]; strings.Join(got, ",") != "name,notes,phone,wechat" {
			t.Errorf("contact erased fields %v", got)
		}
		if _, ok := erased[s.other.ID]; ok || len(erased) != 2 {
			t.Errorf("erased %v; want the lead and the contact", erased)
		}
		r := real.Redacted
		if r.FollowUps != 4 || r.History != 2 || r.ClaimRequests != 1 || r.ReclaimWarnings != 1 || r.Events < 2 || r.DedupeKeys != 3 {
			t.Errorf("redacted %+v", r)
		}

		after := dump(t, w)
		for _, l := range leaks(after, secrets) {
			t.Errorf("left behind: %s", l)
		}
		// Business facts stay: as many rows in every table but the
		// event feed (which grew) and the keys and grams (which
		// shrank), and the customer's credit limit.
		for tb, rows := range before {
			switch tb {
			case "domain_events", "dedupe_keys", "search_grams":
				continue
			}
			if len(after[tb]) != len(rows) {
				t.Errorf("%s: %d rows, had %d", tb, len(after[tb]), len(rows))
			}
		}
		cu, err := w.App.Records.GetCustomer(ctx, s.admin, s.customer.ID)
		if err != nil || cu.CreditLimit == nil || cu.CreditLimit.Fen() != 12345600 || cu.Name != "武当贸易有限公司" {
			t.Errorf("customer after erasure: %+v, %v", cu, err)
		}
		l, err := w.App.Records.GetLead(ctx, s.admin, s.lead.ID)
		if err != nil || l.Name != personaldata.Anonymous || l.Phone != "" || l.Email != "" || l.Company != "武当派" ||
			*l.OwnerID != *leadBefore.OwnerID || l.Version != leadBefore.Version+1 || !l.UpdatedAt.After(leadBefore.UpdatedAt) {
			t.Errorf("lead after erasure: %+v, %v", l, err)
		}

		// Not findable by any of its values any more, and the values are
		// free for new records.
		for _, q := range []string{"张三丰", "三丰", "13800138000", "0138", "zsf@wudang"} {
			list, _, _, err := w.App.Records.ListLeads(ctx, s.admin, records.Filter{Q: ptr(q), Limit: 50})
			if err != nil || len(list) != 0 {
				t.Errorf("leads q=%s: %d, %v", q, len(list), err)
			}
			cs, _, _, err := w.App.Records.ListCustomers(ctx, s.admin, records.Filter{Q: ptr(q), Limit: 50})
			if err != nil || len(cs) != 0 {
				t.Errorf("customers q=%s: %d, %v", q, len(cs), err)
			}
		}
		if m, err := w.App.Records.CheckDuplicates(ctx, s.admin, "", phone, email); err != nil || len(m) != 0 {
			t.Errorf("duplicates after erasure: %v, %v", m, err)
		}
		if _, err := w.App.Records.CreateLead(ctx, s.rep, records.LeadInput{Name: ptr("新客户"), Phone: ptr(phoneNorm), Email: ptr(emailNorm)}); err != nil {
			t.Errorf("a new lead with the erased phone: %v", err)
		}

		// Again: nothing left to erase.
		if _, err := w.App.PersonalData.Erase(ctx, s.admin, personaldata.Query{Name: ptr("张三丰")}, false); code(err) != "not_found" {
			t.Errorf("second erasure: %v; want not_found", err)
		}
	})
}

func TestEraseByPhoneRedactsTheOtherValues(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		s := seed(t, url)
		w, ctx := s.w, s.w.Ctx
		otherBefore, err := w.App.Records.GetLead(ctx, s.admin, s.other.ID)
		if err != nil {
			t.Fatal(err)
		}
		res, err := w.App.PersonalData.Erase(ctx, s.admin, personaldata.Query{Phone: ptr("138 0013 8000")}, false)
		if err != nil {
			t.Fatalf("erase: %v", err)
		}
		if len(res.Records) == 0 || res.Records[0].ID != s.lead.ID || !res.Records[0].Erased {
			t.Fatalf("records %+v", res.Records)
		}
		// The lead's name and email went from every text, the contact
		// (another phone) is only redacted where its notes held them.
		after := dump(t, w)
		for _, l := range leaks(after, []string{phoneNorm, "138 0013 8000", emailNorm}) {
			t.Errorf("left behind: %s", l)
		}
		ct, err := w.App.Records.GetContact(ctx, s.admin, s.contact.ID)
		if err != nil || ct.Notes != "手机也可以打 [已删除]" || ct.Phone != phone2 {
			t.Errorf("contact: %+v, %v", ct, err)
		}
		o, err := w.App.Records.GetLead(ctx, s.admin, s.other.ID)
		if err != nil || o.Notes != "referred by [已删除] ([已删除])" || o.Version != otherBefore.Version+1 {
			t.Errorf("other lead: %+v, %v", o, err)
		}
	})
}

func TestPersonalDataRefusals(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		s := seed(t, url)
		w, ctx := s.w, s.w.Ctx
		pd := w.App.PersonalData
		cases := []struct {
			name  string
			p     *auth.Principal
			q     personaldata.Query
			erase bool
			want  string
		}{
			{"rep exports", s.rep, personaldata.Query{Phone: ptr(phone)}, false, "forbidden"},
			{"auditor erases", s.auditor, personaldata.Query{Phone: ptr(phone)}, true, "forbidden"},
			{"two values", s.admin, personaldata.Query{Phone: ptr(phone), Name: ptr(person)}, true, "validation_failed"},
			{"none", s.admin, personaldata.Query{}, false, "validation_failed"},
			{"short phone", s.admin, personaldata.Query{Phone: ptr("12")}, true, "validation_failed"},
			{"unknown", s.admin, personaldata.Query{Email: ptr("nobody@nowhere.example")}, true, "not_found"},
			{"unknown export", s.auditor, personaldata.Query{Name: ptr("无名氏")}, false, "not_found"},
		}
		for _, c := range cases {
			var err error
			if c.erase {
				_, err = pd.Erase(ctx, c.p, c.q, false)
			} else {
				_, err = pd.Export(ctx, c.p, c.q)
			}
			if code(err) != c.want {
				t.Errorf("%s: %v; want %s", c.name, err, c.want)
			}
		}
	})
}

func TestExport(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		s := seed(t, url)
		w, ctx := s.w, s.w.Ctx
		ex, err := w.App.PersonalData.Export(ctx, s.auditor, personaldata.Query{Name: ptr(person)})
		if err != nil {
			t.Fatalf("export: %v", err)
		}
		if len(ex.Leads) != 1 || ex.Leads[0].Row.ID != s.lead.ID || ex.Leads[0].Row.Phone != phone ||
			len(ex.Leads[0].FollowUps) != 1 || len(ex.Leads[0].History) != 3 || len(ex.Leads[0].ClaimRequests) != 1 ||
			ex.Leads[0].OwnerName == nil {
			t.Errorf("leads %+v", ex.Leads)
		}
		if len(ex.Contacts) != 1 || ex.Contacts[0].ID != s.contact.ID || ex.Contacts[0].Wechat != wechat {
			t.Errorf("contacts %+v", ex.Contacts)
		}
		if len(ex.Customers) != 0 || ex.MatchedOn != "name" {
			t.Errorf("customers %+v matched on %s", ex.Customers, ex.MatchedOn)
		}
		// The customer's follow-up and the other lead's two name him.
		if len(ex.Mentions) != 3 {
			t.Errorf("mentions %d", len(ex.Mentions))
		}
	})
}

// A converted lead's person lives on as the customer's contact: erasing
// by his email anonymises both, and frees the keys the conversion moved.
func TestEraseConvertedLead(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		s := seed(t, url)
		w, ctx := s.w, s.w.Ctx
		cv := convert.New(w.Store, w.App.Pools, w.App.Records)
		cuID, err := cv.Convert(ctx, s.rep, s.lead.ID, "")
		if err != nil {
			t.Fatalf("convert: %v", err)
		}
		res, err := w.App.PersonalData.Erase(ctx, s.admin, personaldata.Query{Email: ptr("zsf@WUDANG.example")}, false)
		if err != nil {
			t.Fatalf("erase: %v", err)
		}
		kinds := map[string]int{}
		for _, c := range res.Records {
			if c.Erased {
				kinds[c.Kind]++
			}
		}
		if kinds["lead"] != 1 || kinds["contact"] != 1 || kinds["customer"] != 0 {
			t.Errorf("erased %v", kinds)
		}
		list, _, err := w.App.Records.ListContacts(ctx, s.admin, cuID, nil, 50)
		if err != nil || len(list) != 1 || list[0].Name != personaldata.Anonymous || list[0].Email != "" || list[0].Phone != "" {
			t.Errorf("contacts of the converted customer: %v, %v", list, err)
		}
		for _, l := range leaks(dump(t, w), []string{phoneNorm, emailNorm}) {
			t.Errorf("left behind: %s", l)
		}
		if _, err := w.App.Records.CreateLead(ctx, s.rep, records.LeadInput{Name: ptr("新"), Phone: ptr(phone), Email: ptr(email)}); err != nil {
			t.Errorf("a new lead with the erased phone and email: %v", err)
		}
	})
}
