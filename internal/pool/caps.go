package pool

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/poolrules"
	"github.com/shoalcrm/shoal/internal/store"
)

// Settings are the global defaults (global caps and whether dealt customers
// count against the customer cap).
type Settings struct {
	MaxOwnedLeads     *int `json:"maxOwnedLeads"`
	MaxOwnedCustomers *int `json:"maxOwnedCustomers"`
	MaxFrozen         *int `json:"maxFrozen"`
	CapCountsDealt    bool `json:"capCountsDealt"`
	// MinQuoteMarginPercent is the least margin (a decimal percentage)
	// a quote's product line may have to be sent without approval (the
	// cost gate, internal/quotes); nil is 0: no line below its cost.
	MinQuoteMarginPercent *string `json:"minQuoteMarginPercent,omitempty"`
	// MinQuoteMarginPercentByCategory overrides it per product category.
	MinQuoteMarginPercentByCategory map[string]string `json:"minQuoteMarginPercentByCategory,omitempty"`
	// Version is the settings row's version (its ETag); it is a column,
	// not part of the stored value.
	Version int `json:"-"`
}

const settingsKey = "global"

// loadSettings reads the global settings inside tx (or outside, with the
// reader client).
func loadSettings(ctx context.Context, c *ent.SettingClient) (Settings, error) {
	row, err := c.Get(ctx, settingsKey)
	if ent.IsNotFound(err) {
		return Settings{Version: 1}, nil // never changed: the defaults, version 1
	}
	if err != nil {
		return Settings{}, fmt.Errorf("load settings: %w", err)
	}
	raw, err := json.Marshal(row.Value)
	if err != nil {
		return Settings{}, fmt.Errorf("settings: %w", err)
	}
	st := Settings{Version: row.Version}
	if err := json.Unmarshal(raw, &st); err != nil {
		return Settings{}, fmt.Errorf("settings: %w", err)
	}
	return st, nil
}

// LoadSettings reads the global settings with c: a transaction's client,
// for rules that must read them with the change they govern.
func LoadSettings(ctx context.Context, c *ent.SettingClient) (Settings, error) {
	return loadSettings(ctx, c)
}

// Settings returns the global settings.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	return loadSettings(ctx, s.store.Reader.Setting)
}

// Caps are a user's resolved caps (nil = unlimited).
type Caps struct {
	// Owned caps the records of each kind he owns.
	Owned  map[kinds.Kind]*int
	Frozen *int
}

// For returns the cap that applies to records of kind.
func (c Caps) For(kind kinds.Kind) *int {
	return c.Owned[kind]
}

// resolveCaps resolves a user's caps: his override, else the nearest team
// (his own, then its ancestors) that sets one, else the global default.
func (s *Service) resolveCaps(ctx context.Context, tx *ent.Tx, u *ent.User, st Settings) (Caps, error) {
	chain, err := s.teamChain(ctx, tx, u.TeamPath)
	if err != nil {
		return Caps{}, err
	}
	pick := func(user *int, team func(*ent.Team) *int, global *int) *int {
		if user != nil {
			return user
		}
		for _, t := range chain {
			if v := team(t); v != nil {
				return v
			}
		}
		return global
	}
	caps := Caps{Owned: make(map[kinds.Kind]*int, len(kinds.All)),
		Frozen: pick(u.MaxFrozen, func(t *ent.Team) *int { return t.MaxFrozen }, st.MaxFrozen)}
	for _, k := range kinds.All {
		t, err := tableOf(k)
		if err != nil {
			return Caps{}, err
		}
		d := k.Desc()
		caps.Owned[k] = pick(d.UserCap(u), d.TeamCap, t.defaultCap(st))
	}
	return caps, nil
}

// teamChain returns the teams on a team path, nearest first (the user's
// own team, then its ancestors up to the root).
func (s *Service) teamChain(ctx context.Context, tx *ent.Tx, path string) ([]*ent.Team, error) {
	if path == "" {
		return nil, nil
	}
	var ids []uuid.UUID
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		if id, err := uuid.Parse(part); err == nil {
			ids = append(ids, id)
		}
	}
	teams, err := s.teams(ctx, tx, ids)
	if err != nil {
		return nil, err
	}
	byID := map[uuid.UUID]*ent.Team{}
	for _, t := range teams {
		byID[t.ID] = t
	}
	var chain []*ent.Team
	for i := len(ids) - 1; i >= 0; i-- { // nearest first
		if t := byID[ids[i]]; t != nil {
			chain = append(chain, t)
		}
	}
	return chain, nil
}

