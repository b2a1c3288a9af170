package httpapi_test

import (
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/httpapi"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// scRequired reads an operation's x-required-scopes: the API key scopes
// that let a key call it. A missing extension is the empty list: no key
// may call the operation (so that an operation added without one is
// closed to keys, and the walk below says so).
func scRequired(t *testing.T, op *openapi3.Operation) []string {
	t.Helper()
	raw, ok := op.Extensions["x-required-scopes"]
	if !ok || raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		t.Fatalf("%s: x-required-scopes is %T, want a list of scopes", op.OperationID, raw)
	}
	out := make([]string, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s: x-required-scopes[%d] is %T, want a string", op.OperationID, i, v)
		}
		out[i] = s
	}
	return out
}

// scOperation is one operation of the spec with its required scopes.
type scOperation struct {
	azOperation
	scopes []string
	public bool
}

func scOperations(t *testing.T) []scOperation {
	t.Helper()
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	public := httpapi.PublicOperations(spec)
	byID := map[string]*openapi3.Operation{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			byID[op.OperationID] = op
		}
	}
	var out []scOperation
	for _, op := range azOperations(t, spec) {
		out = append(out, scOperation{azOperation: op, scopes: scRequired(t, byID[op.id]), public: public[op.id]})
	}
	return out
}

// TestRequiredScopesMatchPolicy: every operation's x-required-scopes names
// exactly the scopes policies/policy.csv grants it, the spec's Scope enum
// is auth.Scopes, and the table of docs/scopes.md says the same.
func TestRequiredScopesMatchPolicy(t *testing.T) {
	t.Parallel()
	en, err := authz.NewEnforcer()
	if err != nil {
		t.Fatal(err)
	}
	ops := scOperations(t)
	fromSpec := map[string][]string{} // scope → operations, sorted
	for _, op := range ops {
		for _, s := range op.scopes {
			if !slices.Contains(auth.Scopes, s) {
				t.Errorf("%s: x-required-scopes names %q, which is no API key scope", op.id, s)
			}
		}
		if op.public && len(op.scopes) > 0 {
			t.Errorf("%s is public but lists scopes %v", op.id, op.scopes)
		}
		for _, s := range auth.Scopes {
			inSpec, inPolicy := slices.Contains(op.scopes, s), en.SubjectAllowed("scope:"+s, op.id)
			if inSpec != inPolicy {
				t.Errorf("%s: scope %s is in x-required-scopes: %v, granted by policies/policy.csv: %v", op.id, s, inSpec, inPolicy)
			}
			if inSpec {
				fromSpec[s] = append(fromSpec[s], op.id)
			}
		}
	}

	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var enum []string
	for _, v := range spec.Components.Schemas["Scope"].Value.Enum {
		enum = append(enum, fmt.Sprint(v))
	}
	if !slices.Equal(enum, auth.Scopes) {
		t.Errorf("the spec's Scope enum is %v, auth.Scopes %v", enum, auth.Scopes)
	}

	doc, err := os.ReadFile("../../docs/scopes.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `([a-z]+:[a-z]+)` \\| (.*) \\|$")
	inDoc := map[string]bool{}
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		scope := m[1]
		inDoc[scope] = true
		var listed []string
		for _, op := range regexp.MustCompile("`([A-Za-z]+)`").FindAllStringSubmatch(m[2], -1) {
			listed = append(listed, op[1])
		}
		want := fromSpec[scope]
		slices.Sort(want)
		if !slices.Equal(listed, want) {
			t.Errorf("docs/scopes.md lists for %s %v, the spec %v", scope, listed, want)
		}
	}
	for _, s := range auth.Scopes {
		if !inDoc[s] {
			t.Errorf("docs/scopes.md has no row for %s", s)
		}
	}
}

// TestScopeWalk calls every operation of the spec with an API key holding
// each one scope, through the real server: a scope the operation's
// x-required-scopes lists gets past authorization (no 401 or 403, whatever
// the answer to a made-up id and an empty body is); any other scope gets
// 403, insufficient_scope naming exactly the listed scopes, or forbidden
// when no scope would do. The operations come from the spec at run time.
func TestScopeWalk(t *testing.T) {
	t.Parallel()
	ops := scOperations(t)
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Auth: auth.Config{APIKeyRate: 1e4, APIKeyBurst: 1e4}}})
		_, admin := env.User(auth.RoleAdmin, nil)
		keys := map[string]*apitest.Client{}
		for _, s := range auth.Scopes {
			keys[s] = idKeyClient(env, idCreateKey(t, admin, s).Secret)
		}
		for _, op := range ops {
			if op.public {
				continue
			}
			path := azPathParam.ReplaceAllStringFunc(op.path, func(string) string { return uuid.NewString() })
			var body any
			if op.hasBody {
				body = map[string]any{}
			}
			for _, s := range auth.Scopes {
				res := keys[s].Do(op.method, path, body)
				code := azProblemCode(res)
				where := fmt.Sprintf("%s %s (%s) with only %s", strings.ToUpper(op.method), op.path, op.id, s)
				switch {
				case slices.Contains(op.scopes, s):
					if res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden {
						t.Errorf("%s: %d %s, but x-required-scopes lists it", where, res.Status, res.Body)
					}
				case len(op.scopes) == 0:
					if res.Status != http.StatusForbidden || code != "forbidden" {
						t.Errorf("%s: %d %s, want 403 forbidden (no scope allows it)", where, res.Status, res.Body)
					}
				default:
					var p struct{ Scopes []string }
					res.JSON(&p)
					// Compared as sets: the spec may list them in any order.
					named, want := slices.Sorted(slices.Values(p.Scopes)), slices.Sorted(slices.Values(op.scopes))
					challenge := res.Header.Get("WWW-Authenticate")
					if res.Status != http.StatusForbidden || code != "insufficient_scope" || !slices.Equal(named, want) ||
						!strings.Contains(challenge, `error="insufficient_scope"`) || !slices.Equal(scChallengeScopes(challenge), want) {
						t.Errorf("%s: %d %s (%s), want 403 insufficient_scope naming %v", where, res.Status, res.Body,
							res.Header.Get("WWW-Authenticate"), op.scopes)
					}
				}
			}
		}
	})
}

