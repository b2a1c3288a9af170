package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent/approval"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// qtProduct makes a product (as a supervisor or admin c) with a list
// price, a cost of 70% of it when costed, in category cat; it returns its
// id.
func qtProduct(t *testing.T, c *apitest.Client, price string, costed bool, cat string) string {
	t.Helper()
	body := map[string]any{"sku": "QT-" + uuid.NewString()[:8], "name": "报价产品", "listPrice": price}
	if costed {
		body["internalCost"] = "70.00"
	}
	if cat != "" {
		body["category"] = cat
	}
	return c.Do("POST", "/v1/products", body).Expect(http.StatusCreated).Map()["id"].(string)
}

// qtCreate makes a quote on customerID with one line of product (a
// free-text line of 100.00 when product is ""), quantity qty.
func qtCreate(t *testing.T, c *apitest.Client, customerID, product, qty string) string {
	t.Helper()
	line := map[string]any{"quantity": qty}
	if product != "" {
		line["productId"] = product
	} else {
		line["name"], line["unitPrice"] = "实施服务", "100.00"
	}
	res := c.Do("POST", "/v1/quotes", map[string]any{"title": "ev", "customerId": customerID, "lines": []any{line}}).
		Expect(http.StatusCreated)
	return res.Map()["id"].(string)
}

// evApprovalOf is the id of the approval request on a subject.
func evApprovalOf(t *testing.T, w *evWorld, subject string) string {
	t.Helper()
	a, err := w.env.App.Store.Client.Approval.Query().Where(approval.SubjectID(uuid.MustParse(subject))).Only(context.Background())
	if err != nil {
		t.Fatalf("approval of %s: %v", subject, err)
	}
	return a.ID.String()
}

type qtQuote struct {
	ID, Status, Number, ApprovalID, PreviousID, SupersededByID string
	Revision                                                   int
	Subtotal, DiscountTotal, TaxTotal, Total                   string
	MarginPercent                                              *string
	Lines                                                      []struct {
		ID, Subtotal, Discount, Tax, Total string
		MarginPercent                      *string
	}
}

func qtGet(t *testing.T, c *apitest.Client, id string) qtQuote {
	t.Helper()
	var q qtQuote
	c.Do("GET", "/v1/quotes/"+id, nil).Expect(http.StatusOK).JSON(&q)
	return q
}

type qtApproval struct {
	ID, Status, Rule string
	CurrentStep      int
	Steps            []struct{ Approver, Status string }
	Reasons          []struct{ LineID, Reason string }
}

