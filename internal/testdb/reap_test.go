package testdb

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A cluster directory whose owner is gone is removed; one whose owner lives,
// or that has no owner yet, is kept.
func TestReapOrphans(t *testing.T) {
	if !processAlive(os.Getpid()) {
		t.Skip("cannot tell live processes on this platform")
	}
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Skipf("no true(1): %v", err)
	}
	root := t.TempDir()
	mk := func(name string, pid int) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
			t.Fatal(err)
		}
		if pid != 0 {
			if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	self := mk("shoal-pg-self", os.Getpid())
	orphan := mk("shoal-pg-orphan", gone.Process.Pid)
	live := mk("shoal-pg-live", os.Getpid())
	starting := mk("shoal-pg-starting", 0)

	(&pgCluster{}).reapOrphans(self)

	for dir, want := range map[string]bool{self: true, orphan: false, live: true, starting: true} {
		_, err := os.Stat(dir)
		if got := err == nil; got != want {
			t.Errorf("%s kept = %v, want %v", filepath.Base(dir), got, want)
		}
	}
}
