package httpapi_test

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/httpapi"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// azAnyone marks a public operation: it needs no credentials at all.
const azAnyone = "anyone"

// azAllowed is Shoal's reviewed authorization matrix: for every operation of
// openapi.yaml, the roles and API key scopes ("scope:<scope>") that may call
// it, or anyone for the public ones. It says again what policies/policy.csv
// says, on purpose: changing who may do what must change both files, and
// the tests below fail until they agree. One line per operationId, sorted.
var azAllowed = map[string][]string{
	"advanceTestClock":         {"admin"},
	"approveClaimRequest":      {"supervisor", "admin"},
	"assignCustomer":           {"supervisor", "admin", "scope:pools:assign"},
	"assignLead":               {"supervisor", "admin", "scope:pools:assign"},
	"batchClaimCustomers":      {"rep", "supervisor"},
	"batchClaimLeads":          {"rep", "supervisor"},
	"changeMyPassword":         {"rep", "supervisor", "auditor", "admin"},
	"checkDuplicates":          {"rep", "supervisor", "auditor", "admin", "scope:leads:read", "scope:leads:write", "scope:customers:read"},
	"claimCustomer":            {"rep", "supervisor"},
	"claimLead":                {"rep", "supervisor"},
	"convertLead":              {"rep", "supervisor", "admin"},
	"createApiKey":             {"admin"},
	"createContact":            {"rep", "supervisor", "admin", "scope:customers:write"},
	"createCustomer":           {"rep", "supervisor", "admin", "scope:customers:write"},
	"createFollowUp":           {"rep", "supervisor", "admin", "scope:leads:write", "scope:customers:write"},
	"createImport":             {"rep", "supervisor", "admin", "scope:leads:write", "scope:customers:write"},
	"createWebhook":            {"admin", "scope:webhooks:manage"},
	"createProduct":            {"supervisor", "admin"},
	"listPipelines":            {"rep", "supervisor", "auditor", "admin", "scope:opportunities:read"},
	"getPipeline":              {"rep", "supervisor", "auditor", "admin", "scope:opportunities:read"},
	"createPipeline":           {"admin"},
	"updatePipeline":           {"admin"},
	"listOpportunities":        {"rep", "supervisor", "auditor", "admin", "scope:opportunities:read"},
	"getOpportunity":           {"rep", "supervisor", "auditor", "admin", "scope:opportunities:read"},
	"listOpportunityHistory":   {"rep", "supervisor", "auditor", "admin", "scope:opportunities:read"},
	"createOpportunity":        {"rep", "supervisor", "admin"},
	"updateOpportunity":        {"rep", "supervisor", "admin"},
	"changeOpportunityStage":   {"rep", "supervisor", "admin"},
	"updateProduct":            {"supervisor", "admin"},
	"listQuotes":               {"rep", "supervisor", "auditor", "admin", "scope:quotes:read"},
	"getQuote":                 {"rep", "supervisor", "auditor", "admin", "scope:quotes:read"},
	"renderQuote":              {"rep", "supervisor", "auditor", "admin", "scope:quotes:read"},
	"createQuote":              {"rep", "supervisor", "admin"},
	"updateQuote":              {"rep", "supervisor", "admin"},
	"submitQuote":              {"rep", "supervisor", "admin"},
	"sendQuote":                {"rep", "supervisor", "admin"},
	"acceptQuote":              {"rep", "supervisor", "admin"},
	"declineQuote":             {"rep", "supervisor", "admin"},
	"reviseQuote":              {"rep", "supervisor", "admin"},
	"listApprovals":            {"rep", "supervisor", "auditor", "admin"},
	"getApproval":              {"rep", "supervisor", "auditor", "admin"},
	"decideApproval":           {"supervisor", "admin"},
	"listApprovalFlows":        {"rep", "supervisor", "auditor", "admin"},
	"getApprovalFlow":          {"rep", "supervisor", "auditor", "admin"},
	"updateApprovalFlow":       {"admin"},
	"getProduct":               {"rep", "supervisor", "auditor", "admin", "scope:products:read"},
	"listProducts":             {"rep", "supervisor", "auditor", "admin", "scope:products:read"},
	"listDocumentTemplates":    {"supervisor", "auditor", "admin"},
	"getDocumentTemplate":      {"supervisor", "auditor", "admin"},
	"updateDocumentTemplate":   {"admin"},
	"listWebhooks":             {"admin", "scope:webhooks:manage"},
	"getWebhook":               {"admin", "scope:webhooks:manage"},
	"updateWebhook":            {"admin", "scope:webhooks:manage"},
	"deleteWebhook":            {"admin", "scope:webhooks:manage"},
	"listWebhookDeliveries":    {"admin", "scope:webhooks:manage"},
	"redeliverWebhook":         {"admin", "scope:webhooks:manage"},
	"pingWebhook":              {"admin", "scope:webhooks:manage"},
	"createLead":               {"rep", "supervisor", "admin", "scope:leads:write"},
	"createPool":               {"admin"},
	"createTag":                {"admin"},
	"createTeam":               {"admin"},
	"createUser":               {"admin"},
	"deleteContact":            {"rep", "supervisor", "admin", "scope:customers:write"},
	"deleteTag":                {"admin"},
	"erasePersonalData":        {"admin"},
	"exportPersonalData":       {"auditor", "admin"},
	"freezeCustomer":           {"rep", "supervisor", "admin"},
	"freezeLead":               {"rep", "supervisor", "admin"},
	"getContact":               {"rep", "supervisor", "auditor", "admin", "scope:customers:read"},
	"getCurrentUser":           {"rep", "supervisor", "auditor", "admin"},
	"getCustomer":              {"rep", "supervisor", "auditor", "admin", "scope:customers:read"},
	"getHealth":                {azAnyone},
	"getImport":                {"rep", "supervisor", "auditor", "admin", "scope:leads:write", "scope:customers:write"},
	"getJwks":                  {azAnyone},
	"getLead":                  {"rep", "supervisor", "auditor", "admin", "scope:leads:read"},
	"getPool":                  {"rep", "supervisor", "auditor", "admin"},
	"getReadiness":             {azAnyone},
	"getSettings":              {"rep", "supervisor", "auditor", "admin"},
	"getHandover":              {"supervisor", "auditor", "admin"},
	"handoverUser":             {"supervisor", "admin"},
	"getTag":                   {"rep", "supervisor", "auditor", "admin", "scope:leads:read", "scope:customers:read"},
	"getTeam":                  {"rep", "supervisor", "auditor", "admin"},
	"getUser":                  {"rep", "supervisor", "auditor", "admin"},
	"invalidateCustomer":       {"rep", "supervisor", "admin"},
	"invalidateLead":           {"rep", "supervisor", "admin"},
	"listApiKeys":              {"auditor", "admin"},
	"listAuditEvents":          {"auditor", "admin"},
	"listClaimRequests":        {"rep", "supervisor", "auditor", "admin"},
	"listEvents":               {"rep", "supervisor", "auditor", "admin", "scope:events:read"},
	"listContacts":             {"rep", "supervisor", "auditor", "admin", "scope:customers:read"},
	"listCustomerHistory":      {"rep", "supervisor", "auditor", "admin", "scope:customers:read"},
	"listCustomers":            {"rep", "supervisor", "auditor", "admin", "scope:customers:read"},
	"listFollowUps":            {"rep", "supervisor", "auditor", "admin", "scope:leads:read", "scope:customers:read"},
	"listImports":              {"rep", "supervisor", "auditor", "admin", "scope:leads:write", "scope:customers:write"},
	"listLeadHistory":          {"rep", "supervisor", "auditor", "admin", "scope:leads:read"},
	"listLeads":                {"rep", "supervisor", "auditor", "admin", "scope:leads:read"},
	"listPools":                {"rep", "supervisor", "auditor", "admin"},
	"listReclaimWarnings":      {"rep", "supervisor", "auditor", "admin"},
	"listTags":                 {"rep", "supervisor", "auditor", "admin", "scope:leads:read", "scope:customers:read"},
	"listTeams":                {"rep", "supervisor", "auditor", "admin"},
	"listUsers":                {"rep", "supervisor", "auditor", "admin"},
	"login":                    {azAnyone},
	"mergeCustomers":           {"supervisor", "admin"},
	"mergeLeads":               {"supervisor", "admin"},
	"logout":                   {"rep", "supervisor", "auditor", "admin"},
	"previewPoolRules":         {"supervisor", "admin"},
	"refreshToken":             {azAnyone},
	"rejectClaimRequest":       {"supervisor", "admin"},
	"restoreCustomer":          {"supervisor", "admin"},
	"restoreLead":              {"supervisor", "admin"},
	"returnCustomer":           {"rep", "supervisor", "admin"},
	"returnLead":               {"rep", "supervisor", "admin"},
	"revokeApiKey":             {"admin"},
	"runSweep":                 {"admin"},
	"transferCustomer":         {"rep", "supervisor", "admin", "scope:pools:assign"},
	"transferLead":             {"rep", "supervisor", "admin", "scope:pools:assign"},
	"unfreezeCustomer":         {"rep", "supervisor", "admin"},
	"unfreezeLead":             {"rep", "supervisor", "admin"},
	"updateContact":            {"rep", "supervisor", "admin", "scope:customers:write"},
	"updateCustomer":           {"rep", "supervisor", "admin", "scope:customers:write"},
	"updateCustomerDealStatus": {"rep", "supervisor", "admin", "scope:customers:write"},
	"updateLead":               {"rep", "supervisor", "admin", "scope:leads:write"},
	"updatePool":               {"supervisor", "admin"},
	"updateSettings":           {"admin"},
	"updateTag":                {"admin"},
	"updateTeam":               {"admin"},
	"updateUser":               {"admin"},
}

