package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
)

const (
	testSecret = "whsec_test-secret"
	testTS     = int64(1700000000)
)

var testBody = []byte(`{"type":"lead.created","data":{"id":"01H"}}`)

func TestSignMatchesIndependentHMAC(t *testing.T) {
	// Computed here the way a receiver in another language would.
	m := hmac.New(sha256.New, []byte(testSecret))
	m.Write([]byte("1700000000." + string(testBody)))
	want := "v1=" + hex.EncodeToString(m.Sum(nil))

	got := Sign(testSecret, testTS, testBody)
	if got != want {
		t.Fatalf("Sign = %q, want %q", got, want)
	}
	if got != strings.ToLower(got) || len(got) != len("v1=")+64 {
		t.Fatalf("Sign = %q, want v1= and 64 lowercase hex digits", got)
	}
}

func TestSignFixedVector(t *testing.T) {
	// Written out from an independent implementation (Python's hmac module),
	// so a change to the signed bytes' layout is caught even if the test's
	// own HMAC code changed alongside.
	tests := []struct {
		secret string
		ts     int64
		body   string
		want   string
	}{
		{testSecret, testTS, string(testBody), "v1=b3afdbbcde644ff1ccc898ba7553a26a1acedd6149c8864de5d88eea074bc6a6"},
		{"Jefe", 0, "what do ya want for nothing?", "v1=37f471929915ccd2cbbe79feb84ffcff4f2bb25e15fc41c2506687331ae179cc"},
	}
	for _, tt := range tests {
		if got := Sign(tt.secret, tt.ts, []byte(tt.body)); got != tt.want {
			t.Errorf("Sign(%q, %d, %q) = %q, want %q", tt.secret, tt.ts, tt.body, got, tt.want)
		}
	}
}

func TestVerify(t *testing.T) {
	good := Sign(testSecret, testTS, testBody)
	now := time.Unix(testTS, 0)
	const tol = 5 * time.Minute
	tests := []struct {
		name    string
		secret  string
		ts      string
		sig     string
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"valid", testSecret, "1700000000", good, testBody, now, nil},
		{"valid at edge in the past", testSecret, "1700000000", good, testBody, now.Add(tol), nil},
		{"valid at edge in the future", testSecret, "1700000000", good, testBody, now.Add(-tol), nil},
		{"rotation second matches", testSecret, "1700000000", "v1=bad," + good, testBody, now, nil},
		{"rotation first matches", testSecret, "1700000000", good + ", v1=00ff", testBody, now, nil},
		{"unknown scheme skipped", testSecret, "1700000000", "v0=abc," + good, testBody, now, nil},
		{"changed body", testSecret, "1700000000", good, []byte(`{"type":"lead.deleted"}`), now, ErrBadSignature},
		{"changed timestamp", testSecret, "1700000001", good, testBody, now, ErrBadSignature},
		{"wrong secret", "whsec_other", "1700000000", good, testBody, now, ErrBadSignature},
		{"empty signature", testSecret, "1700000000", "", testBody, now, ErrBadSignature},
		{"bare hex without scheme", testSecret, "1700000000", strings.TrimPrefix(good, "v1="), testBody, now, ErrBadSignature},
		{"uppercase hex of another mac", testSecret, "1700000000", "v1=" + strings.Repeat("AB", 32), testBody, now, ErrBadSignature},
		{"too old", testSecret, "1700000000", good, testBody, now.Add(tol + time.Second), ErrStale},
		{"too far in the future", testSecret, "1700000000", good, testBody, now.Add(-tol - time.Second), ErrStale},
		{"ancient", testSecret, "-9223372036854775808", good, testBody, now, ErrStale},
		{"non-numeric timestamp", testSecret, "yesterday", good, testBody, now, ErrBadSignature},
		{"empty timestamp", testSecret, "", good, testBody, now, ErrBadSignature},
		{"milliseconds timestamp", testSecret, "1700000000000", good, testBody, now, ErrStale},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, tol)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestNewSecret(t *testing.T) {
	a, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{a, b} {
		rest, ok := strings.CutPrefix(s, "whsec_")
		if !ok {
			t.Fatalf("secret %q lacks the whsec_ prefix", s)
		}
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret %q: %d bytes, err %v; want 32 bytes of raw URL base64", s, len(raw), err)
		}
	}
	if a == b {
		t.Fatal("two secrets are equal")
	}
}
