package httpapi

import "testing"

// Every write operation of the contract has an audit target type, so that
// each of its audit rows says what kind of thing it acted on.
func TestEveryWriteHasAnAuditTargetType(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range spec.Paths.Map() {
		for method, op := range item.Operations() {
			if method == "GET" || method == "HEAD" {
				continue
			}
			if targetTypeOf(op.OperationID, echoPath(path)) == "" {
				t.Errorf("%s %s (%s) has no audit target type", method, path, op.OperationID)
			}
		}
	}
}