// azPublic are the only operations that may be called without
// credentials.
var azPublic = []string{"getHealth", "getJwks", "getReadiness", "login", "refreshToken"}

var azRoles = []string{auth.RoleRep, auth.RoleSupervisor, auth.RoleAuditor, auth.RoleAdmin}

// azSubjects are the roles and one subject per API key scope.
func azSubjects() []string {
	subs := slices.Clone(azRoles)
	for _, s := range auth.Scopes {
		subs = append(subs, "scope:"+s)
	}
	return subs
}

// azOperation is one operation of openapi.yaml.
type azOperation struct {
	id, method, path string
	hasBody          bool
}

func azOperations(t *testing.T, spec *openapi3.T) []azOperation {
	t.Helper()
	var ops []azOperation
	seen := map[string]bool{}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
				continue
			}
			if seen[op.OperationID] {
				t.Errorf("operationId %s is used twice", op.OperationID)
			}
			seen[op.OperationID] = true
			ops = append(ops, azOperation{id: op.OperationID, method: method, path: path, hasBody: op.RequestBody != nil})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].id < ops[j].id })
	return ops
}

func azAllows(op, subject string) bool {
	subs := azAllowed[op]
	return slices.Contains(subs, azAnyone) || slices.Contains(subs, subject)
}

// azSomeScopeAllows reports whether some API key scope may call op.
func azSomeScopeAllows(op string) bool {
	return slices.ContainsFunc(azAllowed[op], func(sub string) bool { return strings.HasPrefix(sub, "scope:") })
}

