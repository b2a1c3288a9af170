package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// ClaimRequest is a claim waiting for a pool manager, in pools with
// claimRequiresApproval.
type ClaimRequest struct{ ent.Schema }

// Mixin of the ClaimRequest.
func (ClaimRequest) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the ClaimRequest.
func (ClaimRequest) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("lead", "customer").Immutable(),
		field.UUID("record_id", uuid.UUID{}).Immutable(),
		field.UUID("pool_id", uuid.UUID{}).Immutable(),
		field.UUID("requester_id", uuid.UUID{}).Immutable(),
		field.Enum("status").Values("pending", "approved", "rejected").Default("pending"),
		field.UUID("decider_id", uuid.UUID{}).Optional().Nillable(),
		field.String("reason").Default(""),
		field.Time("created_at").Immutable(),
		field.Time("decided_at").Optional().Nillable(),
		// approval_id is the request's approval (internal/approvals):
		// who may decide it, step by step. Requests filed before
		// approvals existed get one when first decided.
		field.UUID("approval_id", uuid.UUID{}).Optional().Nillable(),
	}
}

// Indexes of the ClaimRequest.
func (ClaimRequest) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("pool_id", "status"),
		index.Fields("requester_id", "status"),
		index.Fields("record_id", "status"),
	}
}
