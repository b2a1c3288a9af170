package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
)

// Tag is a registered tag name of the organisation's vocabulary. Records
// keep the names themselves in their tags arrays (so a filter by tag needs
// no join); renaming or deleting a tag rewrites those arrays
// (internal/tags). A name used on a record need not be registered.
type Tag struct{ ent.Schema }

// Mixin of the Tag.
func (Tag) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Tag.
func (Tag) Fields() []ent.Field {
	return []ent.Field{
		// 50 like a record's tag (the Tags schema), so a rename always fits.
		field.String("name").NotEmpty().MaxLen(chars(50)).Unique(),
		field.String("color").Optional().Nillable().MaxLen(7),
		field.String("description").Optional().Nillable().MaxLen(chars(500)),
	}
}

// Indexes of the Tag: name is unique (its own index); the default list
// sorts by created_at.
func (Tag) Indexes() []ent.Index {
	return []ent.Index{index.Fields("created_at", "id")}
}