// TestAuthorizationTable checks the table against the spec and the casbin
// policy, without a server.
func TestAuthorizationTable(t *testing.T) {
	t.Parallel()
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops := azOperations(t, spec)
	inSpec := map[string]bool{}
	for _, op := range ops {
		inSpec[op.id] = true
		if _, ok := azAllowed[op.id]; !ok {
			t.Errorf("operation %s (%s %s) is not in the azAllowed table of authz_matrix_test.go: add it to the table and to policies/policy.csv",
				op.id, strings.ToUpper(op.method), op.path)
		}
	}
	known := map[string]bool{azAnyone: true}
	for _, s := range azSubjects() {
		known[s] = true
	}
	for id, subs := range azAllowed {
		if !inSpec[id] {
			t.Errorf("the azAllowed table names %s, which is not an operation of openapi.yaml: remove it (and its policy lines)", id)
		}
		if len(subs) == 0 {
			t.Errorf("azAllowed[%s] is empty: an operation nobody may call should not exist", id)
		}
		for i, s := range subs {
			if !known[s] {
				t.Errorf("azAllowed[%s] names %q, which is no role, API key scope or anyone", id, s)
			}
			if slices.Contains(subs[:i], s) {
				t.Errorf("azAllowed[%s] names %q twice", id, s)
			}
		}
		if slices.Contains(subs, azAnyone) && len(subs) > 1 {
			t.Errorf("azAllowed[%s] is public and names subjects too", id)
		}
	}

	// The public set is exactly the reviewed one, in the spec and the table.
	var specPublic, tablePublic []string
	for id := range httpapi.PublicOperations(spec) {
		specPublic = append(specPublic, id)
	}
	for id, subs := range azAllowed {
		if slices.Contains(subs, azAnyone) {
			tablePublic = append(tablePublic, id)
		}
	}
	sort.Strings(specPublic)
	sort.Strings(tablePublic)
	if !slices.Equal(specPublic, azPublic) {
		t.Errorf("openapi.yaml makes %v public (security: []), want exactly %v", specPublic, azPublic)
	}
	if !slices.Equal(tablePublic, azPublic) {
		t.Errorf("the azAllowed table makes %v public, want exactly %v", tablePublic, azPublic)
	}

	// The casbin policy grants exactly what the table says.
	en, err := authz.NewEnforcer()
	if err != nil {
		t.Fatal(err)
	}
	granted := en.Operations()
	for id := range granted {
		if !inSpec[id] {
			t.Errorf("policies/policy.csv grants %s, which is not an operation of openapi.yaml", id)
		}
	}
	for _, op := range ops {
		public := slices.Contains(azPublic, op.id)
		switch {
		case public && granted[op.id]:
			t.Errorf("policies/policy.csv has lines for the public operation %s; they never apply: remove them", op.id)
		case !public && !granted[op.id]:
			t.Errorf("operation %s has no line in policies/policy.csv, so nobody may call it: add one", op.id)
		}
		if public {
			continue
		}
		for _, sub := range azSubjects() {
			if got, want := en.SubjectAllowed(sub, op.id), azAllows(op.id, sub); got != want {
				t.Errorf("policies/policy.csv lets %s call %s: %v; the azAllowed table says %v", sub, op.id, got, want)
			}
		}
	}
}