// TestQuoteToWonDeal walks the sales path through HTTP on both engines:
// customer → opportunity through every stage → quote below margin refused
// at send with its blocking lines → submitted → approved by the supervisor
// → sent → declined → revised → accepted → opportunity won → customer
// dealt, and no longer reclaimed for no deal (a control customer is).
func TestQuoteToWonDeal(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		pl := w.pool("customer", map[string]any{"memberTeamIds": []string{w.team.String()}, "noDealDays": 30})
		cu := w.claimed(w.repA, "customer", pl, nil)
		control := w.claimed(w.repA, "customer", pl, nil)
		w.admin.Do("PATCH", "/v1/settings", map[string]any{"minQuoteMarginPercent": "20"}, "If-Match", w.admin.ETag("/v1/settings")).
			Expect(http.StatusOK)

		good := qtProduct(t, w.sup.Client, "100.00", true, "")     // 30% margin
		thin := qtProduct(t, w.sup.Client, "80.00", true, "")      // cost 70.00 of 80.00: 12.5%
		unknown := qtProduct(t, w.sup.Client, "100.00", false, "") // no cost

		// The opportunity through every open stage.
		res := w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "恒达 CRM", "customerId": cu.ID, "amount": "50000.00"}).
			Expect(http.StatusCreated)
		opp, pipeline := res.Map()["id"].(string), res.Map()["pipelineId"].(string)
		for _, code := range []string{"needs", "proposal", "negotiation"} {
			w.repA.Do("POST", "/v1/opportunities/"+opp+"/stage", map[string]any{"stageId": opStage(t, w.repA.Client, pipeline, code)}).
				Expect(http.StatusOK)
		}

		// A quote with a thin line and one without cost.
		var q qtQuote
		w.repA.Do("POST", "/v1/quotes", map[string]any{"title": "恒达 CRM 报价", "opportunityId": opp, "lines": []any{
			map[string]any{"productId": good, "quantity": "3", "discountPercent": "5", "taxRate": "13"},
			map[string]any{"productId": thin, "quantity": "2", "taxRate": "13"},
			map[string]any{"productId": unknown, "quantity": "1"},
			map[string]any{"name": "实施服务", "unitPrice": "5000.00", "quantity": "1", "taxRate": "6"},
		}}).Expect(http.StatusCreated).JSON(&q)
		// 3 × 100 = 300, −5% = 285, tax 37.05; 2 × 80 = 160, tax 20.80;
		// 100; 5000, tax 300.
		if q.Subtotal != "5560.00" || q.DiscountTotal != "15.00" || q.TaxTotal != "357.85" || q.Total != "5902.85" {
			t.Fatalf("totals %s − %s + %s = %s", q.Subtotal, q.DiscountTotal, q.TaxTotal, q.Total)
		}
		if q.MarginPercent != nil || q.Lines[0].MarginPercent != nil {
			t.Fatal("the rep sees a margin")
		}
		p := w.repA.Do("POST", "/v1/quotes/"+q.ID+"/send", nil)
		p.ExpectProblem(http.StatusConflict, "quote_needs_approval")
		var blocking struct {
			BlockingLines []struct{ LineID, Reason string }
		}
		p.JSON(&blocking)
		want := []struct{ LineID, Reason string }{{q.Lines[1].ID, "below_margin"}, {q.Lines[2].ID, "missing_cost"}}
		if !slices.Equal(blocking.BlockingLines, want) {
			t.Fatalf("blocking lines %+v, want %+v", blocking.BlockingLines, want)
		}
		if strings.Contains(string(p.Body), "70.00") || strings.Contains(string(p.Body), "\"margin\"") {
			t.Fatalf("the refusal shows costs: %s", p.Body)
		}

		// Submitted, approved by the supervisor, sent, declined.
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/submit", nil).Expect(http.StatusOK).JSON(&q)
		if q.Status != "pending_approval" || q.ApprovalID == "" {
			t.Fatalf("submitted: %+v", q)
		}
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/send", nil).ExpectProblem(http.StatusConflict, "quote_needs_approval")
		w.repA.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve"}).
			ExpectProblem(http.StatusForbidden, "forbidden")
		var mine struct{ Items []qtApproval }
		w.sup.Do("GET", "/v1/approvals?mine=to_decide", nil).Expect(http.StatusOK).JSON(&mine)
		if len(mine.Items) != 1 || mine.Items[0].ID != q.ApprovalID || mine.Items[0].Rule != "cost_gate" || len(mine.Items[0].Reasons) != 2 {
			t.Fatalf("the supervisor's approvals: %+v", mine.Items)
		}
		var ap qtApproval
		w.sup.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve", "comment": "战略客户"}).
			Expect(http.StatusOK).JSON(&ap)
		if ap.Status != "approved" || ap.Steps[0].Status != "approved" {
			t.Fatalf("decided: %+v", ap)
		}
		w.sup.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve"}).
			ExpectProblem(http.StatusConflict, "approval_not_pending")
		if q = qtGet(t, w.repA.Client, q.ID); q.Status != "approved" {
			t.Fatalf("after approval: %s", q.Status)
		}
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/send", nil).Expect(http.StatusOK)
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/accept", nil, "If-Match", `"1"`).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/decline", map[string]any{"reason": "价格偏高"}).Expect(http.StatusOK)
		w.repA.Do("PATCH", "/v1/quotes/"+q.ID, map[string]any{"title": "x"}, "If-Match", "*").ExpectProblem(http.StatusConflict, "invalid_quote_status")

		// Revised without the thin and uncosted lines: sent at once, accepted.
		var r qtQuote
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/revise", nil).Expect(http.StatusCreated).JSON(&r)
		if r.Revision != 2 || r.Number != q.Number || r.PreviousID != q.ID || r.Status != "draft" {
			t.Fatalf("revision: %+v", r)
		}
		if old := qtGet(t, w.repA.Client, q.ID); old.Status != "superseded" || old.SupersededByID != r.ID {
			t.Fatalf("the old revision: %+v", old)
		}
		w.repA.Do("PATCH", "/v1/quotes/"+r.ID, map[string]any{"lines": []any{
			map[string]any{"productId": good, "quantity": "3", "discountPercent": "5", "taxRate": "13"}}},
			"If-Match", w.repA.ETag("/v1/quotes/"+r.ID)).Expect(http.StatusOK)
		w.repA.Do("POST", "/v1/quotes/"+r.ID+"/send", nil).Expect(http.StatusOK)
		w.repA.Do("POST", "/v1/quotes/"+r.ID+"/accept", nil).Expect(http.StatusOK).JSON(&r)
		if r.Status != "accepted" || r.Total != "322.05" {
			t.Fatalf("accepted: %+v", r)
		}
		var revs struct{ Items []qtQuote }
		w.repA.Do("GET", "/v1/quotes?number="+url.QueryEscape(q.Number), nil).Expect(http.StatusOK).JSON(&revs)
		if len(revs.Items) != 2 {
			t.Fatalf("%d revisions listed", len(revs.Items))
		}

		// Won: the customer is dealt and no longer reclaimed for no deal.
		w.repA.Do("POST", "/v1/opportunities/"+opp+"/stage", map[string]any{"stageId": opStage(t, w.repA.Client, pipeline, "won")}).
			Expect(http.StatusOK)
		if got := w.get("customer", cu.ID); !got.DealStatus {
			t.Fatal("the customer is not dealt")
		}
		w.advance(31 * 24 * time.Hour)
		w.sweep(false, nil)
		if got := w.get("customer", cu.ID); got.owner() != w.repA.ID {
			t.Fatalf("the dealt customer was reclaimed: owner %q", got.owner())
		}
		if got := w.get("customer", control.ID); got.owner() != "" {
			t.Fatalf("the control customer was not reclaimed: owner %q", got.owner())
		}
	})
}

