package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrLocked is returned by LockExclusive when another process holds the
// lock.
var ErrLocked = errors.New("database is in use by another shoal serve")

// LockExclusive makes sure only one server uses a SQLite database. A
// server keeps what it read of pools, settings and teams between
// transactions, and notices other processes' writes only by looking
// (data_version); two servers on one file would also fight over the one
// writer lock and each other's checkpoints. So `shoal serve` takes an
// exclusive, non-blocking flock(2) on PATH.lock beside the database and
// writes its pid there; a second server fails at once with an error
// naming the first one's pid. Short commands (`shoal user create`, `seed`,
// `migrate`) do not take it and still work while a server runs.
//
// The lock lasts until unlock is called or the process ends (the kernel
// drops it with the file descriptor, even after a crash). The lock file
// is never removed: removing it would let a process that opened the old
// file and one that creates a new one both believe they hold the lock.
//
// For a PostgreSQL URL it does nothing: several replicas may share one
// database.
func LockExclusive(databaseURL string) (unlock func() error, err error) {
	if databaseURL == "" {
		databaseURL = DefaultURL
	}
	if !strings.HasPrefix(databaseURL, "sqlite:") {
		return func() error { return nil }, nil
	}
	path, err := sqlitePath(databaseURL)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create database directory: %w", err)
	}
	lockPath := path + ".lock"
	// Not O_TRUNC: the file may hold the pid of the process that has the
	// lock, which the error below reports.
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	held, err := tryFlock(f)
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if !held {
		raw, _ := os.ReadFile(lockPath)
		_ = f.Close()
		holder := "unknown pid"
		if pid, err := strconv.Atoi(strings.TrimSpace(string(raw))); err == nil {
			holder = "pid " + strconv.Itoa(pid)
		}
		return nil, fmt.Errorf("%w: %s holds %s; stop it first", ErrLocked, holder, lockPath)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write lock file: %w", err)
	}
	return func() error {
		// Forget the pid first, so that a stale number never names an
		// unrelated process; closing the file drops the lock.
		_ = f.Truncate(0)
		return f.Close()
	}, nil
}
