// Package pool is Shoal's pool engine: pools and their versioned rules, caps
// and counters, and every ownership operation (claim, return, assign,
// transfer, freeze, …). Each operation is one transaction that re-checks
// every rule under the right lock and writes one history row and one
// domain event; the decisions themselves are the pure functions of
// poolrules.
package pool

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service runs the pool engine.
type Service struct {
	store *store.Store
	clock clock.Clock
	// loc is the zone in which "today" is counted for daily claim limits.
	loc *time.Location
	// cascaders move a customer's dependents on transfer.
	cascaders []Cascader
	// cache keeps pools and settings between transactions (SQLite only).
	cache ruleCache
	// queue re-judges records after a rule change (see SetRejudgeQueue).
	queue RejudgeQueue
	// approvals decides claim requests (see SetApprovals).
	approvals *approvals.Service
}

// NewService returns the pool engine reading time from clk.
func NewService(st *store.Store, clk clock.Clock, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	s := &Service{store: st, clock: clk, loc: loc}
	s.SetApprovals(approvals.NewService(st, clk))
	return s
}

// Approvals is the approval service claim requests are decided through;
// other subjects (quotes) register with it too.
func (s *Service) Approvals() *approvals.Service { return s.approvals }

// Clock is the engine's clock.
func (s *Service) Clock() clock.Clock { return s.clock }

// DefaultPoolID is the fixed id of the default pool of a kind, so that
// replicas starting at once agree on one default pool.
func DefaultPoolID(kind kinds.Kind) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://shoal.dev/pools/default/"+string(kind)))
}

// EnsureDefaults creates the default lead and customer pools when they do
// not exist yet. Their member list is empty, which means open to everyone,
// so a fresh install works without configuration.
func (s *Service) EnsureDefaults(ctx context.Context) error {
	for _, kind := range kinds.All {
		err := s.store.Client.Pool.Create().
			SetID(DefaultPoolID(kind)).
			SetKind(entpool.Kind(kind)).
			SetName(kind.Desc().DefaultPoolName).
			SetIsDefault(true).
			OnConflict().DoNothing().Exec(ctx)
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("default %s pool: %w", kind, err)
		}
	}
	return nil
}

// isNoRows reports ent's answer to an upsert that did nothing: the
// statement's RETURNING gave no row.
func isNoRows(err error) bool {
	return errors.Is(err, stdsql.ErrNoRows)
}

// Get returns a pool (pools are visible to everyone logged in).
func (s *Service) Get(ctx context.Context, id uuid.UUID) (*ent.Pool, error) {
	p, err := s.store.Reader.Pool.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("pool")
	}
	if err != nil {
		return nil, fmt.Errorf("get pool: %w", err)
	}
	return p, nil
}

// Kind returns the kind of a pool; it is auth.PoolChecker.
func (s *Service) Kind(ctx context.Context, id uuid.UUID) (string, error) {
	p, err := s.Get(ctx, id)
	if err != nil {
		return "", err
	}
	return string(p.Kind), nil
}

// ScopePool is what authz needs to know of a pool.
func ScopePool(pl *ent.Pool) authz.Pool { return authz.PoolOf(pl) }

// IsManager is authz.IsManager for a pool row.
func IsManager(p *auth.Principal, pl *ent.Pool) bool { return authz.IsManager(p, ScopePool(pl)) }

// scopeOf is p's scope over the records of one pool, for an operation on
// a record already loaded.
func scopeOf(p *auth.Principal, pl *ent.Pool) authz.Scope {
	return authz.NewScope(p, []authz.Pool{ScopePool(pl)})
}

// Rules turns a pool row into the rule set the pure decisions take.
func Rules(pl *ent.Pool) poolrules.Rules {
	r := poolrules.Rules{
		IdleDays:              pl.IdleDays,
		NoDealDays:            pl.NoDealDays,
		NotifyDaysBefore:      pl.NotifyDaysBefore,
		FreezeMaxDays:         pl.FreezeMaxDays,
		ReclaimDealt:          pl.ReclaimDealt,
		ClaimCooldownDays:     pl.ClaimCooldownDays,
		DailyClaimLimit:       pl.DailyClaimLimit,
		ClaimRequiresApproval: pl.ClaimRequiresApproval,
	}
	if len(pl.ByGrade) > 0 {
		r.ByGrade = map[string]poolrules.GradeRule{}
		for g, gr := range pl.ByGrade {
			r.ByGrade[g] = poolrules.GradeRule{IdleDays: gr.IdleDays, NoDealDays: gr.NoDealDays}
		}
	}
	return r
}

// Scope is p's scope over the records of kind, reading the kind's pools
// only when it depends on them.
func (s *Service) Scope(ctx context.Context, p *auth.Principal, kind string) (authz.Scope, error) {
	return authz.LoadScope(ctx, p, func(ctx context.Context) ([]authz.Pool, error) {
		pools, err := s.store.Reader.Pool.Query().Where(entpool.KindEQ(entpool.Kind(kind))).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("list pools: %w", err)
		}
		out := make([]authz.Pool, len(pools))
		for i, pl := range pools {
			out[i] = ScopePool(pl)
		}
		return out, nil
	})
}

// side returns the client for reads inside tx that only inform a decision
// (pool rules, settings, teams, an owner's team path): tx's own view. On
// SQLite the reader pool would not do, since callers share transactions
// (see store.WithTx) and an earlier caller's change is not committed yet.
func (s *Service) side(tx *ent.Tx) *ent.Client {
	return tx.Client()
}
