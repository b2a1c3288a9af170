package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// SearchGram is one entry of the substring-search index of leads and
// customers (see internal/search): the record holds the gram in one of
// its searchable fields (or, for a customer, one of its contacts'). It
// only narrows a search to candidates; the list query then checks each
// candidate's own normalised columns, field by field, under the caller's
// masking, so the index never decides what matches.
type SearchGram struct{ ent.Schema }

// Fields of the SearchGram.
func (SearchGram) Fields() []ent.Field {
	return []ent.Field{
		field.String("gram").MaxLen(16).Immutable(),
		field.String("record_kind").MaxLen(32).Immutable(),
		field.UUID("record_id", uuid.UUID{}).Immutable(),
	}
}

// Indexes of the SearchGram: look-ups go gram first; re-indexing a
// record deletes by record.
func (SearchGram) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("gram", "record_kind", "record_id").Unique(),
		index.Fields("record_id"),
	}
}
