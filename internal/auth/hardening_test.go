package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// A stored hash is data, and its parameters must not decide how much
// memory or time a login takes.
func TestVerifyPasswordBoundsParameters(t *testing.T) {
	salt := base64.RawStdEncoding.EncodeToString([]byte("0123456789abcdef"))
	key := base64.RawStdEncoding.EncodeToString(make([]byte, 32))
	phc := func(params, k string) string { return fmt.Sprintf("$argon2id$v=19$%s$%s$%s", params, salt, k) }
	tests := []struct {
		name, hash string
	}{
		{"4 GiB of memory", phc("m=4194304,t=2,p=1", key)},
		{"memory beyond uint32", phc("m=8589934592,t=2,p=1", key)},
		{"a thousand passes", phc("m=19456,t=1000,p=1", key)},
		{"255 threads", phc("m=19456,t=2,p=255", key)},
		{"memory below 8 per thread", phc("m=8,t=1,p=4", key)},
		{"1 MiB key", phc("m=19456,t=2,p=1", base64.RawStdEncoding.EncodeToString(make([]byte, 1<<20)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := PasswordStats()
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			ok, err := VerifyPassword("whatever password", tt.hash)
			runtime.ReadMemStats(&m1)
			if ok || !errors.Is(err, ErrHashParameters) {
				t.Fatalf("VerifyPassword = %v, %v; want ErrHashParameters", ok, err)
			}
			if after, _ := PasswordStats(); after != before {
				t.Error("argon2 ran for a refused hash")
			}
			// Parsing the 1 MiB key string itself allocates a little; a
			// 4 GiB argon2 run would allocate 4 GiB.
			if grew := m1.TotalAlloc - m0.TotalAlloc; grew > 16<<20 {
				t.Errorf("refusing the hash allocated %d bytes", grew)
			}
		})
	}
}

// Passwords are hashed in NFKC form; hashes made before from the raw
// string keep verifying.
func TestVerifyPasswordNFKC(t *testing.T) {
	const fullwidth = "ｃｏｒｒｅｃｔ ｈｏｒｓｅ" // NFKC: "correct horse"
	h, err := HashPassword(fullwidth)
	if err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{fullwidth, "correct horse"} {
		if ok, err := VerifyPassword(pw, h); !ok || err != nil {
			t.Errorf("VerifyPassword(%q) = %v, %v; want true", pw, ok, err)
		}
	}
	// A hash of the raw (non-NFKC) string, as made before the policy.
	salt := []byte("0123456789abcdef")
	legacy := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s", base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(fullwidth), salt, 1, 8192, 1, 32)))
	if ok, err := VerifyPassword(fullwidth, legacy); !ok || err != nil {
		t.Errorf("legacy raw hash: VerifyPassword = %v, %v; want true", ok, err)
	}
	if ok, _ := VerifyPassword("correct horse", legacy); ok {
		t.Error("legacy raw hash matched the normalised form, which it was not made from")
	}
}

func TestCheckPassword(t *testing.T) {
	const email = "Jane.Doe@Example.com"
	tests := []struct {
		name, password, reason string
	}{
		{"the fixture password", "correct horse battery staple", ""},
		{"eight unusual characters", "zq7!Kp2#", ""},
		{"common", "password1", "common"},
		{"common, other case", "PassWord1", "common"},
		{"common in full width", "ｐａｓｓｗｏｒｄ１", "common"},
		{"common, digits", "12345678", "common"},
		{"the email", "jane.doe@example.com", "equals_email"},
		{"the email, other case", "JANE.DOE@EXAMPLE.COM", "equals_email"},
		{"the local part", "Jane.Doe", "equals_email"},
		{"seven characters", "zq7!Kp2", "too_short"},
		{"eight code points composing to four", strings.Repeat("e\u0301", 4), "too_short"},
		{"eight full-width digits and letters that are fine", "ｚｑ７！Ｋｐ２＃", ""},
		{"256 characters", strings.Repeat("aB3$", 64), ""},
		{"257 characters", strings.Repeat("aB3$", 64) + "x", "too_long"},
		{"100 ligatures expanding to 300", strings.Repeat("ﬃ", 100), "too_long"},
		{"megabytes", strings.Repeat("x", 1<<20), "too_long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckPassword("body/password", tt.password, email)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("CheckPassword = %v, want nil", err)
				}
				return
			}
			e, ok := apperr.As(err)
			if !ok || e.Kind != apperr.Invalid || e.Code != "weak_password" || len(e.Fields) != 1 ||
				e.Fields[0].Field != "body/password" || e.Fields[0].Code != tt.reason {
				t.Fatalf("CheckPassword = %#v, want weak_password %s on body/password", err, tt.reason)
			}
		})
	}
	if n := len(commonPasswords()); n != 10_000 {
		t.Errorf("%d common passwords embedded, want 10000", n)
	}
}