// TestQuoteTwoStepApproval: a flow rule for deep discounts needs the
// supervisor, then an admin; each decides only his step.
func TestQuoteTwoStepApproval(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		cu := w.owned(w.repA, "customer")
		path := "/v1/approval-flows/quote"
		w.sup.Do("PUT", path, map[string]any{"rules": []any{}}, "If-Match", "*").ExpectProblem(http.StatusForbidden, "forbidden")
		w.admin.Do("PUT", path, map[string]any{"rules": []any{
			map[string]any{"name": "deep_discount", "when": map[string]any{"discountPercentAbove": "20"},
				"steps": []any{map[string]any{"approver": "supervisor"}, map[string]any{"approver": "admin"}}},
			map[string]any{"name": "cost_gate", "steps": []any{map[string]any{"approver": "supervisor"}}},
		}}, "If-Match", w.admin.ETag(path)).Expect(http.StatusOK)

		product := qtProduct(t, w.sup.Client, "100.00", true, "")
		// A 10% discount passes the gate (margin 22%) and no rule: sent.
		var q qtQuote
		w.repA.Do("POST", "/v1/quotes", map[string]any{"title": "小折扣", "customerId": cu.ID, "lines": []any{
			map[string]any{"productId": product, "quantity": "1", "discountPercent": "10"}}}).Expect(http.StatusCreated).JSON(&q)
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/send", nil).Expect(http.StatusOK)

		// A 25% discount: the deep_discount rule, two steps.
		w.repA.Do("POST", "/v1/quotes", map[string]any{"title": "大折扣", "customerId": cu.ID, "lines": []any{
			map[string]any{"productId": product, "quantity": "1", "discountPercent": "25"}}}).Expect(http.StatusCreated).JSON(&q)
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/send", nil).ExpectProblem(http.StatusConflict, "quote_needs_approval")
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/submit", nil).Expect(http.StatusOK).JSON(&q)
		var ap qtApproval
		w.sup.Do("GET", "/v1/approvals/"+q.ApprovalID, nil).Expect(http.StatusOK).JSON(&ap)
		if ap.Rule != "deep_discount" || len(ap.Steps) != 2 || ap.CurrentStep != 0 {
			t.Fatalf("approval: %+v", ap)
		}
		w.sup.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve"}).Expect(http.StatusOK).JSON(&ap)
		if ap.Status != "pending" || ap.CurrentStep != 1 || ap.Steps[0].Status != "approved" {
			t.Fatalf("after the first step: %+v", ap)
		}
		if got := qtGet(t, w.repA.Client, q.ID); got.Status != "pending_approval" {
			t.Fatalf("quote after the first step: %s", got.Status)
		}
		w.sup.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve"}).
			ExpectProblem(http.StatusForbidden, "not_approver")
		var mine struct{ Items []qtApproval }
		w.admin.Do("GET", "/v1/approvals?mine=to_decide&subjectKind=quote", nil).Expect(http.StatusOK).JSON(&mine)
		if len(mine.Items) != 1 || mine.Items[0].ID != q.ApprovalID {
			t.Fatalf("the admin's approvals: %+v", mine.Items)
		}
		w.admin.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve"}).Expect(http.StatusOK).JSON(&ap)
		if ap.Status != "approved" {
			t.Fatalf("after the second step: %+v", ap)
		}
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/send", nil).Expect(http.StatusOK)

		// A rejection sends a quote back to draft.
		w.repA.Do("POST", "/v1/quotes", map[string]any{"title": "再来", "customerId": cu.ID, "lines": []any{
			map[string]any{"productId": product, "quantity": "1", "discountPercent": "30"}}}).Expect(http.StatusCreated).JSON(&q)
		w.repA.Do("POST", "/v1/quotes/"+q.ID+"/submit", nil).Expect(http.StatusOK).JSON(&q)
		w.sup.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "reject", "comment": "太低"}).Expect(http.StatusOK)
		if got := qtGet(t, w.repA.Client, q.ID); got.Status != "draft" {
			t.Fatalf("after rejection: %s", got.Status)
		}
	})
}

