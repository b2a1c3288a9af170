package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// RefreshToken is one refresh token of a login session. Tokens of one login
// share a family; each refresh uses one up and issues the next. Only a hash
// of the token is stored.
type RefreshToken struct{ ent.Schema }

// Mixin of the RefreshToken.
func (RefreshToken) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the RefreshToken.
func (RefreshToken) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("user_id", uuid.UUID{}).Immutable(),
		field.UUID("family_id", uuid.UUID{}).Immutable(),
		field.Bytes("token_hash").Immutable().Unique().Sensitive(),
		field.Time("created_at").Default(now).Immutable(),
		field.Time("expires_at").Immutable(),
		// UsedAt is set when the token is exchanged; a second use is theft.
		field.Time("used_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

// Indexes of the RefreshToken.
func (RefreshToken) Indexes() []ent.Index {
	return []ent.Index{index.Fields("family_id"), index.Fields("user_id")}
}

// SigningKey is an Ed25519 key that signs access tokens. The newest active
// key signs; all keys not yet retired past the token lifetime verify.
type SigningKey struct{ ent.Schema }

// Fields of the SigningKey.
func (SigningKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("kid").NotEmpty().Immutable(),
		field.Bytes("public_key").Immutable(),
		field.Bytes("private_key").Immutable().Sensitive(),
		field.Time("created_at").Default(now).Immutable(),
		field.Time("retired_at").Optional().Nillable(),
	}
}
