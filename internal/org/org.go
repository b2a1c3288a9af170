// Package org is Shoal's directory: users (with roles and cap overrides) and
// the team tree. It enforces who may see which users; who may call which
// operation is decided by authz before it is reached.
package org

import (
	"context"

	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/team"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/store"
)

// Service manages users and teams.
type Service struct {
	store *store.Store
	// gate bounds password hashing; it is the process-wide one that
	// password checks at login go through too.
	gate *auth.Gate
	// leaver is asked about every deactivation (see SetLeaver).
	leaver Leaver
}

// Leaver is what deactivating a user asks of the leaver handover
// (internal/handover), in the deactivation's transaction: refuse it while
// he owns records (unless handover or force), start the handover when one
// is given, and re-route what is addressed to him.
type Leaver interface {
	Leaving(ctx context.Context, tx *ent.Tx, p *auth.Principal, u *ent.User, handover *LeaveHandover, force bool) error
}

// LeaveHandover is the handover requested with a deactivation (updateUser's
// `handover`).
type LeaveHandover struct {
	ToUserID, ToPoolID *uuid.UUID
	// Kinds are record kind names; none means every kind.
	Kinds []string
	// Cascade nil means true.
	Cascade *bool
	Reason  string
}

// SetLeaver makes deactivations go through l. Without one (a Service built
// without the handover capability) a deactivation checks nothing.
func (s *Service) SetLeaver(l Leaver) { s.leaver = l }

// NewService returns the directory service.
func NewService(st *store.Store) *Service { return &Service{store: st, gate: auth.SharedGate} }

// Caps are the three cap overrides a user or team may carry (nil = not set).
type Caps struct {
	MaxOwnedLeads     *int
	MaxOwnedCustomers *int
	MaxFrozen         *int
}

// CapsPatch changes caps with merge-patch semantics.
type CapsPatch struct {
	MaxOwnedLeads     patch.Field[int]
	MaxOwnedCustomers patch.Field[int]
	MaxFrozen         patch.Field[int]
}

var (
	errEmailTaken = apperr.New(apperr.Conflict, "email_taken", "a user with this email already exists")
	errLastAdmin  = apperr.New(apperr.Conflict, "last_admin", "this would leave no active admin")
	errTeamCycle  = apperr.New(apperr.Conflict, "team_cycle", "a team cannot be moved under itself or its descendants")
)

// NewUser is a request to create a user.
type NewUser struct {
	Email    string
	Name     string
	Role     string
	TeamID   *uuid.UUID
	Password string
	Caps
}

