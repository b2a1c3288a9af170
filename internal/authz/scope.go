package authz

import (
	"context"
	"slices"
	"strings"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/auth"
)

// Reach is the set of users a principal reaches, in terms any query can
// apply: everyone, or one user, or anyone whose team path starts with a
// prefix (a supervisor's subtree), or the members of one team. It says
// whose records a principal sees (RecordReach) and whom he may look up in
// the directory (UserReach).
type Reach struct {
	// All means no restriction (admins, auditors).
	All bool
	// OwnerID, when set, admits this user (his own records).
	OwnerID *uuid.UUID
	// TeamPathPrefix, when set, admits anyone in that subtree.
	TeamPathPrefix string
	// TeamID, when set, admits users of exactly this team (a rep's
	// colleagues, for the directory only).
	TeamID *uuid.UUID
}

// None reports whether the reach admits nothing.
func (r Reach) None() bool {
	return !r.All && r.OwnerID == nil && r.TeamPathPrefix == "" && r.TeamID == nil
}

// Users is the reach as a predicate on the users table.
func (r Reach) Users() func(*sql.Selector) {
	return func(sel *sql.Selector) {
		if r.All {
			return
		}
		var or []*sql.Predicate
		if r.OwnerID != nil {
			or = append(or, sql.EQ(sel.C(user.FieldID), *r.OwnerID))
		}
		if r.TeamPathPrefix != "" {
			or = append(or, sql.HasPrefix(sel.C(user.FieldTeamPath), r.TeamPathPrefix))
		}
		if r.TeamID != nil {
			or = append(or, sql.EQ(sel.C(user.FieldTeamID), *r.TeamID))
		}
		if len(or) == 0 {
			sel.Where(sql.False())
			return
		}
		sel.Where(sql.Or(or...))
	}
}

// Admits is Users in memory, for a user with this id, team and team path.
func (r Reach) Admits(id uuid.UUID, teamID *uuid.UUID, teamPath string) bool {
	return r.All || (r.OwnerID != nil && *r.OwnerID == id) ||
		(r.TeamPathPrefix != "" && strings.HasPrefix(teamPath, r.TeamPathPrefix)) ||
		(r.TeamID != nil && teamID != nil && *r.TeamID == *teamID)
}

// RecordReach is whose owned records p may see and act on: a rep his own,
// a supervisor those owned by anyone in his team's subtree (and his own),
// auditors and admins everyone's. API keys reach no owners: what they see
// is their pool's (Scope). Pooled records are governed by pool membership,
// not by this.
func RecordReach(p *auth.Principal) Reach {
	if p == nil || p.Type != auth.ActorUser {
		return Reach{}
	}
	id := p.ID
	switch p.Role {
	case auth.RoleAdmin, auth.RoleAuditor:
		return Reach{All: true}
	case auth.RoleSupervisor:
		return Reach{OwnerID: &id, TeamPathPrefix: p.TeamPath}
	default:
		return Reach{OwnerID: &id}
	}
}

// UserReach is the set of users p may look up in the directory: admins and
// auditors everyone, supervisors their subtree (and themselves), reps
// themselves and the members of their own team (to hand records over).
func UserReach(p *auth.Principal) Reach {
	if p == nil || p.Type != auth.ActorUser {
		return Reach{}
	}
	id := p.ID
	switch p.Role {
	case auth.RoleAdmin, auth.RoleAuditor:
		return Reach{All: true}
	case auth.RoleSupervisor:
		return Reach{OwnerID: &id, TeamPathPrefix: p.TeamPath}
	default:
		return Reach{OwnerID: &id, TeamID: p.TeamID}
	}
}

// Supervises reports whether p (a supervisor or admin) may manage records
// owned by a user with the given team path: admins everyone, supervisors
// their subtree.
func Supervises(p *auth.Principal, userTeamPath string) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	switch p.Role {
	case auth.RoleAdmin:
		return true
	case auth.RoleSupervisor:
		return p.TeamPath != "" && strings.HasPrefix(userTeamPath, p.TeamPath)
	}
	return false
}