// scChallengeScopes returns, sorted, the scopes a WWW-Authenticate
// challenge names in its scope="…" parameter.
func scChallengeScopes(challenge string) []string {
	_, after, ok := strings.Cut(challenge, `scope="`)
	if !ok {
		return nil
	}
	list, _, _ := strings.Cut(after, `"`)
	return slices.Sorted(slices.Values(strings.Fields(list)))
}

// scWorld is two lead pools and a customer pool, members of the first in
// team east, and an admin.
type scWorld struct {
	env                       *apitest.Env
	admin                     *apitest.Client
	leadsP, leadsQ, custsC    string
	member, member2, stranger string
}

func newScWorld(t *testing.T, dbURL string) *scWorld {
	t.Helper()
	env := apitest.New(t, dbURL)
	east := env.Team(env.Unique("East "), nil)
	west := env.Team(env.Unique("West "), nil)
	_, admin := env.User(auth.RoleAdmin, nil)
	m1, _ := env.User(auth.RoleRep, &east.ID)
	m2, _ := env.User(auth.RoleRep, &east.ID)
	st, _ := env.User(auth.RoleRep, &west.ID)
	pool := func(kind, name string) string {
		return admin.Do("POST", "/v1/pools", map[string]any{"kind": kind, "name": env.Unique(name),
			"memberTeamIds": []string{east.ID.String()}}).Expect(http.StatusCreated).Map()["id"].(string)
	}
	return &scWorld{env: env, admin: admin, leadsP: pool("lead", "P "), leadsQ: pool("lead", "Q "), custsC: pool("customer", "C "),
		member: m1.ID.String(), member2: m2.ID.String(), stranger: st.ID.String()}
}

// key creates a key with scopes, bound to pool unless it is "".
func (w *scWorld) key(t *testing.T, pool string, scopes ...string) *apitest.Client {
	t.Helper()
	body := map[string]any{"name": w.env.Unique("Partner "), "scopes": scopes}
	if pool != "" {
		body["poolId"] = pool
	}
	return idKeyClient(w.env, w.admin.Do("POST", "/v1/api-keys", body).Expect(http.StatusCreated).Map()["secret"].(string))
}

// record creates a pooled lead or customer in pool as the admin.
func (w *scWorld) record(t *testing.T, kind, pool string) string {
	t.Helper()
	return w.admin.Do("POST", "/v1/"+kind+"s", map[string]any{"name": w.env.Unique(kind + " "), "poolId": pool}).
		Expect(http.StatusCreated).Map()["id"].(string)
}

func scFollowUp(c *apitest.Client, kind, id string) *apitest.Response {
	return c.Do("POST", "/v1/follow-ups", map[string]any{"subjectType": kind, "subjectId": id, "channel": "call",
		"content": "partner called", "occurredAt": time.Now().Add(-time.Hour).UTC().Format(time.RFC3339Nano)})
}

