package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Handover is one run of a leaver handover (离职交接): everything one user
// owns moves to another user or to a pool. The row is created with the
// job that works it, in one transaction; the job records its progress here
// in the transaction of each batch it moves, so the counts always match
// what moved.
type Handover struct{ ent.Schema }

// Mixin of the Handover.
func (Handover) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Fields of the Handover.
func (Handover) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("from_user_id", uuid.UUID{}).Immutable(),
		field.UUID("to_user_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.UUID("to_pool_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.Strings("kinds").Immutable(),
		field.Bool("cascade").Default(true).Immutable(),
		field.String("reason").Default("").MaxLen(chars(500)).Immutable(),
		// RequestedBy is the actor of every history row and event the
		// run writes.
		field.UUID("requested_by", uuid.UUID{}).Immutable(),
		field.Enum("status").Values("queued", "running", "done", "failed").Default("queued"),
		field.JSON("counts", map[string]HandoverCount{}).Default(map[string]HandoverCount{}),
		field.JSON("overflow", []HandoverOverflow{}).Default([]HandoverOverflow{}),
		field.String("error").Default(""),
		field.Time("finished_at").Optional().Nillable(),
	}
}

// HandoverCount is what a handover did with the records of one kind.
type HandoverCount struct {
	Moved    int `json:"moved"`
	Overflow int `json:"overflow"`
}

// HandoverOverflow is a record the target user could not take because of
// his cap, and the pool it went to instead.
type HandoverOverflow struct {
	Kind     string    `json:"kind"`
	RecordID uuid.UUID `json:"recordId"`
	PoolID   uuid.UUID `json:"poolId"`
}

// Indexes of the Handover.
func (Handover) Indexes() []ent.Index {
	return []ent.Index{index.Fields("from_user_id")}
}
