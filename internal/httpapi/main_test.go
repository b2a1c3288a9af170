package httpapi_test

import (
	"os"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
)

// apitest.Main: cheap password hashes for the whole binary, and the
// PostgreSQL cluster stopped at the end.
func TestMain(m *testing.M) { os.Exit(apitest.Main(m)) }