// TestWriteScopesChangeWhatTheKeySees: a leads:write key bound to a pool
// updates that pool's leads and logs follow-ups on them, but not on leads
// of another pool (404) nor on customers (404 without a customer scope,
// 403 insufficient_scope with customers:read only); a customers:write key
// adds a contact to a customer it sees; an unbound write key writes
// anywhere it sees.
func TestWriteScopesChangeWhatTheKeySees(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newScWorld(t, dbURL)
		inP, inQ := w.record(t, "lead", w.leadsP), w.record(t, "lead", w.leadsQ)
		cust := w.record(t, "customer", w.custsC)

		k := w.key(t, w.leadsP, "leads:write")
		tag := w.admin.ETag("/v1/leads/" + inP)
		res := k.Do("PATCH", "/v1/leads/"+inP, map[string]any{"company": "Partner Co"}, "If-Match", tag).Expect(http.StatusOK)
		if got := res.Map()["company"]; got != "Partner Co" {
			t.Errorf("updated lead company = %v", got)
		}
		scFollowUp(k, "lead", inP).Expect(http.StatusCreated)
		k.Do("PATCH", "/v1/leads/"+inQ, map[string]any{"company": "x"}, "If-Match", "*").ExpectProblem(http.StatusNotFound, "not_found")
		scFollowUp(k, "lead", inQ).ExpectProblem(http.StatusNotFound, "not_found")
		scFollowUp(k, "customer", cust).ExpectProblem(http.StatusNotFound, "not_found")

		reader := w.key(t, "", "leads:write", "customers:read")
		res = scFollowUp(reader, "customer", cust)
		res.ExpectProblem(http.StatusForbidden, "insufficient_scope")
		var named struct{ Scopes []string }
		res.JSON(&named)
		if !slices.Equal(named.Scopes, []string{"customers:write"}) {
			t.Errorf("insufficient_scope names %v, want [customers:write]", named.Scopes)
		}
		// The same RFC 6750 challenge as an operation-level refusal.
		if ch := res.Header.Get("WWW-Authenticate"); !slices.Equal(scChallengeScopes(ch), []string{"customers:write"}) {
			t.Errorf("follow-up refusal challenge %q, want scope customers:write", ch)
		}
		// Unbound: every poolable lead.
		scFollowUp(reader, "lead", inQ).Expect(http.StatusCreated)

		ck := w.key(t, w.custsC, "customers:write", "customers:read")
		ck.Do("POST", "/v1/customers/"+cust+"/contacts", map[string]any{"name": "Partner contact"}).Expect(http.StatusCreated)
		list := ck.Do("GET", "/v1/customers/"+cust+"/contacts", nil).Expect(http.StatusOK).Map()["items"].([]any)
		if len(list) != 1 {
			t.Errorf("customer has %d contacts, want 1", len(list))
		}
		scFollowUp(ck, "customer", cust).Expect(http.StatusCreated)
		// The customers key reads follow-ups of customers only.
		lk := w.key(t, "", "customers:read")
		for _, fu := range lk.Do("GET", "/v1/follow-ups", nil).Expect(http.StatusOK).Map()["items"].([]any) {
			if st := fu.(map[string]any)["subjectType"]; st != "customer" {
				t.Errorf("a customers:read key lists a follow-up on a %v", st)
			}
		}
		lk.Do("GET", "/v1/follow-ups?subjectType=lead&subjectId="+inP, nil).ExpectProblem(http.StatusNotFound, "not_found")
	})
}

// TestPoolsAssignWithinTheKeysPool: a pools:assign key bound to pool P
// assigns a pooled lead of P to a member of P and transfers it to another
// member, the history naming the key; it is refused a target outside the
// pool (403 target_out_of_scope) and a lead of another pool (404); an
// unbound key may not hand out at all (403 api_key_not_bound).
func TestPoolsAssignWithinTheKeysPool(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newScWorld(t, dbURL)
		lead, other, inQ := w.record(t, "lead", w.leadsP), w.record(t, "lead", w.leadsP), w.record(t, "lead", w.leadsQ)
		k := w.key(t, w.leadsP, "pools:assign")

		res := k.Do("POST", "/v1/leads/"+lead+"/assign", map[string]any{"ownerId": w.member}).Expect(http.StatusOK)
		if got := res.Map()["ownerId"]; got != w.member {
			t.Errorf("assigned lead owner = %v, want %s", got, w.member)
		}
		k.Do("POST", "/v1/leads/"+lead+"/transfer", map[string]any{"ownerId": w.member2}).Expect(http.StatusOK)
		k.Do("POST", "/v1/leads/"+other+"/assign", map[string]any{"ownerId": w.stranger}).
			ExpectProblem(http.StatusForbidden, "target_out_of_scope")
		k.Do("POST", "/v1/leads/"+lead+"/transfer", map[string]any{"ownerId": w.stranger}).
			ExpectProblem(http.StatusForbidden, "target_out_of_scope")
		k.Do("POST", "/v1/leads/"+inQ+"/assign", map[string]any{"ownerId": w.member}).ExpectProblem(http.StatusNotFound, "not_found")

		unbound := w.key(t, "", "pools:assign")
		unbound.Do("POST", "/v1/leads/"+other+"/assign", map[string]any{"ownerId": w.member}).
			ExpectProblem(http.StatusForbidden, "api_key_not_bound")
		unbound.Do("POST", "/v1/leads/"+lead+"/transfer", map[string]any{"ownerId": w.member}).
			ExpectProblem(http.StatusForbidden, "api_key_not_bound")

		var hist struct {
			Items []struct {
				Operation string `json:"operation"`
				ActorType string `json:"actorType"`
			} `json:"items"`
		}
		w.admin.Do("GET", "/v1/leads/"+lead+"/history", nil).Expect(http.StatusOK).JSON(&hist)
		got := map[string]string{}
		for _, h := range hist.Items {
			got[h.Operation] = h.ActorType
		}
		if got["assign"] != "apiKey" || got["transfer"] != "apiKey" {
			t.Errorf("history actors %v, want the key for assign and transfer", got)
		}
	})
}