// TestQuoteScopeAndCosts: a rep sees only his quotes and never a cost or
// margin (JSON, CSV, XLSX, errors, events); a supervisor sees his team's
// with margins; an auditor reads all and changes nothing.
func TestQuoteScopeAndCosts(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		auditor := w.user("auditor", nil)
		cu := w.owned(w.repA, "customer")
		product := qtProduct(t, w.sup.Client, "12346.00", false, "")
		w.sup.Do("PATCH", "/v1/products/"+product, map[string]any{"internalCost": "7777.31"}, "If-Match", "*").Expect(http.StatusOK)
		id := qtCreate(t, w.repA.Client, cu.ID, product, "1")
		const cost, margin = "7777.31", "4568.69"

		sup := w.sup.Do("GET", "/v1/quotes/"+id, nil).Expect(http.StatusOK)
		if !strings.Contains(string(sup.Body), cost) || !strings.Contains(string(sup.Body), margin) {
			t.Fatalf("the supervisor does not see the cost: %s", sup.Body)
		}
		w.repB.Do("GET", "/v1/quotes/"+id, nil).ExpectProblem(http.StatusNotFound, "not_found")
		w.repB.Do("POST", "/v1/quotes/"+id+"/send", nil).ExpectProblem(http.StatusNotFound, "not_found")
		var list struct{ Items []qtQuote }
		w.repB.Do("GET", "/v1/quotes", nil).Expect(http.StatusOK).JSON(&list)
		if len(list.Items) != 0 {
			t.Fatalf("repB lists %d quotes", len(list.Items))
		}
		auditor.Do("GET", "/v1/quotes/"+id, nil).Expect(http.StatusOK)
		auditor.Do("POST", "/v1/quotes/"+id+"/send", nil).ExpectProblem(http.StatusForbidden, "forbidden")

		for name, c := range map[string]*apitest.Client{"rep": w.repA.Client, "auditor": auditor.Client} {
			bodies := [][]byte{
				c.Do("GET", "/v1/quotes/"+id, nil).Expect(http.StatusOK).Body,
				c.Do("GET", "/v1/quotes/"+id+"/render", nil).Expect(http.StatusOK).Body,
				c.Do("GET", "/v1/quotes", nil).Expect(http.StatusOK).Body,
				c.Do("GET", "/v1/events?limit=200", nil).Expect(http.StatusOK).Body,
			}
			for _, mt := range []string{mtCSV, mtXLSX} {
				ex := exExport(t, c, "/v1/quotes", url.Values{}, mt)
				if slices.Contains(ex.header, "costTotal") || slices.Contains(ex.header, "margin") {
					t.Errorf("%s's %s export has cost columns: %v", name, mt, ex.header)
				}
				for _, row := range ex.rows {
					bodies = append(bodies, []byte(strings.Join(row, ",")))
				}
			}
			for _, b := range bodies {
				s := string(b)
				if strings.Contains(s, cost) || strings.Contains(s, margin) || strings.Contains(s, "unitCost") || strings.Contains(s, "marginPercent") {
					t.Errorf("%s sees the cost: %s", name, s)
				}
			}
		}
		// The margin is below 40%: send is refused without a cost in it.
		w.admin.Do("PATCH", "/v1/settings", map[string]any{"minQuoteMarginPercent": "40"}, "If-Match", w.admin.ETag("/v1/settings")).
			Expect(http.StatusOK)
		p := w.repA.Do("POST", "/v1/quotes/"+id+"/send", nil)
		p.ExpectProblem(http.StatusConflict, "quote_needs_approval")
		if strings.Contains(string(p.Body), cost) || strings.Contains(string(p.Body), margin) {
			t.Errorf("the refusal shows the cost: %s", p.Body)
		}
		for _, mt := range []string{mtCSV, mtXLSX} {
			ex := exExport(t, w.sup.Client, "/v1/quotes", url.Values{}, mt)
			if !slices.Contains(ex.header, "costTotal") || !slices.Contains(ex.header, "marginPercent") {
				t.Errorf("the supervisor's %s export lacks the margin: %v", mt, ex.header)
			}
		}
	})
}

