// Package opportunities is the sales pipeline: admin-configurable
// pipelines of stages (销售阶段), and opportunities (商机) on customers
// moving through them. A won stage marks the customer dealt through the
// pool engine in the same transaction, which stops the no-deal reclaim;
// a customer's transfer moves its open opportunities (a pool.Cascader).
package opportunities

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/opportunity"
	entpipeline "github.com/shoalcrm/shoal/ent/pipeline"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/store"
)

// Stage kinds.
const (
	KindOpen = "open"
	KindWon  = "won"
	KindLost = "lost"
)

var (
	errPipelineNotFound = apperr.NotFoundf("pipeline")
	errStageInUse       = apperr.New(apperr.Conflict, "stage_in_use", "opportunities are at this stage; retire it instead of removing it")
	errPipelineName     = apperr.New(apperr.Conflict, "pipeline_name_taken", "another pipeline has this name")
)

// defaultStages is the default pipeline of the first start.
var defaultStages = []schema.Stage{
	{Name: "初步接洽", Code: "qualification", Probability: 10, Kind: KindOpen},
	{Name: "需求确认", Code: "needs", Probability: 30, Kind: KindOpen},
	{Name: "方案报价", Code: "proposal", Probability: 60, Kind: KindOpen},
	{Name: "谈判", Code: "negotiation", Probability: 80, Kind: KindOpen},
	{Name: "赢单", Code: "won", Probability: 100, Kind: KindWon},
	{Name: "输单", Code: "lost", Probability: 0, Kind: KindLost},
}

// DefaultPipelineName names the default pipeline.
const DefaultPipelineName = "默认销售流程"

// EnsureDefault makes the default pipeline if there is none (every replica
// may call it at start; the unique name keeps one).
func (s *Service) EnsureDefault(ctx context.Context) error {
	have, err := s.store.Reader.Pipeline.Query().Where(entpipeline.IsDefault(true)).Exist(ctx)
	if err != nil || have {
		return err
	}
	stages := slices.Clone(defaultStages)
	for i := range stages {
		stages[i].ID = schema.NewID()
	}
	now := s.now()
	err = s.store.Client.Pipeline.Create().SetName(DefaultPipelineName).SetIsDefault(true).SetStages(stages).
		SetCreatedAt(now).SetUpdatedAt(now).OnConflict().DoNothing().Exec(ctx)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("default pipeline: %w", err)
	}
	return nil
}

// StageInput is a stage as a client gives it; ID names an existing one.
type StageInput struct {
	ID          *uuid.UUID
	Name        string
	Code        *string
	Probability int
	Kind        string
	Retired     bool
}

// checkStages checks a stage list and gives each new stage an id. old are
// the pipeline's stages before (nil for a new pipeline).
func checkStages(in []StageInput, old []schema.Stage) ([]schema.Stage, error) {
	out := make([]schema.Stage, len(in))
	names := map[string]bool{}
	live := map[string]int{}
	for i, st := range in {
		name := strings.TrimSpace(st.Name)
		if name == "" {
			return nil, apperr.Invalidf(fmt.Sprintf("body/stages/%d/name", i), "required", "a stage needs a name")
		}
		if names[name] {
			return nil, apperr.Invalidf(fmt.Sprintf("body/stages/%d/name", i), "duplicate", "stage names are unique within a pipeline")
		}
		names[name] = true
		if st.Probability < 0 || st.Probability > 100 {
			return nil, apperr.Invalidf(fmt.Sprintf("body/stages/%d/probability", i), "range", "probability is 0 to 100")
		}
		if st.Kind != KindOpen && st.Kind != KindWon && st.Kind != KindLost {
			return nil, apperr.Invalidf(fmt.Sprintf("body/stages/%d/kind", i), "enum", "kind is open, won or lost")
		}
		id := schema.NewID()
		if st.ID != nil {
			if !slices.ContainsFunc(old, func(o schema.Stage) bool { return o.ID == *st.ID }) {
				return nil, apperr.Invalidf(fmt.Sprintf("body/stages/%d/id", i), "unknown_stage", "no stage of this pipeline has this id")
			}
			if slices.ContainsFunc(out[:i], func(o schema.Stage) bool { return o.ID == *st.ID }) {
				return nil, apperr.Invalidf(fmt.Sprintf("body/stages/%d/id", i), "duplicate", "a stage is listed twice")
			}
			id = *st.ID
		}
		code := ""
		if st.Code != nil {
			code = *st.Code
		}
		out[i] = schema.Stage{ID: id, Name: name, Code: code, Probability: st.Probability, Kind: st.Kind, Retired: st.Retired}
		if !st.Retired {
			live[st.Kind]++
		}
	}
	for _, k := range []string{KindOpen, KindWon, KindLost} {
		if live[k] == 0 {
			return nil, apperr.Invalidf("body/stages", "missing_kind", fmt.Sprintf("a pipeline needs a stage of kind %s that is not retired", k))
		}
	}
	return out, nil
}

