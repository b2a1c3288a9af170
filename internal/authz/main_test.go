package authz_test

import (
	"os"
	"testing"

	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