// Pool is what a scope needs to know of a pool.
type Pool struct {
	ID uuid.UUID
	// MemberTeamIDs are the teams whose users (and their sub-teams') may
	// claim from the pool; none means everyone.
	MemberTeamIDs []uuid.UUID
	ManagerIDs    []uuid.UUID
	// VisibleFields are the fields its pooled records show unmasked to
	// members; nil means nothing is masked.
	VisibleFields []string
}

// IsMember reports whether p belongs to the pool: a pool with no member
// teams is open to every user; otherwise the user's team or one of its
// ancestors must be a member.
func IsMember(p *auth.Principal, pl Pool) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	if len(pl.MemberTeamIDs) == 0 {
		return true
	}
	for _, t := range pl.MemberTeamIDs {
		if strings.Contains(p.TeamPath, "/"+t.String()+"/") {
			return true
		}
	}
	return false
}

// Members is IsMember as a predicate on the users table: "users who
// belong to pl" (for picking whom to auto-assign to).
func Members(pl Pool) func(*sql.Selector) {
	return func(sel *sql.Selector) {
		if len(pl.MemberTeamIDs) == 0 {
			return
		}
		or := make([]*sql.Predicate, len(pl.MemberTeamIDs))
		for i, t := range pl.MemberTeamIDs {
			or[i] = sql.Contains(sel.C(user.FieldTeamPath), "/"+t.String()+"/")
		}
		sel.Where(sql.Or(or...))
	}
}

// IsManager reports whether p manages the pool (admins manage every pool).
func IsManager(p *auth.Principal, pl Pool) bool {
	if p == nil || p.Type != auth.ActorUser {
		return false
	}
	return p.Role == auth.RoleAdmin || slices.Contains(pl.ManagerIDs, p.ID)
}

// Masking is what one principal sees masked of the pooled records of one
// pool. The zero value masks nothing.
type Masking struct {
	on      bool
	visible []string
}

// MaskingFor is the masking of pl's pooled records for p: none for admins,
// auditors, the pool's managers and API keys (an integration sees what it
// was granted), and for pools without a visibleFields setting; every field
// but the visible ones otherwise.
func MaskingFor(p *auth.Principal, pl Pool) Masking {
	if pl.VisibleFields == nil || p == nil || p.Type != auth.ActorUser ||
		p.Role == auth.RoleAdmin || p.Role == auth.RoleAuditor || IsManager(p, pl) {
		return Masking{}
	}
	return Masking{on: true, visible: pl.VisibleFields}
}

// On reports whether anything is masked.
func (m Masking) On() bool { return m.on }

// Hides reports whether field is masked.
func (m Masking) Hides(field string) bool { return m.on && !slices.Contains(m.visible, field) }

// Row is what a scope needs of a loaded record (or of the parent a child
// record inherits its scope from).
type Row struct {
	OwnerID *uuid.UUID
	// OwnerTeamPath is the owner's team path; only supervisors' answers
	// depend on it, and only for records owned by someone else.
	OwnerTeamPath string
	PoolID        uuid.UUID
}

// Columns declares where an entity keeps what its scope is decided by:
// its own owner and pool columns, or (Parent) a parent row whose scope it
// inherits, as contacts inherit their customer's. An entity without a
// pool column (Pool "", and uuid.Nil as a Row's PoolID) is only ever
// owned: API keys, whose reach is pools, see none of it.
type Columns struct {
	Owner, Pool string
	Parent      *Parent
}

// Parent is the row a child record takes its scope from.
type Parent struct {
	// Key is the child's column holding the parent's id.
	Key string
	// Table is the parent's table, ID its id column, Columns its own.
	Table, ID string
	Columns   Columns
}

