package httpapi_test

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
)

// TestMain runs the tests (with cheap password hashes, and the PostgreSQL
// cluster stopped at the end: apitest.Main) and then checks that the contract declares every
// problem they saw an operation answer (see undeclaredProblems): the codes
// in openapi.yaml are the ones clients can meet.
func TestMain(m *testing.M) {
	code := apitest.Main(m)
	if f := os.Getenv("SHOAL_TEST_PROBLEMS_FILE"); f != "" {
		// For maintainers updating openapi.yaml: every problem seen.
		var b strings.Builder
		for _, p := range apitest.Problems() {
			fmt.Fprintf(&b, "%s %s %d %s\n", p.Method, p.Path, p.Status, p.Code)
		}
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if f := os.Getenv("SHOAL_TEST_EXAMPLES_FILE"); f != "" {
		// For maintainers updating openapi.yaml's examples: one real
		// exchange per operation shape and status.
		var b strings.Builder
		for _, ex := range apitest.Examples() {
			line, _ := json.Marshal(ex)
			b.Write(line)
			b.WriteByte('\n')
		}
		if err := os.WriteFile(f, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	if code == 0 {
		missing, err := undeclaredProblems()
		switch {
		case err != nil:
			fmt.Fprintln(os.Stderr, "problem declarations:", err)
			code = 1
		case len(missing) > 0:
			fmt.Fprintln(os.Stderr, "problem answers openapi.yaml does not declare (operationId status code):")
			for _, l := range missing {
				fmt.Fprintln(os.Stderr, "UNDECLARED", l)
			}
			// Every operation declares the codes it answers (see
			// docs/architecture.md): an answer the contract does not
			// declare fails the package.
			code = 1
		}
	}
	os.Exit(code)
}
