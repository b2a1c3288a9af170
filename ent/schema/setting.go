package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
)

// Setting is one named, JSON-valued server setting (global caps, signing
// keys' metadata, …). Keys are few and fixed by the code that owns them.
type Setting struct{ ent.Schema }

// Mixin of the Setting.
func (Setting) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, VersionMixin{}} }

// Fields of the Setting.
func (Setting) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("key").NotEmpty().Immutable(),
		field.JSON("value", map[string]any{}),
	}
}