// Scope is what one principal may see, edit and act on among the records
// of one kind. Build it once per request (LoadScope, or NewScope with the
// pools at hand); it answers the same questions as an SQL predicate
// (Predicate, Unmasked) and in memory for a loaded row (Sees, Masks,
// CanEdit, …), and the two always agree.
type Scope struct {
	p *auth.Principal
	// all: no restriction (admins, auditors; an API key bound to no
	// pool, on poolable entities).
	all bool
	// key: p is an API key; keyPool, when set, the pool it is bound to,
	// whose records (owned or pooled) it sees.
	key     bool
	keyPool *uuid.UUID
	reach   Reach
	// pools are the pools the scope was given; visible lists, in the
	// given order, those whose pooled records p sees.
	pools   map[uuid.UUID]Pool
	visible []uuid.UUID
}

// NeedsPools reports whether p's scope depends on pools, so that callers
// need not load them for admins, auditors and API keys.
func NeedsPools(p *auth.Principal) bool {
	return p != nil && p.Type == auth.ActorUser && !RecordReach(p).All
}

// PoolLoader loads the pools of the kind a scope is for.
type PoolLoader func(ctx context.Context) ([]Pool, error)

// LoadScope builds p's scope, calling load only when it depends on pools.
func LoadScope(ctx context.Context, p *auth.Principal, load PoolLoader) (Scope, error) {
	var pools []Pool
	if NeedsPools(p) {
		var err error
		if pools, err = load(ctx); err != nil {
			return Scope{}, err
		}
	}
	return NewScope(p, pools), nil
}

// NewScope builds p's scope over records in the given pools: every pool
// of a kind for lists, or just the pool of the one record at hand. A
// pooled record of a pool not given is invisible (but to those who see
// everything).
func NewScope(p *auth.Principal, pools []Pool) Scope {
	s := Scope{p: p, pools: make(map[uuid.UUID]Pool, len(pools))}
	switch {
	case p == nil:
		return s
	case p.Type == auth.ActorAPIKey:
		s.key, s.keyPool = true, p.PoolID
		s.all = p.PoolID == nil
		// Kept for MayHandTo (is the target a member of the key's pool);
		// a key's visibility never depends on them (keyPool does).
		for _, pl := range pools {
			s.pools[pl.ID] = pl
		}
		return s
	case p.Type != auth.ActorUser:
		return s
	}
	s.reach = RecordReach(p)
	s.all = s.reach.All
	for _, pl := range pools {
		s.pools[pl.ID] = pl
		if s.all || IsMember(p, pl) || IsManager(p, pl) {
			s.visible = append(s.visible, pl.ID)
		}
	}
	return s
}

// All reports whether the principal is a user who sees every record
// (admins, auditors).
func (s Scope) All() bool { return s.all && s.isUser() }

// Predicate is "rows of an entity with these columns the principal may
// see", for a query's Where.
func (s Scope) Predicate(cols Columns) func(*sql.Selector) {
	return func(sel *sql.Selector) {
		if pred := onRow(sel, cols, s.sees); pred != nil {
			sel.Where(pred)
		}
	}
}

// Masked is "the row shows field masked", for the rows of an entity with
// these columns; nil when no row does.
func (s Scope) Masked(sel *sql.Selector, cols Columns, field string) *sql.Predicate {
	hidden := s.MaskedPools(field)
	if len(hidden) == 0 {
		return nil
	}
	return onRow(sel, cols, func(sel *sql.Selector, cols Columns) *sql.Predicate {
		return pooledIn(sel, cols, hidden)
	})
}

// Unmasked is "the row does not show field masked"; nil when no row
// does. A filter or search on a field the caller sees masked must be
// ANDed with it, or probing would recover what the mask hides (one q per
// candidate phone).
func (s Scope) Unmasked(sel *sql.Selector, cols Columns, field string) *sql.Predicate {
	if m := s.Masked(sel, cols, field); m != nil {
		return sql.Not(m)
	}
	return nil
}

