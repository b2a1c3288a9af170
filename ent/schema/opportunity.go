package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/money"
)

// Stage is one stage of a pipeline, kept in the pipeline's stages list in
// order.
type Stage struct {
	ID          uuid.UUID `json:"id"`
	Name        string    `json:"name"`
	Code        string    `json:"code,omitempty"`
	Probability int       `json:"probability"`
	// Kind is open, won or lost.
	Kind    string `json:"kind"`
	Retired bool   `json:"retired"`
}

// Pipeline is a sales pipeline (销售阶段): ordered stages an opportunity
// moves through. The stages live in the row (a pipeline has a handful);
// opportunities name their stage by id.
type Pipeline struct{ ent.Schema }

// Mixin of the Pipeline.
func (Pipeline) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Pipeline.
func (Pipeline) Fields() []ent.Field {
	return []ent.Field{
		field.String("name").NotEmpty().MaxLen(chars(100)).Unique(),
		field.Bool("is_default").Default(false),
		field.JSON("stages", []Stage{}),
	}
}

// Opportunity is a deal being worked on a customer (商机).
type Opportunity struct{ ent.Schema }

// Mixin of the Opportunity.
func (Opportunity) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Opportunity.
func (Opportunity) Fields() []ent.Field {
	return []ent.Field{
		field.String("title").NotEmpty().MaxLen(chars(200)),
		field.UUID("customer_id", uuid.UUID{}).Immutable(),
		field.UUID("contact_id", uuid.UUID{}).Optional().Nillable(),
		field.UUID("pipeline_id", uuid.UUID{}).Immutable(),
		field.UUID("stage_id", uuid.UUID{}),
		// stage_kind is the stage's kind, kept here for the stageKind
		// filter and the won/lost counts.
		field.Enum("stage_kind").Values("open", "won", "lost"),
		money.Field("amount"),
		field.String("currency").Default("CNY"),
		// probability is set when it overrides the stage's.
		field.Int("probability").Optional().Nillable(),
		field.String("expected_close_date").Optional().Nillable(),
		field.String("source").Optional().Nillable().MaxLen(chars(100)),
		field.UUID("owner_id", uuid.UUID{}),
		field.String("lost_reason").Optional().Nillable().MaxLen(chars(500)),
		field.Time("closed_at").Optional().Nillable(),
	}
}

// Indexes of the Opportunity: the default list (newest first), a
// customer's, an owner's, a stage's. The owner's ends in the list's
// keyset (created_at, id), so the owner branch of listOpportunities'
// scope (customer_id IN the customers one sees OR owner_id = …) and its
// ownerId filter seek the page by the whole cursor. (customer_id stays
// alone: extended by the keyset, SQLite's planner, which has no
// statistics, serves the customer branch by a scan of created_at
// instead.)
func (Opportunity) Indexes() []ent.Index {
	return []ent.Index{
		index.Fields("created_at", "id"),
		index.Fields("customer_id"),
		index.Fields("owner_id", "created_at", "id"),
		index.Fields("stage_id"),
	}
}

// OpportunityStageChange is one move of an opportunity between stages
// (the first is its creation), for funnel and cycle-time analysis.
type OpportunityStageChange struct{ ent.Schema }

// Mixin of the OpportunityStageChange.
func (OpportunityStageChange) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the OpportunityStageChange.
func (OpportunityStageChange) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("opportunity_id", uuid.UUID{}).Immutable(),
		field.UUID("from_stage_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.UUID("to_stage_id", uuid.UUID{}).Immutable(),
		field.String("lost_reason").Optional().Nillable().Immutable(),
		field.Time("at").Immutable(),
		field.String("actor_type").Immutable(),
		field.UUID("actor_id", uuid.UUID{}).Optional().Nillable().Immutable(),
	}
}

// Indexes of the OpportunityStageChange.
func (OpportunityStageChange) Indexes() []ent.Index {
	return []ent.Index{index.Fields("opportunity_id", "at")}
}
