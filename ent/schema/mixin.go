// Package schema is Shoal's storage model; ent generates the ent package from it.
package schema

import (
	"time"

	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/mixin"
	"github.com/google/uuid"
)

// NewID returns a UUIDv7: time-ordered, so primary-key indexes stay compact,
// and random enough that ids cannot be guessed.
func NewID() uuid.UUID { return uuid.Must(uuid.NewV7()) }

// now is the creation and update timestamp source; times are stored in UTC.
func now() time.Time { return time.Now().UTC() }

// IDMixin gives an entity an immutable UUIDv7 primary key.
type IDMixin struct{ mixin.Schema }

// Fields of the IDMixin.
func (IDMixin) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("id", uuid.UUID{}).Default(NewID).Immutable(),
	}
}

// TimeMixin adds createdAt and updatedAt, both server-owned.
type TimeMixin struct{ mixin.Schema }

// Fields of the TimeMixin.
func (TimeMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Time("created_at").Default(now).Immutable(),
		field.Time("updated_at").Default(now).UpdateDefault(now),
	}
}

// VersionMixin gives a mutable resource a version: 1 when created, one
// more on every change through its update operation. The version is the
// resource's ETag (internal/etag), so a client's If-Match names the
// version it read and a stale one is refused instead of overwriting a
// change it never saw.
type VersionMixin struct{ mixin.Schema }

// Fields of the VersionMixin.
func (VersionMixin) Fields() []ent.Field {
	return []ent.Field{
		field.Int("version").Default(1),
	}
}

// chars is the MaxLen of a text of at most n characters. ent's MaxLen
// counts bytes while the API counts characters, and a 200-character
// Chinese name is 600 bytes of UTF-8: the column and ent's check allow
// the UTF-8 worst case (4 bytes a character), and the contract (request
// validation) and the services hold the text to n characters.
func chars(n int) int { return 4 * n }
