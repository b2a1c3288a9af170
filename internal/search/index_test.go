package search_test

import (
	"os"
	"testing"

	"github.com/shoalcrm/shoal/ent/setting"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/search"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// TestBackfill: a database whose records predate the index (no grams, no
// contact name_norm, no marker) is indexed by Backfill, once.
func TestBackfill(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		w := testkit.New(t, url, app.Config{})
		_, p := w.Actor(auth.RoleAdmin, nil)
		ctx, c := w.Ctx, w.Store.Client
		s := func(v string) *string { return &v }
		l, err := w.App.Records.CreateLead(ctx, p, records.LeadInput{Name: s("张三"), Company: s("苏州恒达机械有限公司"), Phone: s("13912345678")})
		if err != nil {
			t.Fatal(err)
		}
		cu, err := w.App.Records.CreateCustomer(ctx, p, records.CustomerInput{Name: s("杭州瑞丰贸易有限公司")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.App.Records.CreateContact(ctx, p, cu.ID, records.ContactInput{Name: s("欧阳建国")}); err != nil {
			t.Fatal(err)
		}
		found := func(q string) (lead, customer bool) {
			t.Helper()
			ls, _, _, err := w.App.Records.ListLeads(ctx, p, records.Filter{Q: &q, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			cs, _, _, err := w.App.Records.ListCustomers(ctx, p, records.Filter{Q: &q, Limit: 50})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range ls {
				lead = lead || v.ID == l.ID
			}
			for _, v := range cs {
				customer = customer || v.ID == cu.ID
			}
			return
		}

		// As an older Shoal left it.
		if _, err := c.SearchGram.Delete().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := c.Contact.Update().SetNameNorm("").Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Setting.Delete().Where(setting.ID("search_index_backfilled")).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if l, _ := found("恒达"); l {
			t.Fatal("found without an index")
		}

		if err := search.Backfill(ctx, c); err != nil {
			t.Fatal(err)
		}
		for _, q := range []string{"恒达", "2345"} {
			if l, _ := found(q); !l {
				t.Errorf("q=%s: the lead is not found after the backfill", q)
			}
		}
		for _, q := range []string{"瑞丰", "建国"} {
			if _, c := found(q); !c {
				t.Errorf("q=%s: the customer is not found after the backfill", q)
			}
		}

		// Once: with the marker written, a second run changes nothing.
		if _, err := c.SearchGram.Delete().Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if err := search.Backfill(ctx, c); err != nil {
			t.Fatal(err)
		}
		if n, err := c.SearchGram.Query().Count(ctx); err != nil || n != 0 {
			t.Errorf("the second backfill wrote %d grams (%v), want none", n, err)
		}
	})
}
