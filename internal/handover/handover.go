// Package handover is the leaver handover (离职交接): when a rep leaves,
// everything he owns moves in one step to another user or back to a pool.
//
// A handover is a row (ent Handover) created together with the job that
// works it (internal/jobs), in one transaction, so a crash never loses
// it. The job moves the records in batches, each one transaction that
// moves the records through the pool engine (pool.Service.HandOver: one
// history row and one <kind>.handed_over event per record, the target's
// cap checked under his lock) and adds what it did to the row's counts.
// A record no longer owned by the leaver is skipped, so a resumed run
// moves nothing twice, and a new run for a user who owns nothing moves
// nothing.
//
// Overflow: a record that counts against the target user's cap and would
// put him over it goes back to its own pool (the pool it belongs to) and
// is listed, with that pool, in the run's overflow. With a target pool,
// records of that pool's kind move into it and records of other kinds go
// back to their own pools. A record handed to a pool stays pooled there:
// a pool's autoAssign is not run on it, so the run's report says where
// every record is.
//
// Re-routing: starting a handover, or deactivating a user, replaces him by
// his supervisor among the managers of the pools he managed (whose pending
// claim requests he would have decided) and rejects his own pending claim
// requests. Tasks and approvals other than claim requests do not exist in
// Shoal yet; when they do, they are re-routed here too.
package handover

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	enthandover "github.com/shoalcrm/shoal/ent/handover"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
)

// DefaultBatch is how many records one transaction of a run moves.
const DefaultBatch = 100

// The statuses of a run.
const (
	StatusQueued  = "queued"
	StatusRunning = "running"
	StatusDone    = "done"
	StatusFailed  = "failed"
)

// rejectReason is the reason written on the claim requests of a leaver.
const rejectReason = "离职交接 handover: the requester is leaving"

var (
	errUserOwnsRecords = apperr.New(apperr.Conflict, "user_owns_records",
		"the user still owns leads or customers: hand them over (handover) or deactivate with force")
	errTargetInactive = apperr.New(apperr.Conflict, "target_inactive", "the target user is not active")
	errTargetScope    = apperr.New(apperr.Forbidden, "target_out_of_scope", "the target user is outside your scope")
	errPoolNotManaged = apperr.New(apperr.Forbidden, "pool_not_managed", "you do not manage this pool")
)

// Queue enqueues the job that works a run, in the transaction that
// creates it (the job queue, internal/jobs).
type Queue interface {
	EnqueueHandover(ctx context.Context, tx *ent.Tx, id uuid.UUID) error
}

// Service runs leaver handovers.
type Service struct {
	store *store.Store
	pools *pool.Service
	clock clock.Clock
	queue Queue
	batch int
}

// NewService returns the handover service; SetQueue must be called before
// a run is started.
func NewService(st *store.Store, pools *pool.Service, clk clock.Clock) *Service {
	return &Service{store: st, pools: pools, clock: clk, batch: DefaultBatch}
}

// SetQueue sets the job queue runs are enqueued on.
func (s *Service) SetQueue(q Queue) { s.queue = q }

// SetBatch sets how many records one transaction moves (tests use small
// batches to see a run's progress between them).
func (s *Service) SetBatch(n int) {
	if n > 0 {
		s.batch = n
	}
}

// Request is a handover: exactly one of ToUserID and ToPoolID.
type Request struct {
	ToUserID, ToPoolID *uuid.UUID
	// Kinds are the kinds to hand over; none means every kind.
	Kinds   []kinds.Kind
	Cascade bool
	Reason  string
}

// Start queues a handover of everything user from owns, by p: an admin,
// or a supervisor of from (NotFound for a user outside his teams). It
// returns the run, queued; its job works it after the commit.
func (s *Service) Start(ctx context.Context, p *auth.Principal, from uuid.UUID, in Request) (*ent.Handover, error) {
	var h *ent.Handover
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		u, err := store.ForUpdate(s.store, tx.User.Query().Where(user.ID(from))).Only(ctx)
		if ent.IsNotFound(err) || (err == nil && !mayHandOver(p, u)) {
			return apperr.NotFoundf("user")
		}
		if err != nil {
			return fmt.Errorf("load user: %w", err)
		}
		h, err = s.create(ctx, tx, p, u, in, "body/")
		return err
	})
	return h, err
}

