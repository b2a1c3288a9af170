package pool

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"entgo.io/ent/dialect"
	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/setting"
	"github.com/shoalcrm/shoal/ent/team"
	"github.com/shoalcrm/shoal/internal/store"
)

// ruleCache keeps the pools, global settings and teams that ownership
// transactions read, between transactions, on SQLite. Every operation
// reads its record's pool and the settings (and the teams of the users it
// checks caps for), and they almost never change: on SQLite's one writer,
// reading them again was a tenth of a claim's time. The store's rules
// generation tells when a kept value may be stale
// (store.RulesGeneration); then everything is read again inside the
// transaction, as on PostgreSQL, where nothing is kept.
//
// Kept rows are shared between transactions: callers only read them.
type ruleCache struct {
	mu       sync.Mutex
	gen      uint64
	pools    map[uuid.UUID]*ent.Pool
	settings *Settings
	// teams maps the ids looked up to the team, or nil for none.
	teams map[uuid.UUID]*ent.Team
}

// at drops what was kept unless it was read at gen. c.mu must be held.
func (c *ruleCache) at(gen uint64) {
	if c.gen != gen || c.pools == nil {
		c.gen, c.pools, c.settings, c.teams = gen, map[uuid.UUID]*ent.Pool{}, nil, map[uuid.UUID]*ent.Team{}
	}
}

// pool returns the kept pool id and settings if they were read at gen.
func (c *ruleCache) pool(gen uint64, id uuid.UUID) (*ent.Pool, Settings, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at(gen)
	pl, ok := c.pools[id]
	if !ok || c.settings == nil {
		return nil, Settings{}, false
	}
	return pl, *c.settings, true
}

func (c *ruleCache) keepPool(gen uint64, pl *ent.Pool, st Settings) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at(gen)
	c.pools[pl.ID] = pl
	c.settings = &st
}

// lookupTeams returns the kept teams with ids if every id was looked up at
// gen.
func (c *ruleCache) lookupTeams(gen uint64, ids []uuid.UUID) ([]*ent.Team, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at(gen)
	out := make([]*ent.Team, 0, len(ids))
	for _, id := range ids {
		t, ok := c.teams[id]
		if !ok {
			return nil, false
		}
		if t != nil {
			out = append(out, t)
		}
	}
	return out, true
}

func (c *ruleCache) keepTeams(gen uint64, ids []uuid.UUID, found []*ent.Team) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at(gen)
	for _, id := range ids {
		c.teams[id] = nil
	}
	for _, t := range found {
		c.teams[t.ID] = t
	}
}

// rules returns the pool id and the global settings as tx sees them: kept
// ones when nothing may have changed since they were read, else read in tx.
func (s *Service) rules(ctx context.Context, tx *ent.Tx, id uuid.UUID) (*ent.Pool, Settings, error) {
	gen, keep := s.store.RulesGeneration()
	if keep {
		if pl, st, ok := s.cache.pool(gen, id); ok {
			return pl, st, nil
		}
	}
	pl, st, err := s.loadRules(ctx, tx, id)
	if err != nil {
		return nil, Settings{}, err
	}
	if now, _ := s.store.RulesGeneration(); keep && now == gen {
		s.cache.keepPool(gen, pl, st)
	}
	return pl, st, nil
}

// teams returns the teams among ids as tx sees them, kept or read.
func (s *Service) teams(ctx context.Context, tx *ent.Tx, ids []uuid.UUID) ([]*ent.Team, error) {
	gen, keep := s.store.RulesGeneration()
	if keep {
		if ts, ok := s.cache.lookupTeams(gen, ids); ok {
			return ts, nil
		}
	}
	ts, err := tx.Team.Query().Where(team.IDIn(ids...)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("load teams: %w", err)
	}
	if now, _ := s.store.RulesGeneration(); keep && now == gen {
		s.cache.keepTeams(gen, ids, ts)
	}
	return ts, nil
}

// settingsColumn is the name under which loadRules selects the settings.
const settingsColumn = "global_settings"

// loadRules reads a pool and the global settings in tx. On PostgreSQL,
// where they are read in every ownership transaction, it reads both in one
// statement (the settings as a scalar subquery beside the pool's columns),
// one round trip fewer. SQLite keeps them between transactions instead,
// and its driver cannot tell ent how to scan a subquery's column.
func (s *Service) loadRules(ctx context.Context, tx *ent.Tx, id uuid.UUID) (*ent.Pool, Settings, error) {
	if s.store.Dialect != dialect.Postgres {
		pl, err := tx.Pool.Get(ctx, id)
		if err != nil {
			return nil, Settings{}, fmt.Errorf("load pool: %w", err)
		}
		st, err := loadSettings(ctx, tx.Setting)
		return pl, st, err
	}
	pl, err := tx.Pool.Query().Where(entpool.ID(id)).Modify(func(sel *sql.Selector) {
		sel.AppendSelectExprAs(store.ScalarSubquery(setting.FieldValue, setting.Table, setting.FieldID, settingsKey), settingsColumn)
	}).Only(ctx)
	if err != nil {
		return nil, Settings{}, fmt.Errorf("load pool: %w", err)
	}
	v, err := pl.Value(settingsColumn)
	if err != nil {
		return nil, Settings{}, fmt.Errorf("load settings: %w", err)
	}
	var raw []byte
	switch v := v.(type) {
	case nil:
		return pl, Settings{}, nil // never set: the defaults
	case string:
		raw = []byte(v)
	case []byte:
		raw = v
	default:
		return nil, Settings{}, fmt.Errorf("load settings: unexpected %T", v)
	}
	var st Settings
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, Settings{}, fmt.Errorf("settings: %w", err)
	}
	return pl, st, nil
}
