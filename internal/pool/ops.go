package pool

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/claimrequest"
	"github.com/shoalcrm/shoal/ent/claimtally"
	"github.com/shoalcrm/shoal/ent/cooldown"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/poolrules"
)

var (
	errNotRecordOwner = apperr.New(apperr.Forbidden, "not_record_owner", "only the owner, his supervisor or an admin may do this")
	errTargetInactive = apperr.New(apperr.Conflict, "target_inactive", "the target user is not active")
	errTargetScope    = apperr.New(apperr.Forbidden, "target_out_of_scope", "the target user is outside your scope")
	errWrongPool      = apperr.New(apperr.Forbidden, "wrong_pool", "you do not manage this record's pool")
	errNotPending     = apperr.New(apperr.Conflict, "request_not_pending", "the claim request was already decided")
	// errKeyNotBound refuses assign and transfer to an API key bound to
	// no pool: pools:assign hands records out within the key's pool.
	errKeyNotBound = apperr.New(apperr.Forbidden, "api_key_not_bound", "only an API key bound to the record's pool may assign or transfer it")
)

// ruleErr turns a pure rule refusal into a domain error (409 with its code).
func ruleErr(err error) error {
	var re *poolrules.RuleError
	if errors.As(err, &re) {
		return &apperr.Error{Kind: apperr.Conflict, Code: re.Code, Message: re.Message}
	}
	return err
}

// op is the state an operation works on: the locked record, its pool, the
// settings and the time, all read inside the operation's transaction.
type op struct {
	tx  *ent.Tx
	r   *Record
	pl  *ent.Pool
	st  Settings
	now time.Time
	// ownerPath and ownerName are the record's owner's team path and
	// name ("" when pooled).
	ownerPath, ownerName string
}

// After is a record as an operation's transaction left it, with its
// owner's name, so that the caller can answer without reading it again.
// Exactly one of Lead and Customer is set.
type After struct {
	Lead      *ent.Lead
	Customer  *ent.Customer
	OwnerName string
}

// after is the record as o leaves it.
func (o *op) after() *After {
	l, _ := o.r.row.(*ent.Lead)
	c, _ := o.r.row.(*ent.Customer)
	return &After{Lead: l, Customer: c, OwnerName: o.ownerName}
}

// run loads and locks the record, checks that p may see it (404
// otherwise), runs fn and saves the record, all in one transaction that
// PostgreSQL may retry. It returns the op of the attempt that committed.
func (s *Service) run(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID, fn func(o *op) error) (*op, error) {
	return s.runIf(ctx, kind, id, func(o *op) bool { return o.sees(p) }, fn)
}