// mayHandOver reports whether p may hand over u's records: admins anyone's,
// supervisors those of users in their teams.
func mayHandOver(p *auth.Principal, u *ent.User) bool {
	return authz.Supervises(p, u.TeamPath)
}

// Leaving is org.Leaver: a deactivation of u by p, in its transaction. A
// user who still owns leads or customers may be deactivated only with a
// handover (started here, in the same transaction) or with force (his
// records stay his). Either way what is addressed to him is re-routed.
func (s *Service) Leaving(ctx context.Context, tx *ent.Tx, p *auth.Principal, u *ent.User, ho *org.LeaveHandover, force bool) error {
	if ho != nil {
		in := Request{ToUserID: ho.ToUserID, ToPoolID: ho.ToPoolID, Cascade: ho.Cascade == nil || *ho.Cascade, Reason: ho.Reason}
		for _, k := range ho.Kinds {
			kind, err := kinds.Parse(k)
			if err != nil {
				return apperr.Invalidf("body/handover/kinds", "unknown_kind", "not a record kind")
			}
			in.Kinds = append(in.Kinds, kind)
		}
		_, err := s.create(ctx, tx, p, u, in, "body/handover/")
		return err
	}
	if !force {
		owns, err := ownsAny(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		if owns {
			return errUserOwnsRecords
		}
	}
	return s.reroute(ctx, tx, p, u)
}

// ownsAny reports whether the user owns any lead or customer (of any
// status: an invalid record still has its owner).
func ownsAny(ctx context.Context, tx *ent.Tx, id uuid.UUID) (bool, error) {
	for _, kind := range kinds.All {
		n, err := ownedQuery(ctx, tx, kind, id, 1)
		if err != nil {
			return false, err
		}
		if len(n) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// ownedQuery returns up to limit ids of records of kind owned by owner, in
// id order.
func ownedQuery(ctx context.Context, tx *ent.Tx, kind kinds.Kind, owner uuid.UUID, limit int) ([]uuid.UUID, error) {
	var ids []uuid.UUID
	var err error
	switch kind {
	case kinds.Lead:
		ids, err = tx.Lead.Query().Where(lead.OwnerID(owner)).Order(ent.Asc(lead.FieldID)).Limit(limit).IDs(ctx)
	case kinds.Customer:
		ids, err = tx.Customer.Query().Where(customer.OwnerID(owner)).Order(ent.Asc(customer.FieldID)).Limit(limit).IDs(ctx)
	default:
		return nil, fmt.Errorf("handover: unknown record kind %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("list owned %ss: %w", kind, err)
	}
	return ids, nil
}

// create checks a handover request and, in tx, inserts the run, emits
// handover.created, enqueues its job and re-routes what is addressed to
// the leaver. field prefixes the names of the request's fields in 400s.
func (s *Service) create(ctx context.Context, tx *ent.Tx, p *auth.Principal, from *ent.User, in Request, field string) (*ent.Handover, error) {
	if (in.ToUserID == nil) == (in.ToPoolID == nil) {
		return nil, apperr.Invalidf(field+"toUserId", "one_target", "give exactly one of toUserId and toPoolId")
	}
	if in.ToUserID != nil {
		if *in.ToUserID == from.ID {
			return nil, apperr.Invalidf(field+"toUserId", "same_user", "the target is the user handing over")
		}
		to, err := tx.User.Get(ctx, *in.ToUserID)
		if ent.IsNotFound(err) {
			return nil, apperr.Invalidf(field+"toUserId", "unknown_user", "no such user")
		}
		if err != nil {
			return nil, fmt.Errorf("load target user: %w", err)
		}
		if !authz.Supervises(p, to.TeamPath) {
			return nil, errTargetScope
		}
		if !to.Active {
			return nil, errTargetInactive
		}
	}
	if in.ToPoolID != nil {
		pl, err := tx.Pool.Get(ctx, *in.ToPoolID)
		if ent.IsNotFound(err) {
			return nil, apperr.Invalidf(field+"toPoolId", "unknown_pool", "no such pool")
		}
		if err != nil {
			return nil, fmt.Errorf("load target pool: %w", err)
		}
		if !pool.IsManager(p, pl) {
			return nil, errPoolNotManaged
		}
	}
	// Kinds in the registry's order, each once.
	var names []string
	for _, k := range kinds.All {
		if len(in.Kinds) == 0 || slices.Contains(in.Kinds, k) {
			names = append(names, string(k))
		}
	}
	counts := map[string]schema.HandoverCount{}
	for _, k := range names {
		counts[k] = schema.HandoverCount{}
	}
	now := s.clock.Now().UTC().Truncate(time.Microsecond)
	h, err := tx.Handover.Create().
		SetFromUserID(from.ID).
		SetNillableToUserID(in.ToUserID).
		SetNillableToPoolID(in.ToPoolID).
		SetKinds(names).
		SetCascade(in.Cascade).
		SetReason(in.Reason).
		SetRequestedBy(p.ID).
		SetCounts(counts).
		SetOverflow([]schema.HandoverOverflow{}).
		SetCreatedAt(now).
		SetUpdatedAt(now).
		Save(ctx)
	if err != nil {
		return nil, fmt.Errorf("create handover: %w", err)
	}
	if err := events.Emit(ctx, tx, events.Event{Type: events.HandoverCreated, SubjectKind: events.KindHandover, SubjectID: h.ID,
		Actor: p.EventActor(), OccurredAt: now, Data: payload(h)}); err != nil {
		return nil, err
	}
	if s.queue == nil {
		return nil, errors.New("handover: no job queue")
	}
	if err := s.queue.EnqueueHandover(ctx, tx, h.ID); err != nil {
		return nil, err
	}
	if err := s.reroute(ctx, tx, p, from); err != nil {
		return nil, err
	}
	return h, nil
}

// payload is the handover's event payload.
func payload(h *ent.Handover) events.Handover {
	out := events.Handover{FromUserID: h.FromUserID, ToUserID: h.ToUserID, ToPoolID: h.ToPoolID, Kinds: h.Kinds, Status: string(h.Status)}
	if h.Status == enthandover.StatusDone || h.Status == enthandover.StatusFailed {
		out.Moved, out.Overflow = map[string]int{}, map[string]int{}
		for k, c := range h.Counts {
			out.Moved[k], out.Overflow[k] = c.Moved, c.Overflow
		}
	}
	return out
}

// reroute hands what is addressed to the leaver to his supervisor: he is
// replaced among the managers of the pools he managed (their pending claim
// requests are decided by pool managers), and his own pending claim
// requests are rejected.
func (s *Service) reroute(ctx context.Context, tx *ent.Tx, p *auth.Principal, u *ent.User) error {
	sup, err := supervisorOf(ctx, tx, u)
	if err != nil {
		return err
	}
	if _, err := s.pools.ReplaceManager(ctx, tx, p, u.ID, sup); err != nil {
		return err
	}
	_, err = s.pools.RejectRequestsOf(ctx, tx, p, u.ID, rejectReason)
	return err
}

// supervisorOf returns the user's supervisor: the active supervisor of his
// own team, else of the nearest team above it (the first by id when a
// team has several); nil when there is none (admins then decide).
func supervisorOf(ctx context.Context, tx *ent.Tx, u *ent.User) (*uuid.UUID, error) {
	var paths []string
	parts := strings.Split(strings.Trim(u.TeamPath, "/"), "/")
	for i := range parts {
		if parts[i] == "" {
			continue
		}
		paths = append(paths, "/"+strings.Join(parts[:i+1], "/")+"/")
	}
	if len(paths) == 0 {
		return nil, nil
	}
	sups, err := tx.User.Query().Where(user.RoleEQ(user.RoleSupervisor), user.Active(true), user.IDNEQ(u.ID),
		user.TeamPathIn(paths...)).Order(ent.Asc(user.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("find supervisor: %w", err)
	}
	var best *ent.User
	for _, c := range sups {
		if best == nil || len(c.TeamPath) > len(best.TeamPath) {
			best = c
		}
	}
	if best == nil {
		return nil, nil
	}
	return &best.ID, nil
}

// Get returns a run p may see: admins and auditors every run, supervisors
// those of users in their teams; NotFound otherwise.
func (s *Service) Get(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ent.Handover, error) {
	h, err := s.store.Reader.Handover.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("handover")
	}
	if err != nil {
		return nil, fmt.Errorf("get handover: %w", err)
	}
	if authz.RecordReach(p).All {
		return h, nil
	}
	from, err := s.store.Reader.User.Get(ctx, h.FromUserID)
	if err != nil || !mayHandOver(p, from) {
		return nil, apperr.NotFoundf("handover")
	}
	return h, nil
}
