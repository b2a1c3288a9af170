package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestTagsContract walks the tag operations over HTTP as their callers
// would: an admin creates, renames and deletes; a rep and a read-scoped API
// key read; a rep cannot change; problems are the declared ones.
func TestTagsContract(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		_, admin := env.User(auth.RoleAdmin, nil)
		_, rep := env.User(auth.RoleRep, nil)

		// Create: 201 with Location and ETag; a duplicate name is 409 tag_exists.
		res := admin.Do("POST", "/v1/tags", map[string]any{"name": " vip ", "color": "#FF0000", "description": "Top"}).Expect(http.StatusCreated)
		var tag struct {
			ID, Name string
			Color    *string
		}
		res.JSON(&tag)
		if tag.Name != "vip" || !strings.HasSuffix(res.Header.Get("Location"), "/v1/tags/"+tag.ID) || res.Header.Get("ETag") != `"v1"` {
			t.Fatalf("created %+v, Location %q, ETag %q", tag, res.Header.Get("Location"), res.Header.Get("ETag"))
		}
		admin.Do("POST", "/v1/tags", map[string]any{"name": "vip"}).ExpectProblem(http.StatusConflict, "tag_exists")
		admin.Do("POST", "/v1/tags", map[string]any{"name": "cold"}).Expect(http.StatusCreated)
		rep.Do("POST", "/v1/tags", map[string]any{"name": "mine"}).ExpectProblem(http.StatusForbidden, "forbidden")

		// Reads: every user and a key with leads:read.
		secret := admin.Do("POST", "/v1/api-keys", map[string]any{"name": "tag reader", "scopes": []string{"leads:read"}}).
			Expect(http.StatusCreated).Map()["secret"].(string)
		key := env.Anonymous()
		key.APIKey = secret
		for _, c := range []*apitest.Client{rep, key} {
			var list struct{ Items []struct{ Name string } }
			c.Do("GET", "/v1/tags?q=v", nil).Expect(http.StatusOK).JSON(&list)
			if len(list.Items) != 1 || list.Items[0].Name != "vip" {
				t.Fatalf("list by prefix: %+v", list)
			}
			c.Do("GET", "/v1/tags/"+tag.ID, nil).Expect(http.StatusOK)
		}
		key.Do("POST", "/v1/tags", map[string]any{"name": "k"}).Expect(http.StatusForbidden)

		// A lead carrying the tag, seen by its ETag before the rename.
		var lead struct {
			ID   string
			Tags []string
		}
		rep.Do("POST", "/v1/leads", map[string]any{"name": "Tagged", "tags": []string{"vip", "x"}}).Expect(http.StatusCreated).JSON(&lead)
		leadTag := rep.ETag("/v1/leads/" + lead.ID)

		// Update: If-Match required and checked; a rename onto another tag
		// is 409; a rename renames the tag on the lead and moves its ETag.
		path := "/v1/tags/" + tag.ID
		rep.Do("PATCH", path, map[string]any{"name": "x"}, "If-Match", `"v1"`).ExpectProblem(http.StatusForbidden, "forbidden")
		admin.Do("PATCH", path, map[string]any{"name": "vvip"}).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")
		admin.Do("PATCH", path, map[string]any{"name": "vvip"}, "If-Match", `"v9"`).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")
		admin.Do("PATCH", path, map[string]any{"name": "cold"}, "If-Match", `"v1"`).ExpectProblem(http.StatusConflict, "tag_exists")
		res = admin.Do("PATCH", path, map[string]any{"name": "vvip", "color": nil}, "If-Match", `"v1"`, "Content-Type", "application/merge-patch+json").
			Expect(http.StatusOK)
		tag.Color = nil // absent when cleared
		res.JSON(&tag)
		if tag.Name != "vvip" || tag.Color != nil || strings.Contains(string(res.Body), "color") || res.Header.Get("ETag") != `"v2"` {
			t.Fatalf("renamed %+v, ETag %q", tag, res.Header.Get("ETag"))
		}
		rep.Do("GET", "/v1/leads/"+lead.ID, nil).Expect(http.StatusOK).JSON(&lead)
		if !slices.Equal(lead.Tags, []string{"vvip", "x"}) {
			t.Fatalf("lead tags after rename: %q", lead.Tags)
		}
		rep.Do("PATCH", "/v1/leads/"+lead.ID, map[string]any{"notes": "n"}, "If-Match", leadTag).
			ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")

		// Delete: If-Match required; the tag leaves the lead.
		admin.Do("DELETE", path, nil).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")
		admin.Do("DELETE", path, nil, "If-Match", `"v2"`).Expect(http.StatusNoContent)
		admin.Do("GET", path, nil).ExpectProblem(http.StatusNotFound, "not_found")
		rep.Do("GET", "/v1/leads/"+lead.ID, nil).Expect(http.StatusOK).JSON(&lead)
		if !slices.Equal(lead.Tags, []string{"x"}) {
			t.Fatalf("lead tags after delete: %q", lead.Tags)
		}
	})
}
