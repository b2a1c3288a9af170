package approvals

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/approvalflow"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/store"
)

// A flow is an ordered list of rules per subject kind. A rule with a
// condition (when) applies to the subjects that meet it; a rule without
// one applies when the subject's own rule requires approval (a quote
// below margin, a claim in an approval pool). The first rule that applies
// names the steps:
//
//   - a conditional rule that holds requires approval by itself (a
//     discount above 20% needs the supervisor, then an admin);
//   - otherwise, when the subject's own rule requires approval, the first
//     unconditional rule decides (the built-in flow: the supervisor);
//   - otherwise no approval is needed.

// Facts are what conditions test. Nil facts never meet a condition.
type Facts struct {
	// DiscountPercent is the document's overall discount: discount /
	// subtotal × 100.
	DiscountPercent *decimal.Decimal
	Total           *money.Money
	// MarginPercent is the document's margin over its costed lines.
	MarginPercent *decimal.Decimal
}

// Plan is who must approve a subject, and the rule that says so. No steps:
// no approval needed.
type Plan struct {
	Rule  string
	Steps []schema.ApprovalStep
}

// Needed reports whether the plan asks for approval.
func (p Plan) Needed() bool { return len(p.Steps) > 0 }

// Plan resolves the flow of kind for a subject with facts; ownRule names
// the subject's own rule when it requires approval ("" when it does not).
func (s *Service) Plan(ctx context.Context, tx *ent.Tx, kind string, facts Facts, ownRule string) (Plan, error) {
	rules, _, err := s.flow(ctx, tx.ApprovalFlow, kind)
	if err != nil {
		return Plan{}, err
	}
	for _, r := range rules {
		if r.When != nil && holds(*r.When, facts) {
			return Plan{Rule: r.Name, Steps: r.Steps}, nil
		}
	}
	if ownRule == "" {
		return Plan{}, nil
	}
	for _, r := range rules {
		if r.When == nil {
			return Plan{Rule: ownRule, Steps: r.Steps}, nil
		}
	}
	// A flow without an unconditional rule falls back to the built-in
	// one, so that the subject's own rule is never waived by omission.
	for _, r := range s.builtin[kind] {
		if r.When == nil {
			return Plan{Rule: ownRule, Steps: r.Steps}, nil
		}
	}
	return Plan{}, fmt.Errorf("approval flow of %s: no unconditional rule", kind)
}

func holds(c schema.FlowCondition, f Facts) bool {
	ok := false
	if c.DiscountPercentAbove != nil {
		v, err := decimal.NewFromString(*c.DiscountPercentAbove)
		if err != nil || f.DiscountPercent == nil || !f.DiscountPercent.GreaterThan(v) {
			return false
		}
		ok = true
	}
	if c.TotalAbove != nil {
		v, err := money.Parse(*c.TotalAbove)
		if err != nil || f.Total == nil || f.Total.Cmp(v) <= 0 {
			return false
		}
		ok = true
	}
	if c.MarginPercentBelow != nil {
		v, err := decimal.NewFromString(*c.MarginPercentBelow)
		if err != nil || f.MarginPercent == nil || !f.MarginPercent.LessThan(v) {
			return false
		}
		ok = true
	}
	return ok
}

// Flow is one subject kind's flow.
type Flow struct {
	SubjectKind string
	Rules       []schema.FlowRule
	// Version is the flow's ETag: 1 while it is the built-in one.
	Version   int
	IsDefault bool
	Row       *ent.ApprovalFlow
}

// flow reads kind's rules: the stored ones, else the built-in ones.
func (s *Service) flow(ctx context.Context, c *ent.ApprovalFlowClient, kind string) ([]schema.FlowRule, *ent.ApprovalFlow, error) {
	row, err := c.Get(ctx, kind)
	if ent.IsNotFound(err) {
		return s.builtin[kind], nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("approval flow: %w", err)
	}
	return row.Rules, row, nil
}

