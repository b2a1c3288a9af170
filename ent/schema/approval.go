package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// ApprovalStep is one sequential step of an approval request: who must
// decide it, and what they decided.
type ApprovalStep struct {
	// Approver is supervisor (a supervisor over the requester, in his
	// team subtree), admin, user (UserID) or pool_manager (a manager of
	// the subject's pool).
	Approver  string     `json:"approver"`
	UserID    *uuid.UUID `json:"userId,omitempty"`
	Status    string     `json:"status"` // pending, approved, rejected, skipped
	DeciderID *uuid.UUID `json:"deciderId,omitempty"`
	DecidedAt *string    `json:"decidedAt,omitempty"` // RFC 3339
	Comment   string     `json:"comment,omitempty"`
}

// Approval is one approval request (审批): a subject (a quote, a claim
// request, later orders and invoice requests) waiting for its approvers,
// step after step.
type Approval struct{ ent.Schema }

// Mixin of the Approval.
func (Approval) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Approval.
func (Approval) Fields() []ent.Field {
	return []ent.Field{
		field.String("subject_kind").NotEmpty().MaxLen(40).Immutable(),
		field.UUID("subject_id", uuid.UUID{}).Immutable(),
		// rule names what required it: a flow rule's name, or cost_gate.
		field.String("rule").MaxLen(100).Immutable(),
		field.UUID("requester_id", uuid.UUID{}).Immutable(),
		// requester_team_path is the requester's team when he asked: a
		// supervisor step is for supervisors whose team contains it.
		field.String("requester_team_path").Default("").Immutable(),
		// pool_id is the subject's pool, for pool_manager steps.
		field.UUID("pool_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.Enum("status").Values("pending", "approved", "rejected", "cancelled").Default("pending"),
		field.JSON("steps", []ApprovalStep{}),
		field.Int("current_step").Default(0),
		// current_approver and current_user_id copy the current step's
		// approver out of steps, so "mine to decide" is one indexed query.
		field.String("current_approver").Default(""),
		field.UUID("current_user_id", uuid.UUID{}).Optional().Nillable(),
		// reasons are the subject's reasons (for a quote: the blocking
		// lines), as the subject's module wrote them.
		field.JSON("reasons", []map[string]string{}).Optional(),
		field.Time("decided_at").Optional().Nillable(),
	}
}

// Indexes of the Approval.
func (Approval) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("subject_kind", "subject_id"),
		index.Fields("status", "current_approver", "id"),
		index.Fields("requester_id", "id"),
	}
}

// FlowCondition narrows a flow rule to the subjects it applies to; every
// field set must hold. Percentages and amounts are decimal strings.
type FlowCondition struct {
	DiscountPercentAbove *string `json:"discountPercentAbove,omitempty"`
	TotalAbove           *string `json:"totalAbove,omitempty"`
	MarginPercentBelow   *string `json:"marginPercentBelow,omitempty"`
}

// FlowRule is one rule of an approval flow: when it applies and its steps.
type FlowRule struct {
	Name  string         `json:"name"`
	When  *FlowCondition `json:"when,omitempty"`
	Steps []ApprovalStep `json:"steps"`
}

// ApprovalFlow is the admin-configured flow of one subject kind; a kind
// without a row uses its built-in flow.
type ApprovalFlow struct{ ent.Schema }

// Mixin of the ApprovalFlow.
func (ApprovalFlow) Mixin() []ent.Mixin { return []ent.Mixin{TimeMixin{}, VersionMixin{}} }

// Fields of the ApprovalFlow.
func (ApprovalFlow) Fields() []ent.Field {
	return []ent.Field{
		field.String("id").StorageKey("subject_kind").NotEmpty().MaxLen(40).Immutable(),
		field.JSON("rules", []FlowRule{}),
	}
}