// runIf is run with another visibility test than "p sees the record".
func (s *Service) runIf(ctx context.Context, kind kinds.Kind, id uuid.UUID, visible func(o *op) bool, fn func(o *op) error) (*op, error) {
	var done *op
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		o, err := s.open(ctx, tx, kind, id, visible)
		if err != nil {
			return err
		}
		done = o
		return fn(o)
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// row is the record as authz sees it.
func (o *op) row() authz.Row {
	return authz.Row{OwnerID: o.r.OwnerID, OwnerTeamPath: o.ownerPath, PoolID: o.r.PoolID}
}

// scope is p's scope over the record's pool.
func (o *op) scope(p *auth.Principal) authz.Scope { return scopeOf(p, o.pl) }

// open loads and locks the record in tx with its pool, settings and owner,
// and checks it is visible (404 otherwise): the start of every operation,
// also for those (conversion) whose transaction another package runs.
func (s *Service) open(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID, visible func(o *op) bool) (*op, error) {
	r, err := s.load(ctx, tx, kind, id)
	if err != nil {
		return nil, err
	}
	side := s.side(tx)
	pl, st, err := s.rules(ctx, tx, r.PoolID)
	if err != nil {
		return nil, err
	}
	// PostgreSQL keeps microseconds: an answer rendered from the
	// transaction's row must show the times a later read will.
	o := &op{tx: tx, r: r, pl: pl, st: st, now: s.clock.Now().Truncate(time.Microsecond)}
	if r.OwnerID != nil {
		owner, err := side.User.Get(ctx, *r.OwnerID)
		if err != nil {
			return nil, fmt.Errorf("load owner: %w", err)
		}
		o.ownerPath, o.ownerName = owner.TeamPath, owner.Name
	}
	if !visible(o) {
		return nil, kind.NotFound()
	}
	// A merged record is out of circulation: every operation addressed
	// to it answers merged_into, naming the survivor, to whoever sees it.
	if survivor := r.mergedInto(); survivor != nil {
		return nil, kind.MergedInto(*survivor)
	}
	return o, nil
}

// sees reports whether p may see the record (domain.md, who sees what).
// Casbin decides which ownership operations an API key reaches at all
// (pools:assign: assign and transfer; the read scopes: history); for
// those, the key sees its pool's records, as everywhere.
func (o *op) sees(p *auth.Principal) bool {
	return (p.Type == auth.ActorUser || p.Type == auth.ActorAPIKey) && o.scope(p).Sees(o.row())
}

// keyHandsOut is the check of assign and transfer for an API key: it must
// be bound to the record's pool (it sees the record, so the pool is its
// own when bound). Users pass.
func (o *op) keyHandsOut(p *auth.Principal) error {
	if sc := o.scope(p); sc.IsKey() && !sc.HandsOut(o.pl.ID) {
		return errKeyNotBound
	}
	return nil
}

// claimable reports whether p could claim records of the record's pool
// (a member or manager of it), whoever owns this one now. Claims use it so
// that losing a race is a 409 already_owned, not a 404 that depends on
// whether the winner committed before the loser read the record.
func (o *op) claimable(p *auth.Principal) bool { return o.scope(p).MayClaim(o.pl.ID) }

// manages reports whether p is the owner's supervisor or an admin.
func (o *op) manages(p *auth.Principal) bool { return o.scope(p).ManagesOwner(o.row()) }

// managesPool reports whether p manages the record's pool.
func (o *op) managesPool(p *auth.Principal) bool { return o.scope(p).ManagesPool(o.pl.ID) }

// ownerOrManager is the check for return, freeze, unfreeze, transfer.
func (o *op) ownerOrManager(p *auth.Principal) error {
	if o.r.OwnerID == nil {
		return ruleErr(poolrules.ErrNotOwned)
	}
	if sc := o.scope(p); sc.Owns(o.row()) || sc.ManagesOwner(o.row()) {
		return nil
	}
	return errNotRecordOwner
}

func (s *Service) commit(ctx context.Context, o *op, c Change) error {
	if err := s.save(ctx, o.tx, o.r, o.pl, o.now); err != nil {
		return err
	}
	return s.log(ctx, o.tx, o.r, c, o.now)
}

// release takes a record from its owner: counters, cooldown, freeze.
func (s *Service) release(ctx context.Context, o *op) (*uuid.UUID, error) {
	prev := o.r.OwnerID
	if prev == nil {
		return nil, nil
	}
	if o.r.Counts(o.st) {
		if err := adjust(ctx, o.tx, *prev, o.r.Kind, -1); err != nil {
			return nil, err
		}
	}
	if err := o.tx.Cooldown.Create().SetRecordID(o.r.ID).SetUserID(*prev).SetLostAt(o.now).
		OnConflictColumns(cooldown.FieldRecordID, cooldown.FieldUserID).UpdateLostAt().Exec(ctx); err != nil {
		return nil, fmt.Errorf("start cooldown: %w", err)
	}
	o.r.OwnerID, o.r.OwnedAt, o.r.LastFollowUpAt, o.r.FrozenUntil, o.r.ReleasedAt = nil, nil, nil, nil, nil
	o.ownerPath, o.ownerName = "", ""
	return prev, nil
}

// take gives the record to h (already locked and checked).
func (s *Service) take(ctx context.Context, o *op, h *holder) error {
	id := h.user.ID
	o.r.OwnerID, o.r.OwnedAt, o.r.LastFollowUpAt, o.r.FrozenUntil, o.r.ReleasedAt = &id, &o.now, nil, nil, nil
	o.ownerPath, o.ownerName = h.user.TeamPath, h.user.Name
	if o.r.Counts(o.st) && !h.taking {
		return adjust(ctx, o.tx, id, o.r.Kind, 1)
	}
	return nil
}

// ClaimResult is what a claim did: took the record, or filed a request.
type ClaimResult struct {
	Request *ent.ClaimRequest
	After   *After // the record, when it was taken
}

// Claim gives a pooled record to p (领取), or files a claim request in a
// pool that needs approval. Every rule of domain.md is checked under the
// record's and the claimer's locks.
func (s *Service) Claim(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID) (*ClaimResult, error) {
	res := &ClaimResult{}
	o, err := s.runIf(ctx, kind, id, func(o *op) bool { return o.sees(p) || o.claimable(p) }, func(o *op) error {
		// A member who cannot see the record any more (another rep took
		// it a moment ago) learns only that it is taken: the same answer
		// whichever claim of a race he lost, and nothing about the owner
		// or the record's state beyond that.
		if !o.sees(p) {
			return ruleErr(poolrules.ErrAlreadyOwned)
		}
		// A claim in an approval pool only files a request: it must not
		// count the record yet.
		h, err := s.checkClaim(ctx, o, p.ID, !o.pl.ClaimRequiresApproval)
		if err != nil {
			return err
		}
		if o.pl.ClaimRequiresApproval {
			existing, err := o.tx.ClaimRequest.Query().Where(claimrequest.RecordID(id), claimrequest.RequesterID(p.ID),
				claimrequest.StatusEQ(claimrequest.StatusPending)).First(ctx)
			if err == nil {
				res.Request = existing
				return nil
			}
			if !ent.IsNotFound(err) {
				return fmt.Errorf("load claim request: %w", err)
			}
			res.Request, err = o.tx.ClaimRequest.Create().SetKind(claimrequest.Kind(kind)).SetRecordID(id).
				SetPoolID(o.pl.ID).SetRequesterID(p.ID).SetCreatedAt(o.now).Save(ctx)
			if err != nil {
				return err
			}
			if err := emitClaimRequest(ctx, o.tx, events.ClaimRequestCreated, p, res.Request, o.now); err != nil {
				return err
			}
			a, err := s.openClaimApproval(ctx, o.tx, p, res.Request)
			if err != nil {
				return err
			}
			res.Request.ApprovalID = &a.ID
			return nil
		}
		return s.claimFor(ctx, o, h, p)
	})
	if err != nil {
		return nil, err
	}
	if res.Request == nil {
		res.After = o.after()
	}
	return res, nil
}

// checkClaim locks the claimer and applies the pure claim decision. With
// taking set, the caller goes on to give him the record (claimFor), and a
// record that counts against his cap is counted already (claimHolder).
func (s *Service) checkClaim(ctx context.Context, o *op, claimer uuid.UUID, taking bool) (*holder, error) {
	var h *holder
	var err error
	if taking && o.r.Counts(o.st) {
		h, err = s.claimHolder(ctx, o.tx, claimer, o.r.Kind, o.st)
	} else {
		h, err = s.lockHolder(ctx, o.tx, claimer, o.st)
	}
	if err != nil {
		return nil, err
	}
	rules := Rules(o.pl)
	// Today's tally and the claimer's cooldown are read only when a rule
	// looks at them: most pools have neither, and a claim is hot.
	claimed := 0
	if rules.DailyClaimLimit != nil {
		day := poolrules.StartOfDay(o.now, s.loc).Format("2006-01-02")
		tally, err := o.tx.ClaimTally.Query().Where(claimtally.UserID(claimer), claimtally.PoolID(o.pl.ID), claimtally.Day(day)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, fmt.Errorf("load claim tally: %w", err)
		}
		if tally != nil {
			claimed = tally.Count
		}
	}
	var lostAt *time.Time
	if rules.ClaimCooldownDays != nil {
		cd, err := o.tx.Cooldown.Query().Where(cooldown.RecordID(o.r.ID), cooldown.UserID(claimer)).First(ctx)
		if err != nil && !ent.IsNotFound(err) {
			return nil, fmt.Errorf("load cooldown: %w", err)
		}
		if cd != nil {
			lostAt = &cd.LostAt
		}
	}
	err = poolrules.CanClaim(o.r.Pure(), rules, poolrules.ClaimContext{
		Now: o.now, ClaimerID: claimer.String(), Owned: h.owned(o.r.Kind), Cap: h.caps.For(o.r.Kind),
		ClaimedToday: claimed, LastLostAt: lostAt,
	})
	if err != nil {
		return nil, ruleErr(err)
	}
	if !h.user.Active {
		return nil, errTargetInactive
	}
	return h, nil
}

// claimFor gives the record to h as a claim and counts it for the day.
func (s *Service) claimFor(ctx context.Context, o *op, h *holder, actor *auth.Principal) error {
	day := poolrules.StartOfDay(o.now, s.loc).Format("2006-01-02")
	if err := o.tx.ClaimTally.Create().SetUserID(h.user.ID).SetPoolID(o.pl.ID).SetDay(day).SetCount(1).
		OnConflictColumns(claimtally.FieldUserID, claimtally.FieldPoolID, claimtally.FieldDay).AddCount(1).Exec(ctx); err != nil {
		return fmt.Errorf("count claim: %w", err)
	}
	if err := s.take(ctx, o, h); err != nil {
		return err
	}
	return s.commit(ctx, o, Change{Op: "claim", To: o.r.OwnerID, Actor: actor, RuleVersion: o.pl.RuleVersion})
}

// BatchItem is the outcome of one id of a batch claim.
type BatchItem struct {
	ID   uuid.UUID
	OK   bool
	Code string
}

// BatchClaim claims each record in its own transaction.
func (s *Service) BatchClaim(ctx context.Context, p *auth.Principal, kind kinds.Kind, ids []uuid.UUID) ([]BatchItem, error) {
	out := make([]BatchItem, len(ids))
	for i, id := range ids {
		out[i].ID = id
		res, err := s.Claim(ctx, p, kind, id)
		switch {
		case err == nil && res.Request != nil:
			out[i].Code = "claim_request_pending"
		case err == nil:
			out[i].OK = true
		default:
			e, ok := apperr.As(err)
			if !ok || e.Kind == apperr.Internal {
				return nil, err
			}
			out[i].Code = e.Code
		}
	}
	return out, nil
}

// Return gives an owned record back to its pool (退回). A record of the
// global default pool goes to its owner's team's landing pool instead
// (his team's default pool of the kind, or the nearest ancestor's), so
// that a team with a pool of its own keeps what its reps give back.
func (s *Service) Return(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID, reason string) error {
	_, err := s.run(ctx, p, kind, id, func(o *op) error {
		if err := o.ownerOrManager(p); err != nil {
			return err
		}
		if o.pl.IsDefault {
			pl, err := s.landing(ctx, o.tx, o.ownerPath, kind)
			if err != nil {
				return fmt.Errorf("landing pool: %w", err)
			}
			o.pl, o.r.PoolID = pl, pl.ID
		}
		prev, err := s.release(ctx, o)
		if err != nil {
			return err
		}
		if err := s.commit(ctx, o, Change{Op: "return", From: prev, Actor: p, Reason: reason, RuleVersion: o.pl.RuleVersion}); err != nil {
			return err
		}
		_, err = s.autoAssign(ctx, o.tx, o.pl, o.r, prev, o.now)
		return err
	})
	return err
}

// targetFor locks the target of an assign or transfer and checks that it is
// active, within p's scope and under its cap.
func (s *Service) targetFor(ctx context.Context, o *op, p *auth.Principal, target uuid.UUID, poolManager bool) (*holder, error) {
	h, err := s.lockHolder(ctx, o.tx, target, o.st)
	if err != nil {
		return nil, err
	}
	if !h.user.Active {
		return nil, errTargetInactive
	}
	if !o.scope(p).MayHandTo(auth.UserPrincipal(h.user), o.pl.ID, poolManager) {
		return nil, errTargetScope
	}
	if !h.underCap(o.r.Kind) {
		return nil, ruleErr(poolrules.ErrCapExceeded)
	}
	return h, nil
}

// Assign gives a pooled record to a member (分配): by a manager of its
// pool, a supervisor of the target, or an admin.
func (s *Service) Assign(ctx context.Context, p *auth.Principal, kind kinds.Kind, id, target uuid.UUID, reason string) (*After, error) {
	o, err := s.run(ctx, p, kind, id, func(o *op) error {
		if o.r.Status != "active" {
			return ruleErr(poolrules.ErrRecordInvalid)
		}
		if o.r.OwnerID != nil {
			return ruleErr(poolrules.ErrAlreadyOwned)
		}
		if err := o.keyHandsOut(p); err != nil {
			return err
		}
		manager := o.managesPool(p)
		h, err := s.targetFor(ctx, o, p, target, manager)
		if err != nil {
			return err
		}
		// A key's targets were checked by targetFor (members of its pool).
		if !manager && !o.scope(p).IsKey() && !authz.Supervises(p, h.user.TeamPath) {
			return errWrongPool
		}
		if err := s.take(ctx, o, h); err != nil {
			return err
		}
		return s.commit(ctx, o, Change{Op: "assign", To: o.r.OwnerID, Actor: p, Reason: reason, RuleVersion: o.pl.RuleVersion})
	})
	if err != nil {
		return nil, err
	}
	return o.after(), nil
}

// Cascader moves what hangs off a customer (open opportunities, quotes,
// unfinished orders) to its new owner in the transfer's transaction.
// Later capabilities register theirs with AddCascader.
type Cascader func(ctx context.Context, tx *ent.Tx, customerID, from, to uuid.UUID) error

// AddCascader registers a cascade for customer transfers.
func (s *Service) AddCascader(c Cascader) { s.cascaders = append(s.cascaders, c) }

// Transfer hands an owned record to another user (转移): by its owner, his
// supervisor or an admin; frozen records only by a supervisor or admin.
func (s *Service) Transfer(ctx context.Context, p *auth.Principal, kind kinds.Kind, id, target uuid.UUID, reason string, cascade bool) (*After, error) {
	o, err := s.run(ctx, p, kind, id, func(o *op) error {
		if o.scope(p).IsKey() {
			// A key bound to the pool transfers any owned record of it to
			// a member (targetFor); it owns and manages nothing itself.
			if err := o.keyHandsOut(p); err != nil {
				return err
			}
			if o.r.OwnerID == nil {
				return ruleErr(poolrules.ErrNotOwned)
			}
		} else if err := o.ownerOrManager(p); err != nil {
			return err
		}
		if o.r.Status != "active" {
			return ruleErr(poolrules.ErrRecordInvalid)
		}
		if o.r.FrozenUntil != nil && o.r.FrozenUntil.After(o.now) && !o.manages(p) {
			return ruleErr(poolrules.ErrRecordFrozen)
		}
		from := *o.r.OwnerID
		if from == target {
			return ruleErr(poolrules.ErrAlreadyOwned)
		}
		// Lock both users in id order so that two opposite transfers wait
		// rather than deadlock.
		first, second := from, target
		if strings.Compare(second.String(), first.String()) < 0 {
			first, second = second, first
		}
		if _, err := s.lockHolder(ctx, o.tx, first, o.st); err != nil {
			return err
		}
		if _, err := s.lockHolder(ctx, o.tx, second, o.st); err != nil {
			return err
		}
		h, err := s.targetFor(ctx, o, p, target, false)
		if err != nil {
			return err
		}
		if o.r.Counts(o.st) {
			if err := adjust(ctx, o.tx, from, o.r.Kind, -1); err != nil {
				return err
			}
		}
		if err := s.take(ctx, o, h); err != nil {
			return err
		}
		if kind.Desc().Dealable && cascade {
			for _, c := range s.cascaders {
				if err := c(ctx, o.tx, id, from, target); err != nil {
					return err
				}
			}
		}
		return s.commit(ctx, o, Change{Op: "transfer", From: &from, To: &target, Actor: p, Reason: reason, RuleVersion: o.pl.RuleVersion})
	})
	if err != nil {
		return nil, err
	}
	return o.after(), nil
}

// Freeze exempts an owned record from reclaim and from claims by others
// until a time the pool allows (冻结), within the owner's maxFrozen.
func (s *Service) Freeze(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID, until *time.Time) (*After, error) {
	o, err := s.run(ctx, p, kind, id, func(o *op) error {
		if err := o.ownerOrManager(p); err != nil {
			return err
		}
		h, err := s.lockHolder(ctx, o.tx, *o.r.OwnerID, o.st)
		if err != nil {
			return err
		}
		frozen, err := s.frozenCount(ctx, o.tx, *o.r.OwnerID, o.r.ID, o.now)
		if err != nil {
			return err
		}
		end, err := poolrules.FreezeUntil(o.now, o.r.Pure(), Rules(o.pl), until, frozen, h.caps.Frozen)
		if err != nil {
			return ruleErr(err)
		}
		// Truncated as o.now, for the answer from the transaction's row.
		end = end.UTC().Truncate(time.Microsecond)
		o.r.FrozenUntil = &end
		return s.commit(ctx, o, Change{Op: "freeze", From: o.r.OwnerID, To: o.r.OwnerID, Actor: p, RuleVersion: o.pl.RuleVersion})
	})
	if err != nil {
		return nil, err
	}
	return o.after(), nil
}

// frozenCount counts the user's records frozen now, other than except.
func (s *Service) frozenCount(ctx context.Context, tx *ent.Tx, owner, except uuid.UUID, now time.Time) (int, error) {
	frozen := where(sql.FieldEQ(colOwnerID, owner), sql.FieldGT(colFrozenUntil, now), sql.FieldNEQ(colID, except))
	total := 0
	for _, k := range kinds.All {
		n, err := s.count(ctx, inTx(tx), k, frozen)
		if err != nil {
			return 0, fmt.Errorf("count frozen %ss: %w", k, err)
		}
		total += n
	}
	return total, nil
}

// Unfreeze ends a freeze now; the release starts a fresh grace period.
func (s *Service) Unfreeze(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID) (*After, error) {
	o, err := s.run(ctx, p, kind, id, func(o *op) error {
		if err := o.ownerOrManager(p); err != nil {
			return err
		}
		if o.r.FrozenUntil == nil || !o.r.FrozenUntil.After(o.now) {
			return ruleErr(poolrules.ErrNotFrozen)
		}
		o.r.FrozenUntil, o.r.ReleasedAt = nil, &o.now
		return s.commit(ctx, o, Change{Op: "unfreeze", From: o.r.OwnerID, To: o.r.OwnerID, Actor: p, RuleVersion: o.pl.RuleVersion})
	})
	if err != nil {
		return nil, err
	}
	return o.after(), nil
}

// Invalidate marks a record invalid (无效): it leaves its owner's cap and
// circulation. By the owner, a supervisor, or for pooled records a pool
// manager.
func (s *Service) Invalidate(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID, reason string) error {
	_, err := s.run(ctx, p, kind, id, func(o *op) error {
		if o.r.Status != "active" {
			return ruleErr(poolrules.ErrRecordInvalid)
		}
		if !o.scope(p).CanEdit(o.row()) {
			return errNotRecordOwner
		}
		if o.r.OwnerID != nil && o.r.Counts(o.st) {
			if err := adjust(ctx, o.tx, *o.r.OwnerID, o.r.Kind, -1); err != nil {
				return err
			}
		}
		o.r.Status, o.r.FrozenUntil = "invalid", nil
		return s.commit(ctx, o, Change{Op: "invalidate", From: o.r.OwnerID, To: o.r.OwnerID, Actor: p, Reason: reason, RuleVersion: o.pl.RuleVersion})
	})
	return err
}

// Restore brings an invalid record back to its pool, pooled: by a
// supervisor of its owner, a manager of its pool, or an admin.
func (s *Service) Restore(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID) error {
	_, err := s.run(ctx, p, kind, id, func(o *op) error {
		if o.r.Status != "invalid" {
			return ruleErr(poolrules.ErrNotInvalid)
		}
		if !o.manages(p) && !o.managesPool(p) {
			return errNotRecordOwner
		}
		prev := o.r.OwnerID
		o.r.Status = "active"
		o.r.OwnerID, o.r.OwnedAt, o.r.LastFollowUpAt, o.r.FrozenUntil, o.r.ReleasedAt = nil, nil, nil, nil, nil
		if err := s.commit(ctx, o, Change{Op: "restore", From: prev, Actor: p, RuleVersion: o.pl.RuleVersion}); err != nil {
			return err
		}
		_, err := s.autoAssign(ctx, o.tx, o.pl, o.r, nil, o.now)
		return err
	})
	return err
}

// DecideClaim approves or rejects a pending claim request, by a manager of
// its pool. Approval re-checks every claim rule for the requester.
func (s *Service) DecideClaim(ctx context.Context, p *auth.Principal, requestID uuid.UUID, approve bool, reason string) (*ent.ClaimRequest, error) {
	req, err := s.store.Client.ClaimRequest.Get(ctx, requestID)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("claim request")
	}
	if err != nil {
		return nil, fmt.Errorf("load claim request: %w", err)
	}
	var out *ent.ClaimRequest
	// The pool's manager decides its requests even when the record has
	// since gone to an owner outside his team.
	visible := func(o *op) bool { return o.sees(p) || o.managesPool(p) }
	_, err = s.runIf(ctx, kinds.Kind(req.Kind), req.RecordID, visible, func(o *op) error {
		cur, err := o.tx.ClaimRequest.Get(ctx, requestID)
		if err != nil {
			return fmt.Errorf("load claim request: %w", err)
		}
		if cur.Status != claimrequest.StatusPending {
			return errNotPending
		}
		// The approval request decides who may decide, step by step
		// (the built-in flow: a manager of the pool).
		after, err := s.stepClaim(ctx, o, p, cur, approve, reason)
		if err != nil {
			return err
		}
		status := claimrequest.StatusRejected
		switch after {
		case approvals.StatusPending:
			out = cur // more steps to go
			return nil
		case approvals.StatusApproved:
			// The last approval re-checks every claim rule for the
			// requester, in this transaction.
			h, err := s.checkClaim(ctx, o, cur.RequesterID, true)
			if err != nil {
				return err
			}
			if err := s.claimFor(ctx, o, h, p); err != nil {
				return err
			}
			status = claimrequest.StatusApproved
		}
		out, err = o.tx.ClaimRequest.UpdateOne(cur).SetStatus(status).SetDeciderID(p.ID).SetReason(reason).SetDecidedAt(o.now).Save(ctx)
		if err != nil {
			return err
		}
		typ := events.ClaimRequestRejected
		if approve {
			typ = events.ClaimRequestApproved
		}
		return emitClaimRequest(ctx, o.tx, typ, p, out, o.now)
	})
	return out, err
}

