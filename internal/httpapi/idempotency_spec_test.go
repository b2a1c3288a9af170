package httpapi_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/shoalcrm/shoal/internal/httpapi"
)

// TestEveryPostDeclaresIdempotency: every POST takes the IdempotencyKey
// header parameter, declares Idempotent-Replayed on each of its 2xx answers,
// and declares 409 idempotency_key_in_use and 422 idempotency_key_mismatch
// by examples (docs/idempotency.md).
func TestEveryPostDeclaresIdempotency(t *testing.T) {
	t.Parallel()
	spec, err := httpapi.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	posts := 0
	for path, item := range spec.Paths.Map() {
		op := item.Post
		if op == nil {
			continue
		}
		posts++
		hasKey := false
		for _, p := range op.Parameters {
			if p.Ref == "#/components/parameters/IdempotencyKey" && p.Value != nil && p.Value.Name == "Idempotency-Key" {
				hasKey = true
			}
		}
		if !hasKey {
			t.Errorf("POST %s (%s) lacks the IdempotencyKey parameter", path, op.OperationID)
		}
		for code, r := range op.Responses.Map() {
			n, err := strconv.Atoi(code)
			if err != nil || n < 200 || n > 299 {
				continue
			}
			if r.Value == nil || r.Value.Headers["Idempotent-Replayed"] == nil {
				t.Errorf("POST %s (%s) %s does not declare Idempotent-Replayed", path, op.OperationID, code)
			}
		}
		if !declaredCodes(op, http.StatusConflict)["idempotency_key_in_use"] {
			t.Errorf("POST %s (%s) does not declare 409 idempotency_key_in_use", path, op.OperationID)
		}
		if !declaredCodes(op, http.StatusUnprocessableEntity)["idempotency_key_mismatch"] {
			t.Errorf("POST %s (%s) does not declare 422 idempotency_key_mismatch", path, op.OperationID)
		}
	}
	if posts == 0 {
		t.Fatal("no POST operations in the spec")
	}
}
