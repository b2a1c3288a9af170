package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers sent with every delivery. Receivers verify HeaderSignature over
// HeaderTimestamp and the body (see Verify) and may use HeaderEventID to
// drop duplicates, since a delivery can arrive more than once.
const (
	HeaderEventID    = "Shoal-Event-Id"
	HeaderEventType  = "Shoal-Event-Type"
	HeaderTimestamp  = "Shoal-Timestamp"
	HeaderSignature  = "Shoal-Signature"
	HeaderDeliveryID = "Shoal-Delivery-Id"
)

// secretPrefix makes secrets recognisable in logs and by secret scanners.
const secretPrefix = "whsec_"

var (
	// ErrBadSignature means no signature in the header matches the body and
	// timestamp, or the headers are malformed.
	ErrBadSignature = errors.New("webhook signature does not match")
	// ErrStale means the timestamp is too far from now; refusing it stops a
	// captured delivery from being replayed later.
	ErrStale = errors.New("webhook timestamp is outside the tolerance")
)

// NewSecret returns a fresh signing secret: "whsec_" followed by 32 random
// bytes in unpadded URL-safe base64.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("webhooks: generate secret: %w", err)
	}
	return secretPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// Sign returns the HeaderSignature value for body sent at timestamp (unix
// seconds): "v1=" and the lowercase hex HMAC-SHA256, keyed with the secret's
// bytes as written, of the decimal timestamp, a dot and the body. The
// timestamp is inside the MAC so it cannot be swapped to defeat the
// staleness check; "v1=" leaves room for another scheme later.
//
// A receiver in any language recomputes the same HMAC and compares it in
// constant time; receivers in Go can call Verify.
func Sign(secret string, timestamp int64, body []byte) string {
	return "v1=" + hex.EncodeToString(mac(secret, timestamp, body))
}

func mac(secret string, timestamp int64, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks a delivery as a receiver should: the timestamp header must be
// unix seconds within tolerance of now (else ErrStale), and one of the
// comma-separated "v1=<hex>" entries of the signature header must be the
// HMAC of timestamp and body under secret (else ErrBadSignature). Several
// entries are sent while a secret is being rotated, one per valid secret.
func Verify(secret, timestampHeader, signatureHeader string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(strings.TrimSpace(timestampHeader), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not unix seconds", ErrBadSignature, timestampHeader)
	}
	// Compare in seconds so a far-off timestamp cannot overflow a Duration.
	diff := now.Unix() - ts
	if diff < 0 {
		diff = -diff
	}
	if diff < 0 || diff > int64(tolerance/time.Second) {
		return fmt.Errorf("%w: timestamp %d is %ds from now", ErrStale, ts, diff)
	}
	want := mac(secret, ts, body)
	for entry := range strings.SplitSeq(signatureHeader, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(entry), "v1=")
		if !ok {
			continue // another scheme, or garbage; a later entry may match
		}
		got, err := hex.DecodeString(hexSig)
		if err != nil {
			continue
		}
		if hmac.Equal(got, want) {
			return nil
		}
	}
	return ErrBadSignature
}
