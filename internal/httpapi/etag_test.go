package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/httpapi"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// versioned is one mutable resource for the ETag tests: where it lives,
// and a change that gives it a new version (n makes each change differ).
type versioned struct {
	name   string
	path   func(t *testing.T, env *apitest.Env, admin *apitest.Client) string
	change func(env *apitest.Env, n int) map[string]any
}

func versionedResources() []versioned {
	create := func(kind string) func(*testing.T, *apitest.Env, *apitest.Client) string {
		return func(_ *testing.T, env *apitest.Env, admin *apitest.Client) string {
			id := admin.Do("POST", "/v1/"+kind+"s", map[string]any{"name": env.Unique("Acme ")}).Expect(http.StatusCreated).Map()["id"].(string)
			return "/v1/" + kind + "s/" + id
		}
	}
	region := func(_ *apitest.Env, n int) map[string]any { return map[string]any{"region": fmt.Sprintf("R%d", n)} }
	name := func(env *apitest.Env, _ int) map[string]any { return map[string]any{"name": env.Unique("Name ")} }
	return []versioned{
		{"lead", create("lead"), region},
		{"customer", create("customer"), region},
		{"contact", func(_ *testing.T, env *apitest.Env, admin *apitest.Client) string {
			cu := create("customer")(nil, env, admin)
			id := admin.Do("POST", cu+"/contacts", map[string]any{"name": env.Unique("王伟")}).Expect(http.StatusCreated).Map()["id"].(string)
			return "/v1/contacts/" + id
		}, func(_ *apitest.Env, n int) map[string]any { return map[string]any{"title": fmt.Sprintf("T%d", n)} }},
		{"pool", func(_ *testing.T, env *apitest.Env, admin *apitest.Client) string {
			id := admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": env.Unique("Pool ")}).Expect(http.StatusCreated).Map()["id"].(string)
			return "/v1/pools/" + id
		}, name},
		{"user", func(_ *testing.T, env *apitest.Env, _ *apitest.Client) string {
			u, _ := env.User("rep", nil)
			return "/v1/users/" + u.ID.String()
		}, name},
		{"team", func(_ *testing.T, env *apitest.Env, _ *apitest.Client) string {
			return "/v1/teams/" + env.Team("T", nil).ID.String()
		}, name},
		{"tag", func(_ *testing.T, env *apitest.Env, admin *apitest.Client) string {
			return "/v1/tags/" + admin.Do("POST", "/v1/tags", map[string]any{"name": env.Unique("tag ")}).Expect(http.StatusCreated).Map()["id"].(string)
		}, func(_ *apitest.Env, n int) map[string]any { return map[string]any{"color": fmt.Sprintf("#%06d", n)} }},
		{"settings", func(*testing.T, *apitest.Env, *apitest.Client) string { return "/v1/settings" },
			func(_ *apitest.Env, n int) map[string]any { return map[string]any{"maxOwnedLeads": 100 + n} }},
		{"documentTemplate", func(*testing.T, *apitest.Env, *apitest.Client) string { return "/v1/document-templates/quote" },
			func(_ *apitest.Env, n int) map[string]any {
				return map[string]any{"companyPhone": fmt.Sprintf("0571-%d", n)}
			}},
	}
}

// TestETagEveryResource: every mutable resource answers an ETag, refuses a
// change without If-Match (428) or with a stale one (412, nothing changed),
// takes the current one or "*" and answers the new ETag.
func TestETagEveryResource(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		_, admin := env.User("admin", nil)
		for _, r := range versionedResources() {
			t.Run(r.name, func(t *testing.T) {
				path := r.path(t, env, admin)
				get := admin.Do("GET", path, nil).Expect(http.StatusOK)
				first := get.Header.Get("ETag")
				if first == "" {
					t.Fatalf("GET %s: no ETag", path)
				}

				admin.Do("PATCH", path, r.change(env, 1)).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")

				tag := admin.Do("PATCH", path, r.change(env, 2), "If-Match", first).Expect(http.StatusOK).Header.Get("ETag")
				if tag == "" || tag == first {
					t.Fatalf("PATCH %s answered ETag %q, want a new one (was %q)", path, tag, first)
				}
				before := admin.Do("GET", path, nil).Expect(http.StatusOK)
				if got := before.Header.Get("ETag"); got != tag {
					t.Fatalf("GET after PATCH: ETag %q, PATCH answered %q", got, tag)
				}

				// The first tag is stale now: refused, and nothing changes.
				admin.Do("PATCH", path, r.change(env, 3), "If-Match", first).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")
				after := admin.Do("GET", path, nil).Expect(http.StatusOK)
				if after.Header.Get("ETag") != tag || !bytes.Equal(after.Body, before.Body) {
					t.Fatalf("a stale PATCH changed %s:\nbefore %s %s\nafter  %s %s", path, tag, before.Body, after.Header.Get("ETag"), after.Body)
				}

				// A weak form of the current tag and "*" both match.
				weak := admin.Do("PATCH", path, r.change(env, 4), "If-Match", "W/"+tag).Expect(http.StatusOK).Header.Get("ETag")
				star := admin.Do("PATCH", path, r.change(env, 5), "If-Match", "*").Expect(http.StatusOK).Header.Get("ETag")
				if weak == tag || star == weak || star == "" {
					t.Fatalf("ETags did not move: %s → %s → %s", tag, weak, star)
				}
			})
		}

		t.Run("delete contact", func(t *testing.T) {
			path := versionedResources()[2].path(t, env, admin)
			first := admin.ETag(path)
			admin.Do("DELETE", path, nil).ExpectProblem(http.StatusPreconditionRequired, "precondition_required")
			admin.Do("PATCH", path, map[string]any{"title": "CEO"}, "If-Match", first).Expect(http.StatusOK)
			admin.Do("DELETE", path, nil, "If-Match", first).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")
			admin.Do("DELETE", path, nil, "If-Match", admin.ETag(path)).Expect(http.StatusNoContent)
			admin.Do("GET", path, nil).ExpectProblem(http.StatusNotFound, "not_found")
		})

		t.Run("create answers the ETag", func(t *testing.T) {
			res := admin.Do("POST", "/v1/teams", map[string]any{"name": env.Unique("T ")}).Expect(http.StatusCreated)
			if got, want := res.Header.Get("ETag"), admin.ETag(res.Header.Get("Location")); got == "" || got != want {
				t.Fatalf("createTeam ETag %q, GET says %q", got, want)
			}
		})

		t.Run("making a contact primary moves the demoted one's version", func(t *testing.T) {
			cu := admin.Do("POST", "/v1/customers", map[string]any{"name": env.Unique("Acme ")}).Expect(http.StatusCreated).Map()["id"].(string)
			a := admin.Do("POST", "/v1/customers/"+cu+"/contacts", map[string]any{"name": "A", "isPrimary": true}).Expect(http.StatusCreated)
			tagA := a.Header.Get("ETag")
			admin.Do("POST", "/v1/customers/"+cu+"/contacts", map[string]any{"name": "B", "isPrimary": true}).Expect(http.StatusCreated)
			pathA := a.Header.Get("Location")
			admin.Do("PATCH", pathA, map[string]any{"title": "x"}, "If-Match", tagA).ExpectProblem(http.StatusPreconditionFailed, "precondition_failed")
		})
	})
}

