package auth

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// vmHWM is the process's peak resident set size in bytes (Linux).
func vmHWM(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("parse VmHWM %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	t.Skip("no VmHWM in /proc/self/status")
	return 0
}

// TestConcurrentLoginsBoundMemory sends 250 logins at once, each for
// another account from another address (so no throttle stops them), with
// the production argon2 parameters (19 MiB a run): only the gate stands
// between them and 250 × 19 MiB. The process's peak RSS, reset just before
// (clear_refs 5), must stay within what the gate's slots can use.
func TestConcurrentLoginsBoundMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("peak RSS is read from /proc")
	}
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS: %v", err)
	}
	ctx := context.Background()
	st := openStore(t, testdb.SQLite(t))
	keys, err := NewKeyring(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	gate := NewGate(2*runtime.GOMAXPROCS(0), 8*runtime.GOMAXPROCS(0), SharedGate.wait)
	svc := NewService(st, keys, Config{Gate: gate})
	dummyHash() // made once, outside the measured burst
	runtime.GC()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Fatalf("reset the peak RSS: %v", err)
	}
	base := vmHWM(t)

	const logins = 250
	var wg sync.WaitGroup
	var mu sync.Mutex
	outcomes := map[string]int{}
	start := make(chan struct{})
	for i := range logins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, _, err := svc.Login(ctx, fmt.Sprintf("nobody%d@example.com", i), "wrong password", fmt.Sprintf("10.0.%d.%d", i/200, i%200))
			code := "ok"
			if e, ok := apperr.As(err); ok {
				code = e.Code
			} else if err != nil {
				code = err.Error()
			}
			mu.Lock()
			outcomes[code]++
			mu.Unlock()
		}()
	}
	close(start)
	wg.Wait()

	// Each slot holds one 19 MiB argon2 matrix; the garbage collector may
	// let the heap reach twice the live size before it collects, the race
	// detector shadows what is touched, and the runtime and 250 goroutines
	// need some room of their own. Without the gate the growth is 250 ×
	// 19 MiB, about 4.7 GiB.
	slots := int64(2 * runtime.GOMAXPROCS(0))
	bound := 6*slots*argonMemory<<10 + 128<<20
	grew := vmHWM(t) - base
	t.Logf("peak RSS grew by %d MiB (bound %d MiB, %d slots); outcomes %v", grew>>20, bound>>20, slots, outcomes)
	if grew > bound {
		t.Errorf("peak RSS grew by %d MiB during %d concurrent logins, want at most %d MiB (%d slots)",
			grew>>20, logins, bound>>20, slots)
	}
	if outcomes["invalid_credentials"]+outcomes["server_busy"] != logins {
		t.Errorf("outcomes %v: want every login refused as invalid_credentials or server_busy", outcomes)
	}
	if outcomes["invalid_credentials"] == 0 {
		t.Errorf("outcomes %v: no login was evaluated", outcomes)
	}
}