// onRow applies pred to the row's own columns, or for a child to its
// parent's through a subquery. A nil predicate means no restriction.
func onRow(sel *sql.Selector, cols Columns, pred func(*sql.Selector, Columns) *sql.Predicate) *sql.Predicate {
	if cols.Parent == nil {
		return pred(sel, cols)
	}
	par := cols.Parent
	parents := sql.Select(par.ID).From(sql.Table(par.Table))
	inner := onRow(parents, par.Columns, pred)
	if inner == nil {
		return nil
	}
	parents.Where(inner)
	return sql.In(sel.C(par.Key), parents)
}

// sees is the SQL form of Sees on a row's own columns.
func (s Scope) sees(sel *sql.Selector, cols Columns) *sql.Predicate {
	switch {
	case s.key && cols.Pool == "":
		return sql.False()
	case s.keyPool != nil:
		return sql.EQ(sel.C(cols.Pool), *s.keyPool)
	case s.all:
		return nil
	}
	var or []*sql.Predicate
	if s.reach.OwnerID != nil {
		or = append(or, sql.EQ(sel.C(cols.Owner), *s.reach.OwnerID))
	}
	if s.reach.TeamPathPrefix != "" {
		users := sql.Select(user.FieldID).From(sql.Table(user.Table)).
			Where(sql.HasPrefix(user.FieldTeamPath, s.reach.TeamPathPrefix))
		or = append(or, sql.In(sel.C(cols.Owner), users))
	}
	if len(s.visible) > 0 && cols.Pool != "" {
		or = append(or, pooledIn(sel, cols, s.visible))
	}
	if len(or) == 0 {
		return sql.False()
	}
	return sql.Or(or...)
}

// pooledIn is "the row is pooled in one of pools".
func pooledIn(sel *sql.Selector, cols Columns, pools []uuid.UUID) *sql.Predicate {
	vals := make([]any, len(pools))
	for i, id := range pools {
		vals[i] = id
	}
	return sql.And(sql.IsNull(sel.C(cols.Owner)), sql.In(sel.C(cols.Pool), vals...))
}

// Sees reports whether the principal may see the row (domain.md, who sees
// what): admins and auditors everything; a user the records his reach
// admits and the pooled records of pools he is a member or manager of; an
// API key its pool's records, or all when bound to none (of poolable
// entities only).
func (s Scope) Sees(r Row) bool {
	switch {
	case s.key && r.PoolID == uuid.Nil:
		return false
	case s.keyPool != nil:
		return r.PoolID == *s.keyPool
	case s.all:
		return true
	case s.p == nil || s.p.Type != auth.ActorUser:
		return false
	case r.OwnerID == nil:
		return slices.Contains(s.visible, r.PoolID)
	case *r.OwnerID == s.p.ID:
		return true
	default:
		return Supervises(s.p, r.OwnerTeamPath)
	}
}

// MaskedPools lists the pools, among those whose pooled records the
// principal sees, that show him field masked.
func (s Scope) MaskedPools(field string) []uuid.UUID {
	var out []uuid.UUID
	for _, id := range s.visible {
		if MaskingFor(s.p, s.pools[id]).Hides(field) {
			out = append(out, id)
		}
	}
	return out
}

// Masking is the masking the principal sees on a row he sees: none on an
// owned record, its pool's on a pooled one.
func (s Scope) Masking(r Row) Masking {
	if r.OwnerID != nil || !s.Sees(r) {
		return Masking{}
	}
	return MaskingFor(s.p, s.pools[r.PoolID])
}

// Masks reports whether the principal sees field masked on the row.
func (s Scope) Masks(field string, r Row) bool { return s.Masking(r).Hides(field) }

// Owns reports whether the principal is a user who owns the row.
func (s Scope) Owns(r Row) bool {
	return s.isUser() && r.OwnerID != nil && *r.OwnerID == s.p.ID
}

