package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// IdempotencyRecord is the stored answer of one request made with an
// Idempotency-Key (internal/idempotency). It is written in the same
// transaction as the request's change. Nothing in it names the key or the
// caller in the clear: the id is an HMAC of (caller, key) under a server
// secret, and the answer is encrypted under a key derived from the
// Idempotency-Key itself, which is never stored.
type IdempotencyRecord struct{ ent.Schema }

// Fields of the IdempotencyRecord.
func (IdempotencyRecord) Fields() []ent.Field {
	return []ent.Field{
		// id is hex(HMAC(secret, caller, key)).
		field.String("id").NotEmpty().Immutable(),
		// fingerprint is hex(HMAC) of the method, path, query and body.
		field.String("fingerprint").NotEmpty().Immutable(),
		field.Int("status").Immutable(),
		// answer is nonce || AES-GCM(headers and body).
		field.Bytes("answer").Immutable(),
		field.Time("created_at").Immutable(),
		field.Time("expires_at").Immutable(),
	}
}

// Indexes of the IdempotencyRecord: the purge deletes by expiry.
func (IdempotencyRecord) Indexes() []ent.Index {
	return []ent.Index{index.Fields("expires_at")}
}
