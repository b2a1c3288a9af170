package auth_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"

	"github.com/shoalcrm/shoal/internal/auth"
)

// phcPrefix is what every stored hash starts with: argon2id, version 19 and
// OWASP's minimum parameters.
const phcPrefix = "$argon2id$v=19$m=19456,t=2,p=1$"

func TestHashPasswordFormat(t *testing.T) {
	h1, err := auth.HashPassword("hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	h2, err := auth.HashPassword("hunter2hunter2")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{h1, h2} {
		if !strings.HasPrefix(h, phcPrefix) {
			t.Errorf("hash %q does not start with %q", h, phcPrefix)
		}
		parts := strings.Split(h, "$")
		if len(parts) != 6 {
			t.Fatalf("hash %q has %d parts, want 6", h, len(parts))
		}
		salt, err := base64.RawStdEncoding.DecodeString(parts[4])
		if err != nil || len(salt) != 16 {
			t.Errorf("salt %q: %d bytes, %v; want 16 bytes", parts[4], len(salt), err)
		}
		key, err := base64.RawStdEncoding.DecodeString(parts[5])
		if err != nil || len(key) != 32 {
			t.Errorf("key %q: %d bytes, %v; want 32 bytes", parts[5], len(key), err)
		}
		if strings.Contains(h, "hunter2") {
			t.Errorf("hash %q contains the password", h)
		}
	}
	if h1 == h2 {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
}

func TestVerifyPassword(t *testing.T) {
	const password = "correct horse battery staple"
	hash, err := auth.HashPassword(password)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(hash, "$")
	// A hash made with other (weaker) parameters must still verify: the
	// parameters recorded in the hash are the ones that count.
	salt := []byte("0123456789abcdef")
	weak := fmt.Sprintf("$argon2id$v=19$m=8192,t=1,p=1$%s$%s",
		base64.RawStdEncoding.EncodeToString(salt),
		base64.RawStdEncoding.EncodeToString(argon2.IDKey([]byte(password), salt, 1, 8192, 1, 32)))

	tamperedKey := []byte(parts[5])
	tamperedKey[0] = flipBase64(tamperedKey[0])
	tamperedSalt := []byte(parts[4])
	tamperedSalt[0] = flipBase64(tamperedSalt[0])
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}

	tests := []struct {
		name     string
		password string
		hash     string
		want     bool
		wantErr  bool
	}{
		{name: "right password", password: password, hash: hash, want: true},
		{name: "wrong password", password: "correct horse battery stapler", hash: hash},
		{name: "empty password", password: "", hash: hash},
		{name: "other parameters", password: password, hash: weak, want: true},
		{name: "other parameters, wrong password", password: "nope", hash: weak},
		{name: "tampered key", password: password, hash: with(5, string(tamperedKey))},
		{name: "tampered salt", password: password, hash: with(4, string(tamperedSalt))},
		{name: "tampered memory", password: password, hash: with(3, "m=19457,t=2,p=1")},
		{name: "tampered time", password: password, hash: with(3, "m=19456,t=3,p=1")},
		{name: "key cut to 16 bytes", password: password, hash: with(5, parts[5][:22])},
		{name: "key cut to 15 bytes", password: password, hash: with(5, parts[5][:20]), wantErr: true},
		{name: "empty key", password: password, hash: with(5, ""), wantErr: true},
		{name: "zero time", password: password, hash: with(3, "m=19456,t=0,p=1"), wantErr: true},
		{name: "zero threads", password: password, hash: with(3, "m=19456,t=2,p=0"), wantErr: true},
		{name: "argon2i", password: password, hash: with(1, "argon2i"), wantErr: true},
		{name: "bcrypt", password: password, hash: "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", wantErr: true},
		{name: "other version", password: password, hash: with(2, "v=16"), wantErr: true},
		{name: "garbled parameters", password: password, hash: with(3, "m=x,t=2,p=1"), wantErr: true},
		{name: "salt not base64", password: password, hash: with(4, "!!!"), wantErr: true},
		{name: "key not base64", password: password, hash: with(5, "!!!"), wantErr: true},
		{name: "missing part", password: password, hash: strings.Join(parts[:5], "$"), wantErr: true},
		{name: "empty", password: password, hash: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.VerifyPassword(tt.password, tt.hash)
			if (err != nil) != tt.wantErr {
				t.Fatalf("VerifyPassword error = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("VerifyPassword = %v, want %v", got, tt.want)
			}
		})
	}
}

// flipBase64 changes a base64 character into another valid one whose value
// differs in its high bits, so the decoded bytes change.
func flipBase64(c byte) byte {
	if c == 'A' {
		return 'g'
	}
	return 'A'
}
