package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/httpapi"
)

// declaredCodes is the problem codes the contract declares for op's answer
// with status (its own response, else default): the `code` of every
// example of the response's application/problem+json content.
func declaredCodes(op *openapi3.Operation, status int) map[string]bool {
	ref := op.Responses.Status(status)
	if ref == nil {
		ref = op.Responses.Default()
	}
	codes := map[string]bool{}
	if ref == nil || ref.Value == nil {
		return codes
	}
	mt := ref.Value.Content.Get("application/problem+json")
	if mt == nil {
		return codes
	}
	for _, ex := range mt.Examples {
		if ex == nil || ex.Value == nil {
			continue
		}
		if v, ok := ex.Value.Value.(map[string]any); ok {
			if c, ok := v["code"].(string); ok {
				codes[c] = true
			}
		}
	}
	return codes
}

// undeclaredProblems checks every problem answer the tests of this process
// saw against openapi.yaml: each (operation, status, code) must be declared
// by an example of that operation's response. Answers outside the spec's
// operations (unknown routes, wrong methods) are the router's, not an
// operation's, and are skipped. It returns one line per undeclared triple.
func undeclaredProblems() ([]string, error) {
	spec, err := httpapi.LoadSpec()
	if err != nil {
		return nil, err
	}
	spec.Servers = nil
	router, err := legacy.NewRouter(spec)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, p := range apitest.Problems() {
		// The path as the server saw it, decoded: junk such as a NUL must
		// be escaped again to make a request of it.
		u := url.URL{Scheme: "http", Host: "shoal.test", Path: p.Path}
		req, err := http.NewRequest(p.Method, u.String(), nil)
		if err != nil {
			return nil, err
		}
		route, _, err := router.FindRoute(req)
		if err != nil {
			continue
		}
		if declaredCodes(route.Operation, p.Status)[p.Code] {
			continue
		}
		line := fmt.Sprintf("%s %s %s", route.Operation.OperationID, strconv.Itoa(p.Status), p.Code)
		if !seen[line] {
			seen[line] = true
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out, nil
}
