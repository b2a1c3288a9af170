package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// Pool holds records of one kind (线索池 / 公海) with its current rules.
// Each rule change bumps RuleVersion and snapshots the rules into
// PoolRuleVersion, so history can say which version reclaimed a record.
type Pool struct{ ent.Schema }

// Mixin of the Pool.
func (Pool) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}, VersionMixin{}} }

// Fields of the Pool.
func (Pool) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("lead", "customer").Immutable(),
		field.String("name").NotEmpty().MaxLen(chars(200)),
		field.Bool("is_default").Default(false),
		field.JSON("member_team_ids", []uuid.UUID{}).Default([]uuid.UUID{}),
		field.JSON("manager_ids", []uuid.UUID{}).Default([]uuid.UUID{}),
		field.Int("rule_version").Default(1),
		field.Int("idle_days").Optional().Nillable(),
		field.Int("no_deal_days").Optional().Nillable(),
		field.Int("notify_days_before").Optional().Nillable(),
		field.Int("freeze_max_days").Optional().Nillable(),
		field.Bool("reclaim_dealt").Default(false),
		field.Int("claim_cooldown_days").Optional().Nillable(),
		field.Int("daily_claim_limit").Optional().Nillable(),
		field.Bool("claim_requires_approval").Default(false),
		field.Strings("visible_fields").Optional(),
		field.JSON("by_grade", map[string]GradeRule{}).Optional(),
		field.Enum("auto_assign").Values("off", "roundRobin", "leastLoaded").Default("off"),
		// LastAssignedID is where round-robin assignment continues.
		field.UUID("last_assigned_id", uuid.UUID{}).Optional().Nillable(),
	}
}

// GradeRule overrides idle and no-deal days for one customer grade.
type GradeRule struct {
	IdleDays   *int `json:"idleDays,omitempty"`
	NoDealDays *int `json:"noDealDays,omitempty"`
}

// Indexes of the Pool.
func (Pool) Indexes() []ent.Index {
	return []ent.Index{index.Fields("kind", "is_default")}
}

// PoolRuleVersion is a snapshot of a pool's rules at one version.
type PoolRuleVersion struct{ ent.Schema }

// Mixin of the PoolRuleVersion.
func (PoolRuleVersion) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}} }

// Fields of the PoolRuleVersion.
func (PoolRuleVersion) Fields() []ent.Field {
	return []ent.Field{
		field.UUID("pool_id", uuid.UUID{}).Immutable(),
		field.Int("version").Immutable(),
		field.JSON("rules", map[string]any{}).Immutable(),
		field.UUID("changed_by", uuid.UUID{}).Optional().Nillable().Immutable(),
		field.Time("created_at").Default(now).Immutable(),
	}
}

// Indexes of the PoolRuleVersion.
func (PoolRuleVersion) Indexes() []ent.Index {
	return []ent.Index{index.Fields("pool_id", "version").Unique()}
}
