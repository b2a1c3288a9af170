package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestMergePatchEveryResource: every PATCH is one JSON merge patch rule.
// null clears an optional field, null on a required field is 400
// validation_failed naming it, application/merge-patch+json is taken
// (as is application/json) and any other type is 415.
func TestMergePatchEveryResource(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		_, admin := env.User("admin", nil)
		parent := env.Team("Parent", nil).ID.String()
		paths := map[string]func(*testing.T, *apitest.Env, *apitest.Client) string{}
		for _, r := range versionedResources() {
			paths[r.name] = r.path
		}
		for _, tc := range []struct {
			resource string
			// set gives optional a value; optional is then cleared by null.
			set      map[string]any
			optional string
			// required refuses null.
			required string
		}{
			{"lead", map[string]any{"company": "Acme", "region": "East", "tags": []string{"vip"}}, "region", "name"},
			{"lead", map[string]any{"tags": []string{"vip"}}, "tags", "name"},
			{"customer", map[string]any{"website": "acme.example", "grade": "A"}, "website", "name"},
			{"customer", map[string]any{"grade": "A"}, "grade", "name"},
			{"contact", map[string]any{"title": "CTO", "email": "a@example.com"}, "title", "name"},
			{"contact", map[string]any{"email": "b@example.com"}, "email", "isPrimary"},
			{"pool", map[string]any{"idleDays": 30}, "idleDays", "name"},
			{"pool", map[string]any{"byGrade": map[string]any{"A": map[string]any{"idleDays": 60}}}, "byGrade", "autoAssign"},
			{"user", map[string]any{"teamId": parent}, "teamId", "name"},
			{"user", map[string]any{"maxOwnedLeads": 5}, "maxOwnedLeads", "email"},
			{"team", map[string]any{"parentId": parent}, "parentId", "name"},
			{"settings", map[string]any{"maxOwnedLeads": 50}, "maxOwnedLeads", "capCountsDealt"},
			{"documentTemplate", map[string]any{"companyName": "杭州鲸鱼软件有限公司"}, "companyName", "name"},
		} {
			t.Run(tc.resource+" "+tc.optional, func(t *testing.T) {
				path := paths[tc.resource](t, env, admin)
				admin.Do("PATCH", path, tc.set, "If-Match", admin.ETag(path), "Content-Type", "application/merge-patch+json").Expect(http.StatusOK)
				if cleared(admin.Do("GET", path, nil).Expect(http.StatusOK).Map()[tc.optional]) {
					t.Fatalf("%s: %s not set by %v", path, tc.optional, tc.set)
				}
				before := admin.Do("GET", path, nil).Expect(http.StatusOK)

				p := admin.Do("PATCH", path, map[string]any{tc.required: nil}, "If-Match", admin.ETag(path),
					"Content-Type", "application/merge-patch+json").ExpectProblem(http.StatusBadRequest, "validation_failed")
				if !slices.ContainsFunc(p.Errors, func(e struct{ Field, Code, Message string }) bool { return e.Field == "body/"+tc.required }) {
					t.Fatalf("null %s: errors %+v do not name body/%s", tc.required, p.Errors, tc.required)
				}
				if after := admin.Do("GET", path, nil).Expect(http.StatusOK); string(after.Body) != string(before.Body) {
					t.Fatalf("a refused patch changed %s:\n%s\n%s", path, before.Body, after.Body)
				}

				// application/json is read as the same merge patch.
				admin.Do("PATCH", path, map[string]any{tc.optional: nil}, "If-Match", admin.ETag(path)).Expect(http.StatusOK)
				got := admin.Do("GET", path, nil).Expect(http.StatusOK).Map()
				if !cleared(got[tc.optional]) {
					t.Fatalf("null did not clear %s of %s: %v", tc.optional, path, got[tc.optional])
				}

				admin.Do("PATCH", path, `{"x":1}`, "If-Match", admin.ETag(path), "Content-Type", "text/plain").
					ExpectProblem(http.StatusUnsupportedMediaType, "unsupported_media")
			})
		}
	})
}

// cleared reports whether a representation's field reads as not set:
// absent, null, empty text, no tags, no per-grade rules.
func cleared(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}
