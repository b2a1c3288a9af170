package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// APIKey authenticates a partner integration. Only a SHA-256 hash of the
// secret is kept (the secret has 256 random bits, so a slow hash adds
// nothing), plus a short prefix so people can tell keys apart.
type APIKey struct{ ent.Schema }

// Mixin of the APIKey.
func (APIKey) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Fields of the APIKey.
func (APIKey) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(chars(200)),
		field.String("prefix").NotEmpty().Immutable(),
		field.Bytes("secret_hash").Unique().Immutable().Sensitive(),
		field.Strings("scopes"),
		field.UUID("pool_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("created_by", uuid.UUID{}).Immutable(),
		field.Time("expires_at").Optional().Nillable(),
		field.Time("last_used_at").Optional().Nillable(),
		field.Time("revoked_at").Optional().Nillable(),
	}
}

// Indexes of the APIKey.
func (APIKey) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_by")}
}
