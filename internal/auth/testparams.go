package auth

import "sync/atomic"

// hashCost is the argon2id cost of new hashes. Production never changes
// it; only UseTestHashParams does.
type hashCost struct {
	memory uint32 // KiB
	time   uint32
}

var (
	productionCost = hashCost{memory: argonMemory, time: argonTime}
	// testCost is the cheapest cost VerifyPassword's bounds accept (m at
	// least 8 KiB per thread), so that tests pay next to nothing for a hash.
	testCost = hashCost{memory: 8 * argonThreads, time: 1}

	currentCost atomic.Pointer[hashCost]
)

// newHashCost is the cost HashPassword uses for a new hash.
func newHashCost() hashCost {
	if c := currentCost.Load(); c != nil {
		return *c
	}
	return productionCost
}

// UseTestHashParams makes every later HashPassword in this process use
// trivial argon2id parameters instead of the production ones (19 MiB, two
// passes). It exists for test binaries only: a test suite creates and logs
// in thousands of users, and under the race detector each production hash
// costs a large fraction of a second. Verification is unaffected: a stored
// PHC string carries its own parameters, so cheap hashes verify as cheaply
// and production hashes made before still verify at full cost.
//
// NEVER call it from production code. It is called from test mains
// (apitest.Main); internal/auth's own tests do not call it and keep proving
// the production parameters (TestHashPasswordFormat). The returned func
// restores the production parameters, for a test that needs real cost.
func UseTestHashParams() (restore func()) {
	prev := currentCost.Swap(&testCost)
	return func() { currentCost.Store(prev) }
}

// UseProductionHashParams puts the production parameters back for a test
// in a binary that called UseTestHashParams and checks what production
// stores; the returned func restores what was in force before. Such a test
// must not run in parallel with others (it changes a process-wide
// setting, and they would hash at full cost meanwhile).
func UseProductionHashParams() (restore func()) {
	prev := currentCost.Swap(&productionCost)
	return func() { currentCost.Store(prev) }
}