// TestQuoteFiguresAndRaces: awkward figures come back the same from both
// engines, and two approvers deciding one request at once make exactly
// one decision.
func TestQuoteFiguresAndRaces(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		cu := w.owned(w.repA, "customer")
		var q qtQuote
		w.repA.Do("POST", "/v1/quotes", map[string]any{"title": "零头", "customerId": cu.ID, "lines": []any{
			map[string]any{"name": "三分之一", "unitPrice": "3.00", "quantity": "0.333333", "taxRate": "13"},
			map[string]any{"name": "微折扣", "unitPrice": "1000.00", "quantity": "1", "discountPercent": "0.005", "taxRate": "6"},
			map[string]any{"name": "大额", "unitPrice": "99999999.99", "quantity": "1000", "discountPercent": "12.3456", "taxRate": "13"},
		}}).Expect(http.StatusCreated).JSON(&q)
		got := []string{q.Subtotal, q.DiscountTotal, q.TaxTotal, q.Total}
		// Worked by hand: 1.00+1000.00+99999999990.00; 0.05+12345599998.77;
		// 0.13+60.00+11395071998.86.
		want := []string{"100000000991.00", "12345599998.82", "11395072058.99", "99049473051.17"}
		if !slices.Equal(got, want) {
			t.Fatalf("figures %v, want %v", got, want)
		}
		if again := qtGet(t, w.admin.Client, q.ID); again.Total != q.Total || again.Lines[2].Tax != q.Lines[2].Tax {
			t.Fatalf("read back %+v", again)
		}

		product := qtProduct(t, w.sup.Client, "100.00", false, "")
		id := qtCreate(t, w.repA.Client, cu.ID, product, "1")
		w.repA.Do("POST", "/v1/quotes/"+id+"/submit", nil).Expect(http.StatusOK).JSON(&q)
		statuses := make(chan int, 2)
		for _, c := range []*apitest.Client{w.sup.Client, w.admin.Client} {
			go func() {
				statuses <- c.Do("POST", "/v1/approvals/"+q.ApprovalID+"/decision", map[string]any{"decision": "approve"}).Status
			}()
		}
		a, b := <-statuses, <-statuses
		if !(a == http.StatusOK && b == http.StatusConflict) && !(a == http.StatusConflict && b == http.StatusOK) {
			t.Fatalf("concurrent decisions answered %d and %d", a, b)
		}
		var ap qtApproval
		w.admin.Do("GET", "/v1/approvals/"+q.ApprovalID, nil).Expect(http.StatusOK).JSON(&ap)
		if ap.Status != "approved" || len(ap.Steps) != 1 {
			t.Fatalf("approval after the race: %+v", ap)
		}
	})
}