// Kinds lists the subject kinds, sorted.
func (s *Service) Kinds() []string {
	out := make([]string, 0, len(s.builtin))
	for k := range s.builtin {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Flows lists every subject kind's flow.
func (s *Service) Flows(ctx context.Context) ([]Flow, error) {
	out := []Flow{}
	for _, k := range s.Kinds() {
		rules, row, err := s.flow(ctx, s.store.Reader.ApprovalFlow, k)
		if err != nil {
			return nil, err
		}
		out = append(out, flowOf(k, rules, row))
	}
	return out, nil
}

// GetFlow returns one kind's flow.
func (s *Service) GetFlow(ctx context.Context, kind string) (Flow, error) {
	if _, ok := s.builtin[kind]; !ok {
		return Flow{}, apperr.NotFoundf("approval flow")
	}
	rules, row, err := s.flow(ctx, s.store.Reader.ApprovalFlow, kind)
	if err != nil {
		return Flow{}, err
	}
	return flowOf(kind, rules, row), nil
}

func flowOf(kind string, rules []schema.FlowRule, row *ent.ApprovalFlow) Flow {
	f := Flow{SubjectKind: kind, Rules: rules, Version: 1, IsDefault: row == nil, Row: row}
	if row != nil {
		f.Version = row.Version
	}
	return f
}

// Limits of a flow.
const (
	MaxRules = 20
	MaxSteps = 5
)

// UpdateFlow replaces kind's rules; ifMatch must name the version read.
// Pending requests keep the steps they were opened with.
func (s *Service) UpdateFlow(ctx context.Context, p *auth.Principal, kind string, ifMatch *string, rules []schema.FlowRule) (Flow, error) {
	if _, ok := s.builtin[kind]; !ok {
		return Flow{}, apperr.NotFoundf("approval flow")
	}
	var out Flow
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if err := checkRules(ctx, tx, kind, rules); err != nil {
			return err
		}
		// Lock the row (making it first), so two changes cannot both pass
		// the version check.
		now := s.now()
		if err := tx.ApprovalFlow.Create().SetID(kind).SetRules(s.builtin[kind]).SetCreatedAt(now).SetUpdatedAt(now).
			OnConflictColumns(approvalflow.FieldID).DoNothing().Exec(ctx); err != nil && !errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("ensure flow: %w", err)
		}
		row, err := store.ForUpdate(s.store, tx.ApprovalFlow.Query().Where(approvalflow.ID(kind))).Only(ctx)
		if err != nil {
			return fmt.Errorf("lock flow: %w", err)
		}
		// The built-in flow is version 1, like the row made for it.
		if err := etag.Check(ifMatch, row.Version); err != nil {
			return err
		}
		row, err = tx.ApprovalFlow.UpdateOne(row).SetRules(rules).AddVersion(1).SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("save flow: %w", err)
		}
		out = flowOf(kind, rules, row)
		return events.Emit(ctx, tx, events.Event{Type: events.ApprovalFlowUpdated, SubjectKind: events.KindApprovalFlow,
			SubjectID: FlowSubjectID(kind), Actor: p.EventActor(), OccurredAt: now,
			Data: events.ApprovalFlow{SubjectKind: kind, Rules: len(rules)}})
	})
	return out, err
}

// FlowSubjectID is a flow's subject id in events and audit: flows are
// keyed by kind, so the id is derived from it.
func FlowSubjectID(kind string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("shoal:approval-flow:"+kind))
}

// checkRules validates a flow: names unique, steps 1 to MaxSteps with
// approvers that exist for kind, conditions that parse.
func checkRules(ctx context.Context, tx *ent.Tx, kind string, rules []schema.FlowRule) error {
	if len(rules) == 0 || len(rules) > MaxRules {
		return apperr.Invalidf("body/rules", "invalid", fmt.Sprintf("a flow has 1 to %d rules", MaxRules))
	}
	names := map[string]bool{}
	for i, r := range rules {
		at := fmt.Sprintf("body/rules/%d", i)
		r.Name = strings.TrimSpace(r.Name)
		if r.Name == "" || names[r.Name] {
			return apperr.Invalidf(at+"/name", "invalid", "rule names are required and unique")
		}
		names[r.Name] = true
		rules[i].Name = r.Name
		if r.When != nil {
			if kind != SubjectQuote {
				return apperr.Invalidf(at+"/when", "invalid", "only quote flows take conditions")
			}
			if err := checkCondition(at+"/when", *r.When); err != nil {
				return err
			}
		}
		if len(r.Steps) == 0 || len(r.Steps) > MaxSteps {
			return apperr.Invalidf(at+"/steps", "invalid", fmt.Sprintf("a rule has 1 to %d steps", MaxSteps))
		}
		for j, st := range r.Steps {
			sat := fmt.Sprintf("%s/steps/%d", at, j)
			switch st.Approver {
			case ApproverSupervisor, ApproverAdmin:
				if st.UserID != nil {
					return apperr.Invalidf(sat+"/userId", "invalid", "userId is only for a user step")
				}
			case ApproverPoolManager:
				if kind != SubjectClaimRequest || st.UserID != nil {
					return apperr.Invalidf(sat+"/approver", "invalid", "pool_manager steps are for claim requests")
				}
			case ApproverUser:
				if st.UserID == nil {
					return apperr.Invalidf(sat+"/userId", "required", "a user step names its userId")
				}
				ok, err := tx.User.Query().Where(user.ID(*st.UserID), user.Active(true),
					user.RoleIn(auth.RoleSupervisor, auth.RoleAdmin)).Exist(ctx)
				if err != nil {
					return fmt.Errorf("approver: %w", err)
				}
				if !ok {
					return apperr.Invalidf(sat+"/userId", "unknown_user", "no active supervisor or admin has this id")
				}
			default:
				return apperr.Invalidf(sat+"/approver", "invalid", "unknown approver")
			}
			rules[i].Steps[j].Status = ""
		}
	}
	return nil
}

func checkCondition(at string, c schema.FlowCondition) error {
	if c.DiscountPercentAbove == nil && c.TotalAbove == nil && c.MarginPercentBelow == nil {
		return apperr.Invalidf(at, "invalid", "a condition sets at least one test")
	}
	pct := func(name string, v *string) error {
		if v == nil {
			return nil
		}
		d, err := decimal.NewFromString(*v)
		if err != nil || d.LessThan(decimal.NewFromInt(-1000)) || d.GreaterThan(decimal.NewFromInt(100)) {
			return apperr.Invalidf(at+"/"+name, "invalid", "a percentage is a decimal up to 100")
		}
		return nil
	}
	if err := pct("discountPercentAbove", c.DiscountPercentAbove); err != nil {
		return err
	}
	if err := pct("marginPercentBelow", c.MarginPercentBelow); err != nil {
		return err
	}
	if c.TotalAbove != nil {
		if _, err := money.Parse(*c.TotalAbove); err != nil {
			return apperr.Invalidf(at+"/totalAbove", "invalid", "an amount is a decimal string like 1234.50")
		}
	}
	return nil
}