// CreateUser creates a user. The email must be unused (case-insensitively)
// and the team must exist. It returns Conflict email_taken, Invalid.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (*ent.User, error) {
	if err := auth.CheckPassword("body/password", in.Password, in.Email); err != nil {
		return nil, err
	}
	hash, err := s.gate.Hash(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	var u *ent.User
	err = s.store.WithTx(ctx, func(tx *ent.Tx) error {
		path := ""
		if in.TeamID != nil {
			t, err := s.lockTeam(ctx, tx, *in.TeamID)
			if ent.IsNotFound(err) {
				return apperr.Invalidf("body/teamId", "unknown_team", "no such team")
			}
			if err != nil {
				return fmt.Errorf("load team: %w", err)
			}
			path = t.Path
		}
		u, err = tx.User.Create().
			SetEmail(auth.NormalizeEmail(in.Email)).
			SetName(strings.TrimSpace(in.Name)).
			SetRole(user.Role(in.Role)).
			SetNillableTeamID(in.TeamID).
			SetTeamPath(path).
			SetPasswordHash(hash).
			SetNillableMaxOwnedLeads(in.MaxOwnedLeads).
			SetNillableMaxOwnedCustomers(in.MaxOwnedCustomers).
			SetNillableMaxFrozen(in.MaxFrozen).
			Save(ctx)
		if ent.IsConstraintError(err) {
			return errEmailTaken
		}
		if err != nil {
			return err
		}
		return events.Emit(ctx, tx, events.Event{Type: events.UserCreated, SubjectKind: events.KindUser, SubjectID: u.ID,
			Actor: auth.ContextActor(ctx), OccurredAt: time.Now(), Data: events.User{Role: string(u.Role), TeamID: u.TeamID}})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// EnsureAdmin creates the first admin when the database has no users yet,
// and does nothing otherwise. It reports whether it created one.
func (s *Service) EnsureAdmin(ctx context.Context, email, password string) (bool, error) {
	n, err := s.store.Client.User.Query().Limit(1).Count(ctx)
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	_, err = s.CreateUser(ctx, NewUser{Email: email, Name: "Administrator", Role: auth.RoleAdmin, Password: password})
	if apperr.HasCode(err, "email_taken") {
		return false, nil // another replica got there first
	}
	return err == nil, err
}

// HasActiveAdmin reports whether any active admin exists: without one,
// nobody can create users through the API.
func (s *Service) HasActiveAdmin(ctx context.Context) (bool, error) {
	ok, err := s.store.Reader.User.Query().Where(user.RoleEQ(user.RoleAdmin), user.Active(true)).Exist(ctx)
	if err != nil {
		return false, fmt.Errorf("look for an admin: %w", err)
	}
	return ok, nil
}

// UserPatch changes a user with merge-patch semantics.
type UserPatch struct {
	Email    *string
	Name     *string
	Role     *string
	TeamID   patch.Field[uuid.UUID]
	Active   *bool
	Password *string
	CapsPatch
	// Handover and Force go with Active false only: a deactivation of a
	// user who still owns records needs one of them (Leaver).
	Handover *LeaveHandover
	Force    bool
}

// UpdateUser applies a patch; it is ChangeUser without the count of ended
// sessions.
func (s *Service) UpdateUser(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in UserPatch) (*ent.User, error) {
	u, _, err := s.ChangeUser(ctx, p, id, ifMatch, in)
	return u, err
}

// ChangeUser applies a patch. A new password, a new role or deactivation
// ends every session of the user in the same transaction (refresh tokens
// revoked, session epoch moved so that issued access tokens stop working)
// and the answer says how many sessions ended; deactivation, and an admin
// losing the role, also revoke the API keys he created. The last active
// admin cannot be demoted or deactivated. ifMatch must name the user's
// version read in the transaction (etag.Check). It returns NotFound,
// Conflict, Invalid, PreconditionRequired, PreconditionFailed.
func (s *Service) ChangeUser(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in UserPatch) (*ent.User, int, error) {
	var hash string
	if in.Password != nil {
		// The policy compares with the email the user will have.
		email := ""
		if in.Email != nil {
			email = *in.Email
		} else if u, err := s.store.Reader.User.Query().Where(user.ID(id), userScope(p)).Only(ctx); err == nil {
			email = u.Email
		}
		if err := auth.CheckPassword("body/password", *in.Password, email); err != nil {
			return nil, 0, err
		}
		var err error
		if hash, err = s.gate.Hash(ctx, *in.Password); err != nil {
			return nil, 0, err
		}
	}
	deactivating := in.Active != nil && !*in.Active
	if (in.Handover != nil || in.Force) && !deactivating {
		return nil, 0, apperr.Invalidf("body/active", "deactivation_required", "handover and force go with active false")
	}
	if in.Handover != nil && in.Force {
		return nil, 0, apperr.Invalidf("body/force", "handover_or_force", "give handover or force, not both")
	}
	var out *ent.User
	revoked := 0
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		// Locks are taken teams first, then users (as UpdateTeam does), so
		// that concurrent changes wait for each other instead of deadlocking.
		var newTeam *ent.Team
		if in.TeamID.Set && in.TeamID.Value != nil {
			t, err := s.lockTeam(ctx, tx, *in.TeamID.Value)
			if ent.IsNotFound(err) {
				return apperr.Invalidf("body/teamId", "unknown_team", "no such team")
			}
			if err != nil {
				return fmt.Errorf("load team: %w", err)
			}
			newTeam = t
		}
		if in.Role != nil || in.Active != nil {
			// Two admins demoting each other at once must not each count
			// the other as the admin who remains: lock every active admin,
			// in id order, before counting them.
			if _, err := store.ForUpdate(s.store, tx.User.Query().
				Where(user.RoleEQ(user.RoleAdmin), user.Active(true)).Order(ent.Asc(user.FieldID))).IDs(ctx); err != nil {
				return fmt.Errorf("lock admins: %w", err)
			}
		}
		u, err := store.ForUpdate(s.store, tx.User.Query().Where(user.ID(id), userScope(p))).Only(ctx)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("user")
		}
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		if err := etag.Check(ifMatch, u.Version); err != nil {
			return err
		}
		upd := tx.User.UpdateOne(u).AddVersion(1)
		if in.Email != nil {
			upd.SetEmail(auth.NormalizeEmail(*in.Email))
		}
		if in.Name != nil {
			upd.SetName(strings.TrimSpace(*in.Name))
		}
		if in.Role != nil {
			upd.SetRole(user.Role(*in.Role))
		}
		if in.Active != nil {
			upd.SetActive(*in.Active)
		}
		if hash != "" {
			upd.SetPasswordHash(hash)
		}
		deactivated := u.Active && in.Active != nil && !*in.Active
		roleChanged := in.Role != nil && *in.Role != string(u.Role)
		endSessions := hash != "" || roleChanged || deactivated
		if endSessions {
			upd.AddSessionEpoch(1)
		}
		if in.TeamID.Set {
			path := ""
			if newTeam != nil {
				path = newTeam.Path
			}
			upd.SetNillableTeamID(in.TeamID.Value).SetTeamPath(path)
			if in.TeamID.Value == nil {
				upd.ClearTeamID()
			}
		}
		applyCaps(upd.Mutation(), in.CapsPatch)
		losesAdmin := u.Role == user.RoleAdmin && u.Active &&
			((in.Role != nil && *in.Role != auth.RoleAdmin) || (in.Active != nil && !*in.Active))
		if losesAdmin {
			n, err := tx.User.Query().Where(user.RoleEQ(user.RoleAdmin), user.Active(true), user.IDNEQ(u.ID)).Count(ctx)
			if err != nil {
				return fmt.Errorf("count admins: %w", err)
			}
			if n == 0 {
				return errLastAdmin
			}
		}
		changed, err := events.ChangedFields(ctx, upd.Mutation())
		if err != nil {
			return err
		}
		out, err = upd.Save(ctx)
		if ent.IsConstraintError(err) {
			return errEmailTaken
		}
		if err != nil {
			return fmt.Errorf("update user: %w", err)
		}
		if endSessions {
			if revoked, err = auth.RevokeSessions(ctx, tx, u.ID, uuid.Nil); err != nil {
				return err
			}
		}
		if err := events.Emit(ctx, tx, events.Event{Type: events.UserUpdated, SubjectKind: events.KindUser, SubjectID: u.ID,
			Actor: p.EventActor(), OccurredAt: time.Now(), Data: events.UserChanged{Fields: changed, SessionsEnded: revoked}}); err != nil {
			return err
		}
		// A handover may also come with a user deactivated earlier with
		// force: his records go now.
		if (deactivated || (deactivating && in.Handover != nil)) && s.leaver != nil {
			if err := s.leaver.Leaving(ctx, tx, p, out, in.Handover, in.Force); err != nil {
				return err
			}
		}
		if deactivated || (u.Role == user.RoleAdmin && out.Role != user.RoleAdmin) {
			return auth.RevokeAPIKeysOf(ctx, tx, u.ID)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, revoked, nil
}

// capsMutation is the part of user and team mutations that carries caps.
type capsMutation interface {
	SetMaxOwnedLeads(int)
	ClearMaxOwnedLeads()
	SetMaxOwnedCustomers(int)
	ClearMaxOwnedCustomers()
	SetMaxFrozen(int)
	ClearMaxFrozen()
}

func applyCaps(m capsMutation, c CapsPatch) {
	patch.Apply(c.MaxOwnedLeads, m.SetMaxOwnedLeads, m.ClearMaxOwnedLeads)
	patch.Apply(c.MaxOwnedCustomers, m.SetMaxOwnedCustomers, m.ClearMaxOwnedCustomers)
	patch.Apply(c.MaxFrozen, m.SetMaxFrozen, m.ClearMaxFrozen)
}

// userScope is the predicate "users p may see".
func userScope(p *auth.Principal) predicate.User {
	return predicate.User(authz.UserReach(p).Users())
}

// GetUser returns a user p may see; NotFound otherwise.
func (s *Service) GetUser(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ent.User, error) {
	u, err := s.store.Reader.User.Query().Where(user.ID(id), userScope(p)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("user")
	}
	if err != nil {
		return nil, fmt.Errorf("get user: %w", err)
	}
	return u, nil
}

// UserFilter narrows ListUsers.
type UserFilter struct {
	TeamID *uuid.UUID
	Role   *string
	Active *bool
	Cursor *listing.Cursor
	Limit  int
}

// userList orders users by id: creation order.
var userList = listing.ByID(user.FieldID, func(u *ent.User) uuid.UUID { return u.ID }, false)

// ListUsers returns the users p may see, in creation order, and the cursor
// of the next page.
func (s *Service) ListUsers(ctx context.Context, p *auth.Principal, f UserFilter) ([]*ent.User, *listing.Cursor, error) {
	pg, err := userList.Page("", f.Cursor, f.Limit)
	if err != nil {
		return nil, nil, err
	}
	filters := listing.Where(
		listing.Eq(user.FieldTeamID, f.TeamID),
		listing.Eq(user.FieldRole, f.Role),
		listing.Eq(user.FieldActive, f.Active),
	)
	users, err := s.store.Reader.User.Query().Where(userScope(p), predicate.User(filters), predicate.User(pg.Apply)).
		Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list users: %w", err)
	}
	return users, pg.Next(users), nil
}

// NewTeam is a request to create a team.
type NewTeam struct {
	Name     string
	ParentID *uuid.UUID
	Caps
	DefaultPools
}

// DefaultPools are the pools where a team's reps' records land (nil = not
// set on this team).
type DefaultPools struct {
	Lead, Customer *uuid.UUID
}

// DefaultPoolsPatch changes default pools with merge-patch semantics.
type DefaultPoolsPatch struct {
	Lead, Customer patch.Field[uuid.UUID]
}

// checkDefaultPool checks that id names a pool of kind, in tx: Invalid
// unknown_pool or wrong_pool_kind at field otherwise. Pools are never
// deleted, so a pool checked here stays valid.
func checkDefaultPool(ctx context.Context, tx *ent.Tx, field string, kind kinds.Kind, id *uuid.UUID) error {
	if id == nil {
		return nil
	}
	pl, err := tx.Pool.Get(ctx, *id)
	if ent.IsNotFound(err) {
		return apperr.Invalidf(field, "unknown_pool", "no such pool")
	}
	if err != nil {
		return fmt.Errorf("load pool: %w", err)
	}
	if kinds.Kind(pl.Kind) != kind {
		return apperr.Invalidf(field, "wrong_pool_kind", "the pool holds records of another kind")
	}
	return nil
}

// CreateTeam creates a team under an existing parent (or at the root).
func (s *Service) CreateTeam(ctx context.Context, in NewTeam) (*ent.Team, error) {
	var t *ent.Team
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		parentPath := "/"
		if in.ParentID != nil {
			parent, err := s.lockTeam(ctx, tx, *in.ParentID)
			if ent.IsNotFound(err) {
				return apperr.Invalidf("body/parentId", "unknown_team", "no such parent team")
			}
			if err != nil {
				return fmt.Errorf("load parent: %w", err)
			}
			parentPath = parent.Path
		}
		if err := checkDefaultPool(ctx, tx, "body/defaultLeadPoolId", kinds.Lead, in.DefaultPools.Lead); err != nil {
			return err
		}
		if err := checkDefaultPool(ctx, tx, "body/defaultCustomerPoolId", kinds.Customer, in.DefaultPools.Customer); err != nil {
			return err
		}
		id := uuid.Must(uuid.NewV7())
		var err error
		t, err = tx.Team.Create().
			SetID(id).
			SetName(strings.TrimSpace(in.Name)).
			SetNillableParentID(in.ParentID).
			SetPath(parentPath + id.String() + "/").
			SetNillableMaxOwnedLeads(in.MaxOwnedLeads).
			SetNillableMaxOwnedCustomers(in.MaxOwnedCustomers).
			SetNillableMaxFrozen(in.MaxFrozen).
			SetNillableDefaultLeadPoolID(in.DefaultPools.Lead).
			SetNillableDefaultCustomerPoolID(in.DefaultPools.Customer).
			Save(ctx)
		if err != nil {
			return err
		}
		return events.Emit(ctx, tx, events.Event{Type: events.TeamCreated, SubjectKind: events.KindTeam, SubjectID: id,
			Actor: auth.ContextActor(ctx), OccurredAt: time.Now(), Data: events.Team{ParentID: in.ParentID}})
	})
	return t, err
}