// TestETagDeclaredOnEveryVersionedMutation walks openapi.yaml: a path whose
// GET answers an ETag is a versioned resource, and each of its PATCH, PUT
// and DELETE must take If-Match and declare 412 and 428, with the new
// ETag on a 200. A path with a GET and a change must be versioned. So a
// new module cannot forget optimistic concurrency.
func TestETagDeclaredOnEveryVersionedMutation(t *testing.T) {
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	hasETag := func(op *openapi3.Operation, status int) bool {
		r := op.Responses.Status(status)
		return r != nil && r.Value != nil && r.Value.Headers["ETag"] != nil
	}
	checked := 0
	for path, item := range spec.Paths.Map() {
		changes := map[string]*openapi3.Operation{"PATCH": item.Patch, "PUT": item.Put, "DELETE": item.Delete}
		if item.Get == nil || (item.Patch == nil && item.Put == nil && item.Delete == nil) {
			continue
		}
		if !hasETag(item.Get, http.StatusOK) {
			t.Errorf("GET %s answers no ETag, yet %s can be changed: declare the ETag header (and version the resource)", path, path)
			continue
		}
		for _, method := range []string{"PATCH", "PUT", "DELETE"} {
			op := changes[method]
			if op == nil {
				continue
			}
			checked++
			params := append(slices.Clone(item.Parameters), op.Parameters...)
			if !slices.ContainsFunc(params, func(p *openapi3.ParameterRef) bool {
				return p.Value != nil && p.Value.In == "header" && p.Value.Name == "If-Match"
			}) {
				t.Errorf("%s %s (%s) takes no If-Match", method, path, op.OperationID)
			}
			for _, status := range []int{http.StatusPreconditionFailed, http.StatusPreconditionRequired} {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s %s (%s) does not declare %d", method, path, op.OperationID, status)
				}
			}
			if op.Responses.Status(http.StatusOK) != nil && !hasETag(op, http.StatusOK) {
				t.Errorf("%s %s (%s) answers 200 without the new ETag", method, path, op.OperationID)
			}
		}
	}
	// leads, customers, contacts (PATCH, DELETE), pools, users, teams, settings.
	if checked < 8 {
		t.Fatalf("checked %d changes of versioned resources, want at least 8", checked)
	}
}

// TestETagConcurrentChanges: changes racing with the same If-Match do not
// both win. Exactly one is 200, the others 412, and the version moved by
// one, on every mutable resource and both engines.
func TestETagConcurrentChanges(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		env := apitest.New(t, url)
		_, admin := env.User("admin", nil)
		for _, r := range versionedResources() {
			t.Run(r.name, func(t *testing.T) {
				path := r.path(t, env, admin)
				tag := admin.ETag(path)
				const n = 6
				statuses := make([]int, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						statuses[i] = admin.Do("PATCH", path, r.change(env, 10+i), "If-Match", tag).Status
					}()
				}
				wg.Wait()
				won := 0
				for _, st := range statuses {
					switch st {
					case http.StatusOK:
						won++
					case http.StatusPreconditionFailed:
					default:
						t.Fatalf("a racing PATCH answered %d (all: %v)", st, statuses)
					}
				}
				if won != 1 {
					t.Fatalf("%d of %d PATCHes with the same If-Match won, want 1 (%v)", won, n, statuses)
				}
				var v1, v2 int
				if _, err := fmt.Sscanf(tag, `"v%d"`, &v1); err != nil {
					t.Fatal(err)
				}
				if _, err := fmt.Sscanf(admin.ETag(path), `"v%d"`, &v2); err != nil {
					t.Fatal(err)
				}
				if v2 != v1+1 {
					t.Fatalf("version went from %d to %d, want one step", v1, v2)
				}
			})
		}
	})
}