var azPathParam = regexp.MustCompile(`\{[^}]+\}`)

// TestAuthorizationMatrix calls every operation as every role, every API
// key scope and nobody, through the real server: denied calls are 403
// forbidden (before the request is even validated), allowed ones are
// anything but 403, and guarded operations refuse anonymous callers with
// 401.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	ops := azOperations(t, spec)
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		// API keys get a bucket big enough for the whole matrix.
		env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Auth: auth.Config{APIKeyRate: 1e4, APIKeyBurst: 1e4}}})
		team := env.Team("Matrix", nil)
		clients := map[string]*apitest.Client{}
		for _, role := range azRoles {
			_, clients[role] = env.User(role, &team.ID)
		}
		for _, scope := range auth.Scopes {
			clients["scope:"+scope] = idKeyClient(env, idCreateKey(t, clients[auth.RoleAdmin], scope).Secret)
		}
		clients[""] = env.Anonymous()

		for _, op := range ops {
			if _, ok := azAllowed[op.id]; !ok {
				t.Errorf("operation %s is not in the azAllowed table", op.id)
				continue
			}
			path := azPathParam.ReplaceAllStringFunc(op.path, func(string) string { return uuid.NewString() })
			var body any
			if op.hasBody {
				body = map[string]any{}
			}
			for _, sub := range append(azSubjects(), "") {
				azCheckCall(t, clients[sub], sub, op, path, body)
			}
		}
	})
}

// azCheckCall makes one call of the matrix as sub ("" for nobody) and checks
// the answer against the table.
func azCheckCall(t *testing.T, c *apitest.Client, sub string, op azOperation, path string, body any) {
	t.Helper()
	res := c.Do(op.method, path, body)
	who := sub
	if who == "" {
		who = "anonymous"
	}
	code := azProblemCode(res)
	switch {
	case sub == "" && azAllows(op.id, azAnyone):
		if res.Status == http.StatusUnauthorized || res.Status == http.StatusForbidden {
			t.Errorf("%s %s (%s) as anonymous: %d %s, want it public", op.method, path, op.id, res.Status, res.Body)
		}
	case sub == "":
		if res.Status != http.StatusUnauthorized || code != "unauthorized" || res.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s (%s) as anonymous: %d %s, want 401 unauthorized with a challenge", op.method, path, op.id, res.Status, res.Body)
		}
	case azAllows(op.id, sub):
		if res.Status == http.StatusForbidden || res.Status == http.StatusUnauthorized {
			t.Errorf("%s %s (%s) as %s: %d %s, but the table allows it", op.method, path, op.id, who, res.Status, res.Body)
		}
	case strings.HasPrefix(sub, "scope:") && azSomeScopeAllows(op.id):
		// The key lacks a scope that exists for the operation: say which.
		if res.Status != http.StatusForbidden || code != "insufficient_scope" ||
			!strings.Contains(res.Header.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
			t.Errorf("%s %s (%s) as %s: %d %s (%s), want 403 insufficient_scope with a challenge", op.method, path, op.id, who, res.Status, res.Body, res.Header.Get("WWW-Authenticate"))
		}
	default:
		if res.Status != http.StatusForbidden || code != "forbidden" {
			t.Errorf("%s %s (%s) as %s: %d %s, want 403 forbidden", op.method, path, op.id, who, res.Status, res.Body)
		}
	}
}

// azProblemCode returns the code of a problem+json response, or "".
func azProblemCode(res *apitest.Response) string {
	if res.Header.Get("Content-Type") != "application/problem+json" {
		return ""
	}
	var p struct{ Code string }
	if json.Unmarshal(res.Body, &p) != nil {
		return ""
	}
	return p.Code
}
