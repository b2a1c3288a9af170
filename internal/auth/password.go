package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// argon2id parameters: OWASP's minimum recommendation (m=19 MiB, t=2, p=1).
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
	argonSaltLen = 16
	// minKeyLen is the shortest stored key VerifyPassword trusts.
	minKeyLen = 16
)

// Bounds on the parameters VerifyPassword accepts from a stored hash. A
// hash is data: whoever can write the users table (a restore, a bad
// migration, an attacker with SQL access) could otherwise make every login
// allocate gigabytes or spin for minutes. The maxima leave room to raise
// the parameters above today's several times over.
const (
	maxArgonMemory  = 256 * 1024 // KiB, i.e. 256 MiB
	maxArgonTime    = 16
	maxArgonThreads = 16
	maxKeyLen       = 128
	maxSaltLen      = 128
)

// ErrHashParameters is returned for a stored hash whose argon2 parameters
// are out of the accepted bounds (or malformed).
var ErrHashParameters = errors.New("argon2 parameters out of range")

// argon2 instrumentation: how many password evaluations ran, and how many
// argon2 computations were in flight at once (at most). Tests read them
// through PasswordStats to prove the throttles and the gate hold.
var (
	evaluations     atomic.Int64
	argonInFlight   atomic.Int64
	argonPeakFlight atomic.Int64
)

// PasswordStats reports the number of password verifications run since
// the process started, and the highest number of argon2 computations that
// ran at the same time.
func PasswordStats() (verifications, peakInFlight int64) {
	return evaluations.Load(), argonPeakFlight.Load()
}

// ResetPeakInFlight starts a new measurement of PasswordStats' peak.
func ResetPeakInFlight() { argonPeakFlight.Store(argonInFlight.Load()) }

func idKey(password, salt []byte, t, m uint32, p uint8, keyLen uint32) []byte {
	n := argonInFlight.Add(1)
	defer argonInFlight.Add(-1)
	for {
		peak := argonPeakFlight.Load()
		if n <= peak || argonPeakFlight.CompareAndSwap(peak, n) {
			break
		}
	}
	return argon2.IDKey(password, salt, t, m, p, keyLen)
}

// NormalizePassword is the form passwords are hashed in: Unicode NFKC, so
// that the same password typed on another keyboard or input method (full
// width forms, composed or decomposed accents) is the same password.
func NormalizePassword(password string) string { return norm.NFKC.String(password) }

// HashPassword returns the argon2id hash of the NFKC form of password in
// PHC string format. It is CPU- and memory-heavy: callers serving requests
// go through a Gate.
func HashPassword(password string) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	cost := newHashCost() // production parameters, unless a test binary said otherwise
	key := idKey([]byte(NormalizePassword(password)), salt, cost.time, cost.memory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, cost.memory, cost.time, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the PHC-format hash. It
// honours the parameters recorded in the hash (within bounds), so they can
// be raised later without invalidating existing passwords.
//
// Hashes are made from the NFKC form since the password policy came in;
// older ones from the raw string. The NFKC form is tried first; only when
// it differs from the raw string and does not match is the raw string
// tried too, so that passwords set before keep working. That second try
// costs one more argon2 run only for passwords that change under NFKC.
func VerifyPassword(password, phc string) (bool, error) {
	h, err := parsePHC(phc)
	if err != nil {
		return false, err
	}
	evaluations.Add(1)
	normalized := NormalizePassword(password)
	if h.matches(normalized) {
		return true, nil
	}
	if normalized != password {
		return h.matches(password), nil
	}
	return false, nil
}

type argonHash struct {
	m, t       uint32
	p          uint8
	salt, want []byte
}

func (h *argonHash) matches(password string) bool {
	got := idKey([]byte(password), h.salt, h.t, h.m, h.p, uint32(len(h.want)))
	return subtle.ConstantTimeCompare(got, h.want) == 1
}

func parsePHC(phc string) (*argonHash, error) {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return nil, errors.New("unsupported password hash")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return nil, errors.New("unsupported argon2 version")
	}
	var m, t, p uint64
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrHashParameters, err)
	}
	// argon2 panics on t or p of zero rather than failing, and allocates
	// whatever m says.
	if t < 1 || t > maxArgonTime || p < 1 || p > maxArgonThreads || m < 8*p || m > maxArgonMemory {
		return nil, ErrHashParameters
	}
	b64 := base64.RawStdEncoding
	if len(parts[4]) > base64.RawStdEncoding.EncodedLen(maxSaltLen) || len(parts[5]) > base64.RawStdEncoding.EncodedLen(maxKeyLen) {
		return nil, fmt.Errorf("%w: salt or key too long", ErrHashParameters)
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return nil, fmt.Errorf("argon2 salt: %w", err)
	}
	want, err := b64.DecodeString(parts[5])
	if err != nil {
		return nil, fmt.Errorf("argon2 key: %w", err)
	}
	if len(want) < minKeyLen {
		// An empty key panics in argon2, and a short one would match many
		// passwords.
		return nil, errors.New("argon2 key too short")
	}
	return &argonHash{m: uint32(m), t: uint32(t), p: uint8(p), salt: salt, want: want}, nil
}

// dummyHash is verified against when the email is unknown, so that an
// unknown email costs the same time as a wrong password.
var dummyHash = sync.OnceValue(func() string {
	h, err := HashPassword("shoal-dummy-password-for-timing")
	if err != nil {
		panic(err)
	}
	return h
})