// emitClaimRequest writes a claim request's event in tx.
func emitClaimRequest(ctx context.Context, tx *ent.Tx, typ events.Type, p *auth.Principal, r *ent.ClaimRequest, now time.Time) error {
	return events.Emit(ctx, tx, events.Event{Type: typ, SubjectKind: events.KindClaimRequest, SubjectID: r.ID,
		Actor: p.EventActor(), OccurredAt: now, Data: events.ClaimRequest{RecordKind: string(r.Kind), RecordID: r.RecordID,
			PoolID: r.PoolID, RequesterID: r.RequesterID, Reason: r.Reason}})
}

// claimRequestList orders claim requests by id: oldest first.
var claimRequestList = listing.ByID(claimrequest.FieldID, func(r *ent.ClaimRequest) uuid.UUID { return r.ID }, false)

// ListClaimRequests returns claim requests p may see: all for admins, those
// of pools he manages for a supervisor, his own for a rep; and the cursor
// of the next page.
func (s *Service) ListClaimRequests(ctx context.Context, p *auth.Principal, status string, cursor *listing.Cursor, limit int) ([]*ent.ClaimRequest, *listing.Cursor, error) {
	pg, err := claimRequestList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.ClaimRequest.Query().Where(claimrequest.StatusEQ(claimrequest.Status(status)), predicate.ClaimRequest(pg.Apply)).
		Limit(pg.Limit)
	if p.Role != auth.RoleAdmin && p.Role != auth.RoleAuditor {
		pools, err := s.store.Reader.Pool.Query().All(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("list pools: %w", err)
		}
		scoped := make([]authz.Pool, len(pools))
		for i, pl := range pools {
			scoped[i] = ScopePool(pl)
		}
		managed := authz.NewScope(p, scoped).ManagedPools()
		q = q.Where(claimrequest.Or(claimrequest.RequesterID(p.ID), claimrequest.PoolIDIn(managed...)))
	}
	reqs, err := q.All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list claim requests: %w", err)
	}
	return reqs, pg.Next(reqs), nil
}
