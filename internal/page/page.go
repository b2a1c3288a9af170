// Package page implements keyset pagination: page sizes and opaque cursors
// that carry the last row's sort key, signed so that a forged or mangled
// cursor is a clear 400 rather than a surprise query.
package page

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/store"
)

// Sizes accepted for limit.
const (
	DefaultSize = 50
	MaxSize     = 200
)

// Size returns the page size for an optional limit parameter.
func Size(limit *int32) int {
	if limit == nil || *limit <= 0 {
		return DefaultSize
	}
	return min(int(*limit), MaxSize)
}

const macLen = 12

// Codec signs and verifies cursors.
type Codec struct{ key []byte }

// NewCodec returns a codec signing with key.
func NewCodec(key []byte) Codec { return Codec{key: key} }

// LoadCodec returns the codec whose key is shared by every replica through
// the database, creating the key on first start.
func LoadCodec(ctx context.Context, st *store.Store) (Codec, error) {
	key, err := st.LoadKey(ctx, "cursor_key")
	if err != nil {
		return Codec{}, fmt.Errorf("cursor key: %w", err)
	}
	return NewCodec(key), nil
}

type operationKey struct{}

// WithOperation names the operation whose cursors ctx encodes and decodes.
// The HTTP layer sets it for every request.
func WithOperation(ctx context.Context, operationID string) context.Context {
	return context.WithValue(ctx, operationKey{}, operationID)
}

func operation(ctx context.Context) string {
	op, _ := ctx.Value(operationKey{}).(string)
	return op
}

// Encode returns the opaque cursor for v, bound to the operation on ctx
// (see WithOperation).
func (c Codec) Encode(ctx context.Context, v any) string {
	payload, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("page: cursor not encodable: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(append(payload, c.mac(operation(ctx), payload)...))
}

// Decode verifies cursor and decodes it into v. A bad cursor, or one issued
// by another operation, is an apperr.Invalid with code invalid_cursor.
func (c Codec) Decode(ctx context.Context, cursor string, v any) error {
	bad := apperr.Invalidf("query.cursor", "invalid_cursor", "the cursor is not one this server issued")
	bad.Code = "invalid_cursor"
	raw, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(raw) <= macLen {
		return bad
	}
	payload, mac := raw[:len(raw)-macLen], raw[len(raw)-macLen:]
	if !hmac.Equal(mac, c.mac(operation(ctx), payload)) {
		return bad
	}
	if err := json.Unmarshal(payload, v); err != nil {
		return bad
	}
	return nil
}

// mac signs the operation with the payload, so that a cursor of one list
// (say listLeads, whose keys look like listCustomers') is refused by every
// other: the same sort key means different rows there, and the cursor's
// filters and visibility were checked for its own list only.
func (c Codec) mac(operation string, payload []byte) []byte {
	h := hmac.New(sha256.New, c.key)
	h.Write([]byte(operation))
	h.Write([]byte{0}) // operationIds never contain NUL: no two (op, payload) pairs collide
	h.Write(payload)
	return h.Sum(nil)[:macLen]
}
