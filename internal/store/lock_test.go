package store

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// The serve lock is exclusive per SQLite file: a second taker fails at once
// with ErrLocked and the holder's pid, the holder's pid is in the lock
// file, and an unlocked file can be taken again. (Two opens of the lock
// file conflict within one process too; cmd/shoal tests two processes.)
func TestLockExclusive(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new dir")
	url := "sqlite:" + filepath.Join(dir, "shoal.db")
	unlock, err := LockExclusive(url)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "shoal.db.lock"))
	if err != nil || strings.TrimSpace(string(raw)) != strconv.Itoa(os.Getpid()) {
		t.Fatalf("lock file holds %q, %v; want our pid %d", raw, err, os.Getpid())
	}
	_, err = LockExclusive(url)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second lock: %v; want ErrLocked naming pid %d", err, os.Getpid())
	}
	// Another database in the same directory is another lock.
	other, err := LockExclusive("sqlite:" + filepath.Join(dir, "other.db"))
	if err != nil {
		t.Fatalf("lock of another file: %v", err)
	}
	if err := other(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := LockExclusive(url)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if err := again(); err != nil {
		t.Fatal(err)
	}
}

// PostgreSQL is shared by replicas: no lock is taken.
func TestLockExclusivePostgres(t *testing.T) {
	url := testdb.Postgres(t)
	for range 2 {
		unlock, err := LockExclusive(url)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = unlock() }()
	}
}