// TeamPatch changes a team with merge-patch semantics.
type TeamPatch struct {
	Name     *string
	ParentID patch.Field[uuid.UUID]
	CapsPatch
	DefaultPools DefaultPoolsPatch
}

// UpdateTeam applies a patch. Moving a team re-roots its whole subtree
// (teams and their members' paths) in the same transaction; moving a team
// under itself or a descendant is Conflict team_cycle. ifMatch must name
// the team's version read in the transaction (etag.Check).
func (s *Service) UpdateTeam(ctx context.Context, id uuid.UUID, ifMatch *string, in TeamPatch) (*ent.Team, error) {
	var out *ent.Team
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		if in.ParentID.Set {
			// A move reads and rewrites paths all over the tree: lock every
			// team, in id order, so that two moves cannot make a cycle and
			// no team or member is created under a path about to change.
			if _, err := store.ForUpdate(s.store, tx.Team.Query().Order(ent.Asc(team.FieldID))).IDs(ctx); err != nil {
				return fmt.Errorf("lock teams: %w", err)
			}
		}
		t, err := store.ForUpdate(s.store, tx.Team.Query().Where(team.ID(id))).Only(ctx)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("team")
		}
		if err != nil {
			return fmt.Errorf("load team: %w", err)
		}
		if err := etag.Check(ifMatch, t.Version); err != nil {
			return err
		}
		upd := tx.Team.UpdateOne(t).AddVersion(1)
		if in.Name != nil {
			upd.SetName(strings.TrimSpace(*in.Name))
		}
		applyCaps(upd.Mutation(), in.CapsPatch)
		if in.DefaultPools.Lead.Set {
			if err := checkDefaultPool(ctx, tx, "body/defaultLeadPoolId", kinds.Lead, in.DefaultPools.Lead.Value); err != nil {
				return err
			}
		}
		if in.DefaultPools.Customer.Set {
			if err := checkDefaultPool(ctx, tx, "body/defaultCustomerPoolId", kinds.Customer, in.DefaultPools.Customer.Value); err != nil {
				return err
			}
		}
		m := upd.Mutation()
		patch.Apply(in.DefaultPools.Lead, m.SetDefaultLeadPoolID, m.ClearDefaultLeadPoolID)
		patch.Apply(in.DefaultPools.Customer, m.SetDefaultCustomerPoolID, m.ClearDefaultCustomerPoolID)
		if in.ParentID.Set {
			newParentPath := "/"
			if in.ParentID.Value != nil {
				parent, err := tx.Team.Get(ctx, *in.ParentID.Value)
				if ent.IsNotFound(err) {
					return apperr.Invalidf("body/parentId", "unknown_team", "no such parent team")
				}
				if err != nil {
					return fmt.Errorf("load parent: %w", err)
				}
				if strings.HasPrefix(parent.Path, t.Path) {
					return errTeamCycle
				}
				newParentPath = parent.Path
				upd.SetParentID(parent.ID)
			} else {
				upd.ClearParentID()
			}
			newPath := newParentPath + t.ID.String() + "/"
			if newPath != t.Path {
				if err := reroot(ctx, tx, t.Path, newPath); err != nil {
					return err
				}
			}
		}
		changed, err := events.ChangedFields(ctx, upd.Mutation())
		if err != nil {
			return err
		}
		out, err = upd.Save(ctx)
		if err != nil {
			return fmt.Errorf("update team: %w", err)
		}
		return events.Emit(ctx, tx, events.Event{Type: events.TeamUpdated, SubjectKind: events.KindTeam, SubjectID: id,
			Actor: auth.ContextActor(ctx), OccurredAt: time.Now(), Data: events.Changed{Fields: changed}})
	})
	return out, err
}