// ManagesOwner reports whether the principal is the supervisor of the
// row's owner, or an admin (for an owned row).
func (s Scope) ManagesOwner(r Row) bool {
	return r.OwnerID != nil && Supervises(s.p, r.OwnerTeamPath)
}

// ManagesPool reports whether the principal manages the pool (admins all;
// false for a pool the scope was not given).
func (s Scope) ManagesPool(poolID uuid.UUID) bool {
	pl, ok := s.pools[poolID]
	if !ok {
		return s.isUser() && s.p.Role == auth.RoleAdmin
	}
	return IsManager(s.p, pl)
}

// ManagedPools lists the given pools the principal manages.
func (s Scope) ManagedPools() []uuid.UUID {
	var out []uuid.UUID
	for id, pl := range s.pools {
		if IsManager(s.p, pl) {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// MayClaim reports whether the principal may claim from the pool: a user
// who is a member or manager of it (whoever owns a record of it now).
func (s Scope) MayClaim(poolID uuid.UUID) bool {
	pl, ok := s.pools[poolID]
	return ok && s.isUser() && (IsMember(s.p, pl) || IsManager(s.p, pl))
}

// CanEdit reports whether the principal may change the row's fields and
// work it (follow-ups, contacts, invalidating): its owner, a supervisor of
// its owner, an admin, or for a pooled row a manager of its pool; an API
// key every row it sees (its pool's, or all when bound to none: which
// operations it may call at all is its scopes' business, decided before);
// never an auditor.
func (s Scope) CanEdit(r Row) bool {
	if s.key {
		return s.Sees(r)
	}
	if !s.isUser() || s.p.Role == auth.RoleAuditor {
		return false
	}
	if r.OwnerID == nil {
		return s.ManagesPool(r.PoolID)
	}
	return s.Owns(r) || s.ManagesOwner(r)
}

// MayHandTo reports whether the principal may give a record of the pool
// to target (assign, transfer): admins to anyone, supervisors within their
// subtree, a pool's manager acting as one (asManager) to its members, reps
// to colleagues of their own team, an API key bound to the pool (HandsOut)
// to the pool's members and managers.
func (s Scope) MayHandTo(target *auth.Principal, poolID uuid.UUID, asManager bool) bool {
	if s.key {
		pl, ok := s.pools[poolID]
		return ok && target != nil && s.HandsOut(poolID) && (IsMember(target, pl) || IsManager(target, pl))
	}
	if !s.isUser() || target == nil {
		return false
	}
	p := s.p
	if p.Role == auth.RoleAdmin || Supervises(p, target.TeamPath) {
		return true
	}
	if pl, ok := s.pools[poolID]; ok && asManager && IsMember(target, pl) {
		return true
	}
	return p.Role == auth.RoleRep && p.TeamID != nil && target.TeamID != nil && *p.TeamID == *target.TeamID
}

// IsKey reports whether the principal is an API key.
func (s Scope) IsKey() bool { return s.key }

// HandsOut reports whether the principal is an API key that may hand
// records of the pool to people (assign, transfer: the pools:assign
// scope, checked before): only a key bound to that very pool, since the
// scope means "within the key's pool". An unbound key sees every pool but
// hands out none.
func (s Scope) HandsOut(poolID uuid.UUID) bool {
	return s.key && s.keyPool != nil && *s.keyPool == poolID
}

func (s Scope) isUser() bool { return s.p != nil && s.p.Type == auth.ActorUser }

// PoolOf is what authz needs to know of a stored pool.
func PoolOf(pl *ent.Pool) Pool {
	return Pool{ID: pl.ID, MemberTeamIDs: pl.MemberTeamIds, ManagerIDs: pl.ManagerIds, VisibleFields: pl.VisibleFields}
}

// RecordScope is the API key scope for access ("read" or "write") to the
// records of a kind: "leads:write" for ("lead", "write").
func RecordScope[K ~string](kind K, access string) string {
	return string(kind) + "s:" + access
}