// holder is a user locked for an ownership change, with his counters and
// resolved caps.
type holder struct {
	user *ent.User
	caps Caps
	// taking is set when the record being taken is already added to
	// the user's counter (claimHolder): user's counters are as they were
	// before, and take must not add it again.
	taking bool
}

func (h *holder) owned(kind kinds.Kind) int {
	return kind.Desc().Owned(h.user)
}

// lockHolder loads (and on PostgreSQL locks) a user row for an ownership
// change. Every transaction locks the record first and then its users in
// id order, so lock waits cannot form a cycle.
func (s *Service) lockHolder(ctx context.Context, tx *ent.Tx, id uuid.UUID, st Settings) (*holder, error) {
	u, err := store.ForUpdate(s.store, tx.User.Query().Where(user.ID(id))).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.Invalidf("body/ownerId", "unknown_user", "no such user")
	}
	if err != nil {
		return nil, fmt.Errorf("lock user: %w", err)
	}
	caps, err := s.resolveCaps(ctx, tx, u, st)
	if err != nil {
		return nil, err
	}
	return &holder{user: u, caps: caps}, nil
}

// claimHolder is lockHolder for a claim of a record of kind that counts
// against the claimer's cap. It locks his row and adds the record to his
// counter in one statement (UPDATE … RETURNING), a round trip fewer than
// reading the row now and updating it in take. The holder's counters are
// those from before the claim, which is what the cap check compares; a
// claim that then fails a rule rolls back, and the increment with it.
func (s *Service) claimHolder(ctx context.Context, tx *ent.Tx, id uuid.UUID, kind kinds.Kind, st Settings) (*holder, error) {
	counter := kind.Desc().OwnedCounter
	u := &ent.User{ID: id}
	var team uuid.NullUUID
	var maxLeads, maxCustomers, maxFrozen stdsql.NullInt64
	found, err := s.store.AddReturning(ctx, tx, user.Table, user.FieldID, id, counter, 1,
		[]string{user.FieldName, user.FieldTeamID, user.FieldTeamPath, user.FieldActive, user.FieldOwnedLeads,
			user.FieldOwnedCustomers, user.FieldMaxOwnedLeads, user.FieldMaxOwnedCustomers, user.FieldMaxFrozen},
		&u.Name, &team, &u.TeamPath, &u.Active, &u.OwnedLeads, &u.OwnedCustomers, &maxLeads, &maxCustomers, &maxFrozen)
	if err != nil {
		return nil, fmt.Errorf("count claim: %w", err)
	}
	if !found {
		return nil, apperr.Invalidf("body/ownerId", "unknown_user", "no such user")
	}
	if team.Valid {
		u.TeamID = &team.UUID
	}
	u.MaxOwnedLeads, u.MaxOwnedCustomers, u.MaxFrozen = nullInt(maxLeads), nullInt(maxCustomers), nullInt(maxFrozen)
	// The statement returned the counter after the increment.
	*kind.Desc().OwnedRef(u)--
	caps, err := s.resolveCaps(ctx, tx, u, st)
	if err != nil {
		return nil, err
	}
	return &holder{user: u, caps: caps, taking: true}, nil
}

func nullInt(v stdsql.NullInt64) *int {
	if !v.Valid {
		return nil
	}
	n := int(v.Int64)
	return &n
}

// underCap reports whether the holder may take one more record of kind.
func (h *holder) underCap(kind kinds.Kind) bool {
	return poolrules.UnderCap(h.owned(kind), h.caps.For(kind))
}

// adjust changes a user's owned counter for kind by delta, in tx.
func adjust(ctx context.Context, tx *ent.Tx, id uuid.UUID, kind kinds.Kind, delta int) error {
	if delta == 0 {
		return nil
	}
	upd := tx.User.Update().Where(user.ID(id))
	if err := upd.Mutation().AddField(kind.Desc().OwnedCounter, delta); err != nil {
		return fmt.Errorf("adjust counters: %w", err)
	}
	if err := upd.Exec(ctx); err != nil {
		return fmt.Errorf("adjust counters: %w", err)
	}
	return nil
}