// TestRenderQuote: the printable quote carries the figures, the total in
// capital numerals and the customer's name escaped.
func TestRenderQuote(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		var cu struct{ ID string }
		w.repA.Do("POST", "/v1/customers", map[string]any{"name": "<script>alert(1)</script>恒达"}).Expect(http.StatusCreated).JSON(&cu)
		var q qtQuote
		w.repA.Do("POST", "/v1/quotes", map[string]any{"title": "打印", "customerId": cu.ID, "lines": []any{
			map[string]any{"name": "实施服务", "unitPrice": "1004.05", "quantity": "1"}}}).Expect(http.StatusCreated).JSON(&q)
		res := w.repA.Do("GET", "/v1/quotes/"+q.ID+"/render", nil).Expect(http.StatusOK)
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("content type %q", ct)
		}
		html := string(res.Body)
		for _, want := range []string{q.Number, "1,004.05", "壹仟零肆元零伍分", "&lt;script&gt;alert(1)&lt;/script&gt;恒达"} {
			if !strings.Contains(html, want) {
				t.Errorf("the rendered quote lacks %q", want)
			}
		}
		if strings.Contains(html, "<script>alert") {
			t.Error("the customer's name is not escaped")
		}
		w.repB.Do("GET", "/v1/quotes/"+q.ID+"/render", nil).ExpectProblem(http.StatusNotFound, "not_found")
	})
}

// TestReadScopesOnSalesDocuments: a key with quotes:read, opportunities:read
// and products:read bound to a pool reads the opportunities and quotes on
// that pool's customers only, and never a cost; without the scopes it is
// refused.
func TestReadScopesOnSalesDocuments(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newSWWorld(t, databaseURL)
		mk := func() string {
			return w.admin.Do("POST", "/v1/pools", map[string]any{"kind": "customer", "name": w.env.Unique("报价池"),
				"memberTeamIds": []string{w.team.String()}}).Expect(http.StatusCreated).Map()["id"].(string)
		}
		mine, other := mk(), mk()
		in, out := w.claimed(w.repA, "customer", mine, nil), w.claimed(w.repA, "customer", other, nil)
		product := qtProduct(t, w.sup.Client, "100.00", true, "")
		qIn, qOut := qtCreate(t, w.repA.Client, in.ID, product, "1"), qtCreate(t, w.repA.Client, out.ID, product, "1")
		oIn := w.repA.Do("POST", "/v1/opportunities", map[string]any{"title": "in", "customerId": in.ID, "amount": "1.00"}).
			Expect(http.StatusCreated).Map()["id"].(string)

		body := map[string]any{"name": w.env.Unique("Partner "), "scopes": []string{"quotes:read", "opportunities:read", "products:read"}, "poolId": mine}
		key := idKeyClient(w.env, w.admin.Do("POST", "/v1/api-keys", body).Expect(http.StatusCreated).Map()["secret"].(string))
		var list struct{ Items []qtQuote }
		key.Do("GET", "/v1/quotes", nil).Expect(http.StatusOK).JSON(&list)
		if len(list.Items) != 1 || list.Items[0].ID != qIn {
			t.Fatalf("the key lists %+v", list.Items)
		}
		key.Do("GET", "/v1/quotes/"+qOut, nil).ExpectProblem(http.StatusNotFound, "not_found")
		key.Do("GET", "/v1/quotes/"+qIn+"/render", nil).Expect(http.StatusOK)
		key.Do("GET", "/v1/opportunities/"+oIn, nil).Expect(http.StatusOK)
		for _, b := range [][]byte{
			key.Do("GET", "/v1/quotes/"+qIn, nil).Expect(http.StatusOK).Body,
			key.Do("GET", "/v1/products/"+product, nil).Expect(http.StatusOK).Body,
		} {
			if s := string(b); strings.Contains(s, "70.00") || strings.Contains(s, "internalCost") || strings.Contains(s, "marginPercent") {
				t.Errorf("the key sees a cost: %s", s)
			}
		}
		key.Do("POST", "/v1/quotes/"+qIn+"/send", nil).ExpectProblem(http.StatusForbidden, "forbidden")
		body["scopes"], body["name"] = []string{"customers:read"}, w.env.Unique("Partner ")
		narrow := idKeyClient(w.env, w.admin.Do("POST", "/v1/api-keys", body).Expect(http.StatusCreated).Map()["secret"].(string))
		narrow.Do("GET", "/v1/quotes/"+qIn, nil).ExpectProblem(http.StatusForbidden, "insufficient_scope")
	})
}
