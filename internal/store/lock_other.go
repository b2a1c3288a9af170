//go:build !unix

package store

import "os"

// tryFlock is a no-op where flock(2) does not exist: the lock is not
// enforced there.
func tryFlock(*os.File) (bool, error) { return true, nil }