// CreatePipeline makes a pipeline.
func (s *Service) CreatePipeline(ctx context.Context, p *auth.Principal, name string, stages []StageInput) (*ent.Pipeline, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return nil, apperr.Invalidf("body/name", "required", "name is required")
	}
	st, err := checkStages(stages, nil)
	if err != nil {
		return nil, err
	}
	var out *ent.Pipeline
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		taken, err := tx.Pipeline.Query().Where(entpipeline.Name(name)).Exist(ctx)
		if err != nil {
			return fmt.Errorf("pipeline name: %w", err)
		}
		if taken {
			return errPipelineName
		}
		now := s.now()
		out, err = tx.Pipeline.Create().SetName(name).SetStages(st).SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
			return errPipelineName
		}
		if err != nil {
			return fmt.Errorf("create pipeline: %w", err)
		}
		return s.emit(ctx, tx, p, events.PipelineCreated, events.KindPipeline, out.ID, events.Pipeline{Name: name})
	})
	return out, err
}

// GetPipeline returns a pipeline.
func (s *Service) GetPipeline(ctx context.Context, id uuid.UUID) (*ent.Pipeline, error) {
	pl, err := s.store.Reader.Pipeline.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, errPipelineNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get pipeline: %w", err)
	}
	return pl, nil
}

// ListPipelines returns every pipeline, the default first.
func (s *Service) ListPipelines(ctx context.Context) ([]*ent.Pipeline, error) {
	rows, err := s.store.Reader.Pipeline.Query().Order(ent.Desc(entpipeline.FieldIsDefault), ent.Asc(entpipeline.FieldCreatedAt), ent.Asc(entpipeline.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pipelines: %w", err)
	}
	return rows, nil
}

// UpdatePipeline renames a pipeline or replaces its stages. A stage left
// out is deleted unless an opportunity is at it (stage_in_use).
func (s *Service) UpdatePipeline(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, name *string, stages []StageInput) (*ent.Pipeline, error) {
	var out *ent.Pipeline
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		cur, err := store.ForUpdate(s.store, tx.Pipeline.Query().Where(entpipeline.ID(id))).Only(ctx)
		if ent.IsNotFound(err) {
			return errPipelineNotFound
		}
		if err != nil {
			return fmt.Errorf("load pipeline: %w", err)
		}
		if err := etag.Check(ifMatch, cur.Version); err != nil {
			return err
		}
		m := tx.Pipeline.UpdateOne(cur)
		if name != nil {
			n := strings.TrimSpace(*name)
			if n == "" {
				return apperr.Invalidf("body/name", "required", "name is required")
			}
			if n != cur.Name {
				taken, err := tx.Pipeline.Query().Where(entpipeline.Name(n), entpipeline.IDNEQ(id)).Exist(ctx)
				if err != nil {
					return fmt.Errorf("pipeline name: %w", err)
				}
				if taken {
					return errPipelineName
				}
			}
			m.SetName(n)
		}
		if stages != nil {
			st, err := checkStages(stages, cur.Stages)
			if err != nil {
				return err
			}
			var gone []uuid.UUID
			for _, o := range cur.Stages {
				if !slices.ContainsFunc(st, func(n schema.Stage) bool { return n.ID == o.ID }) {
					gone = append(gone, o.ID)
				}
			}
			if len(gone) > 0 {
				used, err := tx.Opportunity.Query().Where(opportunity.PipelineID(id), opportunity.StageIDIn(gone...)).Exist(ctx)
				if err != nil {
					return fmt.Errorf("stages in use: %w", err)
				}
				if used {
					return errStageInUse
				}
			}
			// A stage's kind is kept on its opportunities: follow a
			// change of it.
			for _, n := range st {
				for _, o := range cur.Stages {
					if o.ID == n.ID && o.Kind != n.Kind {
						if _, err := tx.Opportunity.Update().Where(opportunity.StageID(n.ID)).
							SetStageKind(opportunity.StageKind(n.Kind)).Save(ctx); err != nil {
							return fmt.Errorf("stage kind: %w", err)
						}
					}
				}
			}
			m.SetStages(st)
		}
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = cur
			return nil
		}
		if out, err = m.AddVersion(1).SetUpdatedAt(s.now()).Save(ctx); err != nil {
			if store.IsUniqueViolation(err) || ent.IsConstraintError(err) {
				return errPipelineName
			}
			return fmt.Errorf("update pipeline: %w", err)
		}
		return s.emit(ctx, tx, p, events.PipelineUpdated, events.KindPipeline, id, events.Changed{Fields: fields})
	})
	return out, err
}

func stageOf(pl *ent.Pipeline, id uuid.UUID) (schema.Stage, bool) {
	for _, st := range pl.Stages {
		if st.ID == id {
			return st, true
		}
	}
	return schema.Stage{}, false
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