// The gate never lets more argon2 runs through than it has slots, and
// answers server_busy (with Retry-After) beyond its queue.
func TestGateBoundsArgon(t *testing.T) {
	ctx := context.Background()
	hash, err := HashPassword("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	const slots = 3
	g := NewGate(slots, 1000, time.Minute)
	ResetPeakInFlight()
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := g.Verify(ctx, "wrong password", hash); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, peak := PasswordStats(); peak > slots || peak < 1 {
		t.Errorf("peak argon2 runs in flight = %d, want 1..%d", peak, slots)
	}

	// Full gate, no queue: refused at once.
	busy := NewGate(2, 0, time.Minute)
	var releases []func()
	for range 2 {
		r, err := busy.Acquire(ctx)
		if err != nil {
			t.Fatal(err)
		}
		releases = append(releases, r)
	}
	before, _ := PasswordStats()
	_, err = busy.Verify(ctx, "x", hash)
	e, ok := apperr.As(err)
	if !ok || e.Kind != apperr.Unavailable || e.Code != "server_busy" || e.RetryAfter <= 0 {
		t.Fatalf("Verify on a full gate = %v, want Unavailable server_busy with RetryAfter", err)
	}
	if after, _ := PasswordStats(); after != before {
		t.Error("a refused verification ran argon2")
	}
	// A waiter in the queue gets the slot when one is released.
	queued := NewGate(1, 1, time.Minute)
	r, _ := queued.Acquire(ctx)
	got := make(chan error, 1)
	go func() {
		release, err := queued.Acquire(ctx)
		if err == nil {
			release()
		}
		got <- err
	}()
	for queued.waiting.Load() != 1 { // until the goroutine is queued
		runtime.Gosched()
	}
	if _, err := queued.Acquire(ctx); !apperr.HasCode(err, "server_busy") {
		t.Errorf("Acquire beyond the queue = %v, want server_busy", err)
	}
	r()
	if err := <-got; err != nil {
		t.Errorf("queued Acquire = %v", err)
	}
	for _, r := range releases {
		r()
	}
}

func TestThrottleReservations(t *testing.T) {
	now := time.Now()
	th := newThrottle(3, 2, time.Minute)
	// Two in flight at most.
	for range 2 {
		if ok, _ := th.reserve("k", now); !ok {
			t.Fatal("reservation refused")
		}
	}
	if ok, wait := th.reserve("k", now); ok || wait != inFlightRetry {
		t.Fatalf("third concurrent reservation = %v, %v; want refused for %v", ok, wait, inFlightRetry)
	}
	th.settle("k", settleFailure)
	th.settle("k", settleRefund)
	// One failure kept: two more fit, then the budget is spent.
	for range 2 {
		if ok, _ := th.reserve("k", now); !ok {
			t.Fatal("reservation within budget refused")
		}
		th.settle("k", settleFailure)
	}
	if ok, wait := th.reserve("k", now.Add(10*time.Second)); ok || wait != 50*time.Second {
		t.Fatalf("over budget = %v, %v; want refused for 50s", ok, wait)
	}
	if ok, _ := th.reserve("k", now.Add(time.Minute)); !ok {
		t.Fatal("a new window still refused")
	}
	th.settle("k", settleClear)
	if len(th.entries) != 0 {
		t.Errorf("entries left after clear: %v", th.entries)
	}
}