// lockTeam loads a team whose path is about to be copied (into a new team
// or a user), locking it so that a concurrent move of the team waits, or is
// waited for, instead of leaving the copy stale.
func (s *Service) lockTeam(ctx context.Context, tx *ent.Tx, id uuid.UUID) (*ent.Team, error) {
	return store.ForUpdate(s.store, tx.Team.Query().Where(team.ID(id))).Only(ctx)
}

// reroot rewrites every team path and user team path under oldPrefix.
func reroot(ctx context.Context, tx *ent.Tx, oldPrefix, newPrefix string) error {
	teams, err := tx.Team.Query().Where(team.PathHasPrefix(oldPrefix)).All(ctx)
	if err != nil {
		return fmt.Errorf("load subtree: %w", err)
	}
	for _, t := range teams {
		np := newPrefix + strings.TrimPrefix(t.Path, oldPrefix)
		if err := tx.Team.UpdateOne(t).SetPath(np).Exec(ctx); err != nil {
			return fmt.Errorf("move team: %w", err)
		}
		if _, err := tx.User.Update().Where(user.TeamID(t.ID)).SetTeamPath(np).Save(ctx); err != nil {
			return fmt.Errorf("move team members: %w", err)
		}
	}
	return nil
}

// GetTeam returns a team. Teams are not secret within the organisation:
// everyone logged in may read the tree.
func (s *Service) GetTeam(ctx context.Context, id uuid.UUID) (*ent.Team, error) {
	t, err := s.store.Reader.Team.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("team")
	}
	if err != nil {
		return nil, fmt.Errorf("get team: %w", err)
	}
	return t, nil
}

// teamList orders teams by id: creation order.
var teamList = listing.ByID(team.FieldID, func(t *ent.Team) uuid.UUID { return t.ID }, false)

// ListTeams returns teams in creation order, optionally only the children
// of one parent, and the cursor of the next page.
func (s *Service) ListTeams(ctx context.Context, parentID *uuid.UUID, cursor *listing.Cursor, limit int) ([]*ent.Team, *listing.Cursor, error) {
	pg, err := teamList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	teams, err := s.store.Reader.Team.Query().
		Where(predicate.Team(listing.Where(listing.Eq(team.FieldParentID, parentID))), predicate.Team(pg.Apply)).
		Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list teams: %w", err)
	}
	return teams, pg.Next(teams), nil
}
