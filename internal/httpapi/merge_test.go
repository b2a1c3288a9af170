package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// mgRecord is what the merge tests read of a lead or customer.
type mgRecord struct {
	ID, Name, Company, Phone, Email, Address string
	OwnerID                                  *string
}

// TestMergeContract walks mergeLeads and mergeCustomers over HTTP: who may
// merge, the field choice, children moving, the merged id answering
// merged_into, lists, counters and duplicate keys.
func TestMergeContract(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		ta, tb := env.Team(env.Unique("A "), nil), env.Team(env.Unique("B "), nil)
		_, sup := env.User(auth.RoleSupervisor, &ta.ID)
		_, supB := env.User(auth.RoleSupervisor, &tb.ID)
		rep1User, rep1 := env.User(auth.RoleRep, &ta.ID)
		rep2User, rep2 := env.User(auth.RoleRep, &ta.ID)
		_, repB := env.User(auth.RoleRep, &tb.ID)
		ctx := context.Background()
		owned := func(id uuid.UUID) (int, int) {
			u, err := env.App.Store.Client.User.Get(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return u.OwnedLeads, u.OwnedCustomers
		}
		create := func(c *apitest.Client, kind string, body map[string]any) mgRecord {
			var r mgRecord
			c.Do("POST", "/v1/"+kind+"s", body).Expect(http.StatusCreated).JSON(&r)
			return r
		}
		keep := create(rep1, "lead", map[string]any{"name": "王伟", "company": "Acme Ltd", "phone": "13800000001"})
		gone := create(rep2, "lead", map[string]any{"name": "Wei Wang", "company": "Acme Beta", "phone": "13800000002", "email": "beta@acme.example"})
		other := create(repB, "lead", map[string]any{"name": "Other", "company": "Other Co"})
		rep2.Do("POST", "/v1/follow-ups", map[string]any{"subjectType": "lead", "subjectId": gone.ID, "channel": "call",
			"content": "rang", "occurredAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}).Expect(http.StatusCreated)

		// Who may merge: not a rep (the policy), not a supervisor of only
		// one owner (the other's lead is out of sight), not over records of
		// another team.
		body := map[string]any{"survivorId": keep.ID, "mergedIds": []string{gone.ID}, "fields": map[string]any{"phone": gone.ID, "email": gone.ID}}
		rep1.Do("POST", "/v1/leads/merge", body).ExpectProblem(http.StatusForbidden, "forbidden")
		supB.Do("POST", "/v1/leads/merge", body).ExpectProblem(http.StatusNotFound, "not_found")
		sup.Do("POST", "/v1/leads/merge", map[string]any{"survivorId": keep.ID, "mergedIds": []string{other.ID}}).
			ExpectProblem(http.StatusNotFound, "not_found")
		// The contract: the survivor is not among the merged, fields are
		// the mergeable ones only, and they come from the merge's records.
		sup.Do("POST", "/v1/leads/merge", map[string]any{"survivorId": keep.ID, "mergedIds": []string{keep.ID}}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		sup.Do("POST", "/v1/leads/merge", map[string]any{"survivorId": keep.ID, "mergedIds": []string{gone.ID}, "fields": map[string]any{"ownerId": gone.ID}}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		sup.Do("POST", "/v1/leads/merge", map[string]any{"survivorId": keep.ID, "mergedIds": []string{gone.ID}, "fields": map[string]any{"phone": other.ID}}).
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		sup.Do("POST", "/v1/leads/merge", body, "If-Match", `"v99"`).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")

		res := sup.Do("POST", "/v1/leads/merge", body, "If-Match", sup.ETag("/v1/leads/"+keep.ID)).Expect(http.StatusOK)
		var v mgRecord
		res.JSON(&v)
		if v.ID != keep.ID || v.Phone != "13800000002" || v.Email != "beta@acme.example" || v.Company != "Acme Ltd" || v.Name != "王伟" ||
			res.Header.Get("ETag") != sup.ETag("/v1/leads/"+keep.ID) {
			t.Fatalf("survivor %+v, ETag %q", v, res.Header.Get("ETag"))
		}

		// The merged id answers merged_into, with the survivor in the body
		// and in Location, on reads, edits and ownership operations; a
		// caller who could not see it still gets 404.
		for _, c := range []*apitest.Client{sup, rep2} {
			res := c.Do("GET", "/v1/leads/"+gone.ID, nil)
			res.ExpectProblem(http.StatusConflict, "merged_into")
			if res.Map()["survivorId"] != keep.ID || res.Header.Get("Location") != "/v1/leads/"+keep.ID {
				t.Fatalf("merged_into body %s, Location %q", res.Body, res.Header.Get("Location"))
			}
		}
		rep2.Do("PATCH", "/v1/leads/"+gone.ID, map[string]any{"notes": "x"}, "If-Match", "*").ExpectProblem(http.StatusConflict, "merged_into")
		rep2.Do("POST", "/v1/leads/"+gone.ID+"/return", map[string]any{"reason": "x"}).ExpectProblem(http.StatusConflict, "merged_into")
		rep2.Do("POST", "/v1/leads/"+gone.ID+"/convert", map[string]any{"customerName": "x"}).ExpectProblem(http.StatusConflict, "merged_into")
		rep2.Do("POST", "/v1/follow-ups", map[string]any{"subjectType": "lead", "subjectId": gone.ID, "channel": "call",
			"content": "again", "occurredAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}).ExpectProblem(http.StatusConflict, "merged_into")
		sup.Do("GET", "/v1/follow-ups?subjectType=lead&subjectId="+gone.ID, nil).ExpectProblem(http.StatusConflict, "merged_into")
		sup.Do("GET", "/v1/leads/"+gone.ID+"/history", nil).ExpectProblem(http.StatusConflict, "merged_into")
		repB.Do("GET", "/v1/leads/"+gone.ID, nil).ExpectProblem(http.StatusNotFound, "not_found")
		sup.Do("POST", "/v1/leads/merge", body).ExpectProblem(http.StatusConflict, "merged_into")

		// Children moved: the follow-up and the ownership history.
		var page struct{ Items []map[string]any }
		sup.Do("GET", "/v1/follow-ups?subjectType=lead&subjectId="+keep.ID, nil).Expect(http.StatusOK).JSON(&page)
		if len(page.Items) != 1 {
			t.Fatalf("survivor's follow-ups %+v", page.Items)
		}
		sup.Do("GET", "/v1/leads/"+keep.ID+"/history", nil).Expect(http.StatusOK).JSON(&page)
		if len(page.Items) != 2 {
			t.Fatalf("survivor's history %+v", page.Items)
		}
		// Gone from lists and from its owner's cap.
		sup.Do("GET", "/v1/leads?limit=50", nil).Expect(http.StatusOK).JSON(&page)
		for _, it := range page.Items {
			if it["id"] == gone.ID {
				t.Fatal("merged lead listed")
			}
		}
		if n, _ := owned(rep2User.ID); n != 0 {
			t.Fatalf("rep2 counts %d leads", n)
		}
		if n, _ := owned(rep1User.ID); n != 1 {
			t.Fatalf("rep1 counts %d leads", n)
		}
		// Duplicate keys recomputed: the merged phone now names the survivor.
		dup := repB.Do("POST", "/v1/leads", map[string]any{"name": "x", "phone": "13800000002"})
		dup.ExpectProblem(http.StatusConflict, "duplicate")
		var d struct{ Matches []struct{ ID *string } }
		sup.Do("GET", "/v1/duplicates?phone=13800000002", nil).Expect(http.StatusOK).JSON(&d)
		if len(d.Matches) != 1 || d.Matches[0].ID == nil || *d.Matches[0].ID != keep.ID {
			t.Fatalf("duplicates %s", sup.Do("GET", "/v1/duplicates?phone=13800000002", nil).Body)
		}
		repB.Do("POST", "/v1/leads", map[string]any{"name": "y", "phone": "13800000001"}).Expect(http.StatusCreated)

		// A converted lead is neither merged nor a survivor.
		conv := create(rep1, "lead", map[string]any{"name": "Conv", "company": "Conv Co"})
		rep1.Do("POST", "/v1/leads/"+conv.ID+"/convert", map[string]any{"customerName": env.Unique("Converted ")}).Expect(http.StatusCreated)
		sup.Do("POST", "/v1/leads/merge", map[string]any{"survivorId": keep.ID, "mergedIds": []string{conv.ID}}).
			ExpectProblem(http.StatusConflict, "merge_converted")

		// Customers: contacts move to the survivor.
		ck := create(rep1, "customer", map[string]any{"name": "Globex"})
		cg := create(rep2, "customer", map[string]any{"name": "Globex Shanghai", "address": "1 Bund"})
		rep2.Do("POST", "/v1/customers/"+cg.ID+"/contacts", map[string]any{"name": "Li", "phone": "13700000002"}).Expect(http.StatusCreated)
		res = sup.Do("POST", "/v1/customers/merge", map[string]any{"survivorId": ck.ID, "mergedIds": []string{cg.ID},
			"fields": map[string]any{"address": cg.ID}}).Expect(http.StatusOK)
		res.JSON(&v)
		if v.Name != "Globex" || v.Address != "1 Bund" {
			t.Fatalf("customer survivor %+v", v)
		}
		sup.Do("GET", "/v1/customers/"+ck.ID+"/contacts", nil).Expect(http.StatusOK).JSON(&page)
		if len(page.Items) != 1 || page.Items[0]["customerId"] != ck.ID {
			t.Fatalf("survivor's contacts %+v", page.Items)
		}
		sup.Do("GET", "/v1/customers/"+cg.ID, nil).ExpectProblem(http.StatusConflict, "merged_into")
		sup.Do("GET", "/v1/customers/"+cg.ID+"/contacts", nil).ExpectProblem(http.StatusConflict, "merged_into")
		rep2.Do("POST", "/v1/customers/"+cg.ID+"/contacts", map[string]any{"name": "Wu"}).ExpectProblem(http.StatusConflict, "merged_into")
		rep2.Do("PUT", "/v1/customers/"+cg.ID+"/deal-status", map[string]any{"dealStatus": true}).ExpectProblem(http.StatusConflict, "merged_into")
		sup.Do("PATCH", "/v1/customers/"+cg.ID, map[string]any{"name": "x"}, "If-Match", "*").ExpectProblem(http.StatusConflict, "merged_into")
		if _, n := owned(rep2User.ID); n != 0 {
			t.Fatalf("rep2 counts %d customers", n)
		}
	})
}
