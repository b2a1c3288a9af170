package httpapi_test

import (
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/shoalcrm/shoal/internal/httpapi"
)

// TestEveryOperationHasExamples walks the contract: every JSON request body
// and every JSON success answer carries an example, so the reference at
// /docs shows real payloads and not just "string". (Problem answers carry
// theirs per code; see undeclaredProblems.) kin-openapi validates each
// example against its schema when the spec loads, so an example cannot
// drift from the schema either.
func TestEveryOperationHasExamples(t *testing.T) {
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	has := func(mt *openapi3.MediaType) bool { return mt.Example != nil || len(mt.Examples) > 0 }
	var missing []string
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					if strings.Contains(ct, "json") && !has(mt) {
						missing = append(missing, op.OperationID+" request "+ct)
					}
				}
			}
			for status, r := range op.Responses.Map() {
				if !strings.HasPrefix(status, "2") || r.Value == nil {
					continue
				}
				if mt := r.Value.Content.Get("application/json"); mt != nil && !has(mt) {
					missing = append(missing, op.OperationID+" "+status+" ("+method+" "+path+")")
				}
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no example: %s", m)
	}
}
