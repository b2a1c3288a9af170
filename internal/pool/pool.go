// Package pool is Shoal's pool engine: pools and their versioned rules, caps
// and counters, and every ownership operation (claim, return, assign,
// transfer, freeze, …). Each operation is one transaction that re-checks
// every rule under the right lock and writes one history row and one
// domain event; the decisions themselves are the pure functions of
// poolrules.
package pool

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
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
}

// NewService returns the pool engine reading time from clk.
func NewService(st *store.Store, clk clock.Clock, loc *time.Location) *Service {
	if loc == nil {
		loc = time.UTC
	}
	return &Service{store: st, clock: clk, loc: loc}
}

// Clock is the engine's clock.
func (s *Service) Clock() clock.Clock { return s.clock }

// DefaultPoolID is the fixed id of the default pool of a kind, so that
// replicas starting at once agree on one default pool.
func DefaultPoolID(kind string) uuid.UUID {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("https://shoal.dev/pools/default/"+kind))
}

// EnsureDefaults creates the default lead and customer pools when they do
// not exist yet. Their member list is empty, which means open to everyone,
// so a fresh install works without configuration.
func (s *Service) EnsureDefaults(ctx context.Context) error {
	names := map[string]string{"lead": "默认线索池 Default lead pool", "customer": "公海 Default customer pool"}
	for _, kind := range []string{"lead", "customer"} {
		err := s.store.Client.Pool.Create().
			SetID(DefaultPoolID(kind)).
			SetKind(entpool.Kind(kind)).
			SetName(names[kind]).
			SetIsDefault(true).
			OnConflict().DoNothing().Exec(ctx)
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("default %s pool: %w", kind, err)
		}
	}
	return nil
}

// isNoRows reports ent's answer to an upsert that did nothing.
func isNoRows(err error) bool {
	return err != nil && strings.Contains(err.Error(), "no rows in result set")
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

// IsMember reports whether the principal belongs to the pool: a pool with
// no member teams is open to everyone; otherwise the user's team or one of
// its ancestors must be a member.
func IsMember(p *auth.Principal, pl *ent.Pool) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	if len(pl.MemberTeamIds) == 0 {
		return true
	}
	for _, t := range pl.MemberTeamIds {
		if strings.Contains(p.TeamPath, "/"+t.String()+"/") {
			return true
		}
	}
	return false
}

// IsManager reports whether the principal manages the pool (admins manage
// every pool).
func IsManager(p *auth.Principal, pl *ent.Pool) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	return p.Role == auth.RoleAdmin || slices.Contains(pl.ManagerIds, p.ID)
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

// VisiblePoolIDs returns the pools of kind whose pooled records p may see:
// those he is a member or manager of (admins and auditors: all).
func (s *Service) VisiblePoolIDs(ctx context.Context, p *auth.Principal, kind string) ([]uuid.UUID, error) {
	pools, err := s.VisiblePools(ctx, p, kind)
	if err != nil {
		return nil, err
	}
	ids := make([]uuid.UUID, len(pools))
	for i, pl := range pools {
		ids[i] = pl.ID
	}
	return ids, nil
}

// VisiblePools is VisiblePoolIDs with the pools themselves, for callers
// that also need their settings (what each pool masks).
func (s *Service) VisiblePools(ctx context.Context, p *auth.Principal, kind string) ([]*ent.Pool, error) {
	pools, err := s.store.Reader.Pool.Query().Where(entpool.KindEQ(entpool.Kind(kind))).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list pools: %w", err)
	}
	var out []*ent.Pool
	for _, pl := range pools {
		switch {
		case p.Type == auth.ActorAPIKey:
			if p.PoolID == nil || *p.PoolID == pl.ID {
				out = append(out, pl)
			}
		case p.Role == auth.RoleAdmin || p.Role == auth.RoleAuditor || IsMember(p, pl) || IsManager(p, pl):
			out = append(out, pl)
		}
	}
	return out, nil
}

// side returns the client for reads inside tx that only inform a decision
// (pool rules, settings, teams, an owner's team path): tx's own view. On
// SQLite the reader pool would not do, since callers share transactions
// (see store.WithTx) and an earlier caller's change is not committed yet.
func (s *Service) side(tx *ent.Tx) *ent.Client {
	return tx.Client()
}
