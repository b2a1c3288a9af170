package quotes_test

import (
	"errors"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/quotes"
	"github.com/shoalcrm/shoal/internal/records"
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

// TestApproversAndFlows, below HTTP: a supervisor decides only for his
// team subtree (a sibling team's supervisor is not an approver), nobody
// decides his own request, a user step names its approver, a rejected
// quote can be changed and submitted again, and a flow's conditions pick
// its steps.
func TestApproversAndFlows(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := testkit.New(t, url, app.Config{})
		top := w.Team(w.Unique("north"), nil)
		sub := w.Team(w.Unique("north-east"), &top.ID)
		other := w.Team(w.Unique("south"), nil)
		_, supTop := w.Actor("supervisor", &top.ID)
		supSubUser, supSub := w.Actor("supervisor", &sub.ID)
		_, supOther := w.Actor("supervisor", &other.ID)
		_, rep := w.Actor("rep", &sub.ID)
		_, admin := w.Actor("admin", nil)
		q, ap := w.App.Quotes, w.App.Approvals

		name := "华东客户"
		cu, err := w.App.Records.CreateCustomer(w.Ctx, rep, records.CustomerInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.App.Pools.UpdateSettings(w.Ctx, ptr("*"), pool.SettingsPatch{MinQuoteMarginPercent: patch.Value("20")}); err != nil {
			t.Fatal(err)
		}
		price, cost := money.MustParse("100.00"), money.MustParse("95.00")
		pr, err := w.App.Products.Create(w.Ctx, admin, products.Input{SKU: w.Unique("P"), Name: "薄利产品", ListPrice: price, InternalCost: &cost})
		if err != nil {
			t.Fatal(err)
		}
		newQuote := func(disc string) uuid.UUID {
			t.Helper()
			qt, err := q.Create(w.Ctx, rep, quotes.Input{Title: "t", CustomerID: &cu.ID,
				Lines: []quotes.LineInput{{ProductID: &pr.ID, Quantity: "1", DiscountPercent: &disc}}})
			if err != nil {
				t.Fatal(err)
			}
			return qt.ID
		}
		submit := func(id uuid.UUID) uuid.UUID {
			t.Helper()
			qt, a, err := q.Submit(w.Ctx, rep, id, nil)
			if err != nil || a == nil || string(qt.Status) != quotes.StatusPendingApproval {
				t.Fatalf("submit: %v %+v", err, qt)
			}
			return a.ID
		}

		// The built-in flow: any supervisor over the rep's team.
		id := newQuote("0")
		a := submit(id)
		for name, p := range map[string]*auth.Principal{"a sibling team's supervisor": supOther, "the requester": rep} {
			if _, err := ap.Decide(w.Ctx, p, a, approvals.Decision{Approve: true}); code(err) != "not_approver" && code(err) != "not_found" {
				t.Errorf("%s decided: %v", name, err)
			}
		}
		if _, err := ap.Decide(w.Ctx, supTop, a, approvals.Decision{Approve: false, Comment: "太薄"}); err != nil {
			t.Fatalf("the top team's supervisor rejects: %v", err)
		}
		if got, _ := q.Get(w.Ctx, rep, id); string(got.Status) != quotes.StatusDraft {
			t.Fatalf("rejected quote is %s", got.Status)
		}
		// Changed and submitted again: a new request.
		disc := "0"
		if _, err := q.Update(w.Ctx, rep, id, ptr("*"), quotes.Patch{Lines: []quotes.LineInput{{ProductID: &pr.ID, Quantity: "2", DiscountPercent: &disc}}}); err != nil {
			t.Fatal(err)
		}
		if a2 := submit(id); a2 == a {
			t.Fatal("the second submission reused the decided request")
		}

		// A flow: above 10% discount, the sub-team's supervisor by name,
		// then an admin.
		rules := []schema.FlowRule{
			{Name: "deep", When: &schema.FlowCondition{DiscountPercentAbove: ptr("10")},
				Steps: []schema.ApprovalStep{{Approver: approvals.ApproverUser, UserID: &supSubUser.ID}, {Approver: approvals.ApproverAdmin}}},
			{Name: "gate", Steps: []schema.ApprovalStep{{Approver: approvals.ApproverSupervisor}}},
		}
		if _, err := ap.UpdateFlow(w.Ctx, admin, approvals.SubjectQuote, ptr("*"), rules); err != nil {
			t.Fatal(err)
		}
		a = submit(newQuote("15"))
		if _, err := ap.Decide(w.Ctx, supTop, a, approvals.Decision{Approve: true}); code(err) != "not_approver" {
			t.Fatalf("a supervisor not named decided a user step: %v", err)
		}
		if got, err := ap.Decide(w.Ctx, supSub, a, approvals.Decision{Approve: true}); err != nil || got.Status != "pending" || got.CurrentStep != 1 || got.Rule != "deep" {
			t.Fatalf("the named supervisor: %v %+v", err, got)
		}
		if got, err := ap.Decide(w.Ctx, admin, a, approvals.Decision{Approve: true}); err != nil || got.Status != "approved" {
			t.Fatalf("the admin: %v %+v", err, got)
		}

		// Flows refuse what cannot work.
		for name, bad := range map[string][]schema.FlowRule{
			"no rules":          {},
			"pool_manager step": {{Name: "x", Steps: []schema.ApprovalStep{{Approver: approvals.ApproverPoolManager}}}},
			"user without id":   {{Name: "x", Steps: []schema.ApprovalStep{{Approver: approvals.ApproverUser}}}},
			"a rep as approver": {{Name: "x", Steps: []schema.ApprovalStep{{Approver: approvals.ApproverUser, UserID: &rep.ID}}}},
			"duplicate names":   {{Name: "x", Steps: rules[1].Steps}, {Name: "x", Steps: rules[1].Steps}},
		} {
			if _, err := ap.UpdateFlow(w.Ctx, admin, approvals.SubjectQuote, ptr("*"), bad); code(err) != "validation_failed" {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := ap.UpdateFlow(w.Ctx, admin, approvals.SubjectClaimRequest, ptr("*"), rules); code(err) != "validation_failed" {
			t.Errorf("conditions on claim requests: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
