package auth_test

import (
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/auth"
)

// The test switch changes the cost of new hashes only, the hashes it makes
// verify, hashes made before it keep verifying, and restoring it brings
// back the production parameters.
func TestUseTestHashParams(t *testing.T) {
	const password = "correct horse battery staple"
	prod, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(prod, phcPrefix) {
		t.Fatalf("hash %q without the switch, want the production prefix %q", prod, phcPrefix)
	}

	restore := auth.UseTestHashParams()
	cheap, err := auth.HashPassword(password)
	if err != nil {
		restore()
		t.Fatal(err)
	}
	prodStill, errProd := auth.VerifyPassword(password, prod)
	cheapOK, errCheap := auth.VerifyPassword(password, cheap)
	cheapWrong, _ := auth.VerifyPassword("wrong password", cheap)
	restore()

	if !strings.HasPrefix(cheap, "$argon2id$v=19$m=8,t=1,p=1$") {
		t.Errorf("hash %q with the switch, want m=8,t=1,p=1", cheap)
	}
	if !prodStill || errProd != nil {
		t.Errorf("production hash no longer verifies under the switch: %v %v", prodStill, errProd)
	}
	if !cheapOK || errCheap != nil || cheapWrong {
		t.Errorf("cheap hash: right password %v (%v), wrong password %v; want true, false", cheapOK, errCheap, cheapWrong)
	}
	restoreTest := auth.UseTestHashParams()
	undo := auth.UseProductionHashParams()
	inner, err := auth.HashPassword(password)
	undo()
	restoreTest()
	if err != nil || !strings.HasPrefix(inner, phcPrefix) {
		t.Errorf("hash %q (%v) under UseProductionHashParams, want the production prefix %q", inner, err, phcPrefix)
	}
	after, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(after, phcPrefix) {
		t.Errorf("hash %q after restore, want the production prefix %q", after, phcPrefix)
	}
}
