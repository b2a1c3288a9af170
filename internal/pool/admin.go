package pool

import (
	"context"
	stdsql "database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/ent/setting"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/store"
)

// PoolInput creates or changes a pool. Unset patch fields are unchanged.
type PoolInput struct {
	Kind                  string
	Name                  *string
	IsDefault             *bool
	MemberTeamIDs         *[]uuid.UUID
	ManagerIDs            *[]uuid.UUID
	IdleDays              patch.Field[int]
	NoDealDays            patch.Field[int]
	NotifyDaysBefore      patch.Field[int]
	FreezeMaxDays         patch.Field[int]
	ReclaimDealt          *bool
	ClaimCooldownDays     patch.Field[int]
	DailyClaimLimit       patch.Field[int]
	ClaimRequiresApproval *bool
	VisibleFields         patch.Field[[]string]
	ByGrade               *map[string]schema.GradeRule
	AutoAssign            *string
}

// changesRules reports whether the input touches any rule (as opposed to
// name, members or managers), which makes a new rule version.
func (in PoolInput) changesRules() bool {
	return in.IdleDays.Set || in.NoDealDays.Set || in.NotifyDaysBefore.Set || in.FreezeMaxDays.Set ||
		in.ReclaimDealt != nil || in.ClaimCooldownDays.Set || in.DailyClaimLimit.Set ||
		in.ClaimRequiresApproval != nil || in.VisibleFields.Set || in.ByGrade != nil || in.AutoAssign != nil
}

// poolMutation is the part of a pool mutation with optional int rules.
type poolMutation interface {
	SetIdleDays(int)
	ClearIdleDays()
	SetNoDealDays(int)
	ClearNoDealDays()
	SetNotifyDaysBefore(int)
	ClearNotifyDaysBefore()
	SetFreezeMaxDays(int)
	ClearFreezeMaxDays()
	SetClaimCooldownDays(int)
	ClearClaimCooldownDays()
	SetDailyClaimLimit(int)
	ClearDailyClaimLimit()
}

func applyInts(m poolMutation, in PoolInput) {
	patch.Apply(in.IdleDays, m.SetIdleDays, m.ClearIdleDays)
	patch.Apply(in.NoDealDays, m.SetNoDealDays, m.ClearNoDealDays)
	patch.Apply(in.NotifyDaysBefore, m.SetNotifyDaysBefore, m.ClearNotifyDaysBefore)
	patch.Apply(in.FreezeMaxDays, m.SetFreezeMaxDays, m.ClearFreezeMaxDays)
	patch.Apply(in.ClaimCooldownDays, m.SetClaimCooldownDays, m.ClearClaimCooldownDays)
	patch.Apply(in.DailyClaimLimit, m.SetDailyClaimLimit, m.ClearDailyClaimLimit)
}

func applyPool(m *ent.PoolMutation, in PoolInput) {
	if in.Name != nil {
		m.SetName(*in.Name)
	}
	if in.IsDefault != nil {
		m.SetIsDefault(*in.IsDefault)
	}
	if in.MemberTeamIDs != nil {
		m.SetMemberTeamIds(*in.MemberTeamIDs)
	}
	if in.ManagerIDs != nil {
		m.SetManagerIds(*in.ManagerIDs)
	}
	applyInts(m, in)
	if in.ReclaimDealt != nil {
		m.SetReclaimDealt(*in.ReclaimDealt)
	}
	if in.ClaimRequiresApproval != nil {
		m.SetClaimRequiresApproval(*in.ClaimRequiresApproval)
	}
	if in.VisibleFields.Set {
		if in.VisibleFields.Value == nil {
			m.ClearVisibleFields()
		} else {
			m.SetVisibleFields(*in.VisibleFields.Value)
		}
	}
	if in.ByGrade != nil {
		m.SetByGrade(*in.ByGrade)
	}
	if in.AutoAssign != nil {
		m.SetAutoAssign(entpool.AutoAssign(*in.AutoAssign))
	}
}

// snapshot records the pool's rules at its current version.
func snapshot(ctx context.Context, tx *ent.Tx, pl *ent.Pool, by uuid.UUID) error {
	raw, err := json.Marshal(map[string]any{
		"idleDays": pl.IdleDays, "noDealDays": pl.NoDealDays, "notifyDaysBefore": pl.NotifyDaysBefore,
		"freezeMaxDays": pl.FreezeMaxDays, "reclaimDealt": pl.ReclaimDealt, "claimCooldownDays": pl.ClaimCooldownDays,
		"dailyClaimLimit": pl.DailyClaimLimit, "claimRequiresApproval": pl.ClaimRequiresApproval,
		"visibleFields": pl.VisibleFields, "byGrade": pl.ByGrade, "autoAssign": pl.AutoAssign,
	})
	if err != nil {
		return err
	}
	rules := map[string]any{}
	if err := json.Unmarshal(raw, &rules); err != nil {
		return err
	}
	return tx.PoolRuleVersion.Create().SetPoolID(pl.ID).SetVersion(pl.RuleVersion).SetRules(rules).SetChangedBy(by).Exec(ctx)
}

// CreatePool creates a pool at rule version 1 (admins only, by policy).
func (s *Service) CreatePool(ctx context.Context, p *auth.Principal, in PoolInput) (*ent.Pool, error) {
	var out *ent.Pool
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		if in.IsDefault != nil && *in.IsDefault {
			if _, err := tx.Pool.Update().Where(entpool.KindEQ(entpool.Kind(in.Kind)), entpool.IsDefault(true)).
				SetIsDefault(false).AddVersion(1).Save(ctx); err != nil {
				return fmt.Errorf("unset default: %w", err)
			}
		}
		c := tx.Pool.Create().SetKind(entpool.Kind(in.Kind))
		applyPool(c.Mutation(), in)
		var err error
		if out, err = c.Save(ctx); err != nil {
			return fmt.Errorf("create pool: %w", err)
		}
		if err := events.Emit(ctx, tx, events.Event{Type: events.PoolCreated, SubjectKind: events.KindPool, SubjectID: out.ID,
			Actor: p.EventActor(), OccurredAt: s.clock.Now(), Data: events.Pool{Kind: string(out.Kind)}}); err != nil {
			return err
		}
		return snapshot(ctx, tx, out, p.ID)
	})
	return out, err
}

// UpdatePool changes a pool: admins any, supervisors pools they manage.
// A rule change bumps the rule version and snapshots it, and enqueues the
// re-judging of the pool's owned records under it in the same transaction
// (see SetRejudgeQueue). ifMatch must name the pool's version read
// (locked) in the transaction (etag.Check).
func (s *Service) UpdatePool(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in PoolInput) (*ent.Pool, error) {
	var out *ent.Pool
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		pl, err := store.ForUpdate(s.store, tx.Pool.Query().Where(entpool.ID(id))).Only(ctx)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("pool")
		}
		if err != nil {
			return fmt.Errorf("load pool: %w", err)
		}
		if !IsManager(p, pl) {
			return errWrongPool
		}
		if err := etag.Check(ifMatch, pl.Version); err != nil {
			return err
		}
		if p.Role != auth.RoleAdmin && (in.ManagerIDs != nil || in.IsDefault != nil) {
			return apperr.New(apperr.Forbidden, "forbidden", "only admins change a pool's managers or default flag")
		}
		if in.IsDefault != nil && *in.IsDefault {
			// The pool that loses the flag changed: its version moves.
			if _, err := tx.Pool.Update().Where(entpool.KindEQ(pl.Kind), entpool.IDNEQ(id), entpool.IsDefault(true)).
				SetIsDefault(false).AddVersion(1).Save(ctx); err != nil {
				return fmt.Errorf("unset default: %w", err)
			}
		}
		if in.IsDefault != nil && !*in.IsDefault && pl.IsDefault {
			return apperr.New(apperr.Conflict, "default_pool_required", "make another pool the default instead")
		}
		upd := tx.Pool.UpdateOne(pl).AddVersion(1)
		applyPool(upd.Mutation(), in)
		if in.changesRules() {
			upd.AddRuleVersion(1)
		}
		changed, err := events.ChangedFields(ctx, upd.Mutation())
		if err != nil {
			return err
		}
		if out, err = upd.Save(ctx); err != nil {
			return fmt.Errorf("update pool: %w", err)
		}
		if err := events.Emit(ctx, tx, events.Event{Type: events.PoolUpdated, SubjectKind: events.KindPool, SubjectID: id,
			Actor: p.EventActor(), OccurredAt: s.clock.Now(), Data: events.Changed{Fields: changed}}); err != nil {
			return err
		}
		if in.changesRules() {
			if err := snapshot(ctx, tx, out, p.ID); err != nil {
				return err
			}
			if s.queue != nil {
				// In the change's transaction: committed together, or
				// neither is.
				return s.queue.EnqueueRejudge(ctx, tx, id, out.RuleVersion)
			}
		}
		return nil
	})
	if err == nil && in.changesRules() && s.queue == nil {
		err = s.Rejudge(ctx, id)
	}
	return out, err
}

// RejudgeQueue re-judges a pool's records under its new rules after the
// transaction that changed them commits (the job queue, internal/jobs).
type RejudgeQueue interface {
	// EnqueueRejudge schedules the re-judging in tx, the transaction
	// that changed the pool's rules to ruleVersion.
	EnqueueRejudge(ctx context.Context, tx *ent.Tx, poolID uuid.UUID, ruleVersion int) error
}

// SetRejudgeQueue makes rule changes re-judge records through q, a job
// enqueued in the change's transaction, so a crash after the commit cannot
// leave deadlines stale. Without one (a Service built without the job
// queue) UpdatePool re-judges inline after committing.
func (s *Service) SetRejudgeQueue(q RejudgeQueue) { s.queue = q }

// poolList orders pools by id: creation order.
var poolList = listing.ByID(entpool.FieldID, func(p *ent.Pool) uuid.UUID { return p.ID }, false)

// ListPools returns pools in creation order, optionally of one kind, and
// the cursor of the next page.
func (s *Service) ListPools(ctx context.Context, kind *string, cursor *listing.Cursor, limit int) ([]*ent.Pool, *listing.Cursor, error) {
	pg, err := poolList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	pools, err := s.store.Reader.Pool.Query().
		Where(predicate.Pool(listing.Where(listing.Eq(entpool.FieldKind, kind))), predicate.Pool(pg.Apply)).
		Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list pools: %w", err)
	}
	return pools, pg.Next(pools), nil
}

// SettingsPatch changes the global settings.
type SettingsPatch struct {
	MaxOwnedLeads, MaxOwnedCustomers, MaxFrozen patch.Field[int]
	CapCountsDealt                              *bool
	MinQuoteMarginPercent                       patch.Field[string]
	// MinQuoteMarginPercentByCategory replaces the overrides when set
	// (nil value: none).
	MinQuoteMarginPercentByCategory patch.Field[map[string]string]
}

// UpdateSettings changes the global settings. Flipping capCountsDealt
// recounts every user's customer counter in the same transaction. ifMatch
// must name the settings' version read (locked) in the transaction
// (etag.Check).
func (s *Service) UpdateSettings(ctx context.Context, ifMatch *string, in SettingsPatch) (Settings, error) {
	var out Settings
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		// The row exists from the first change on; make sure it does, so
		// that there is a row to lock and two first changes cannot both
		// pass the version check.
		if err := tx.Setting.Create().SetID(settingsKey).SetValue(map[string]any{}).
			OnConflictColumns(setting.FieldID).DoNothing().Exec(ctx); err != nil && !errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("ensure settings: %w", err)
		}
		if _, err := store.ForUpdate(s.store, tx.Setting.Query().Where(setting.ID(settingsKey))).Only(ctx); err != nil {
			return fmt.Errorf("lock settings: %w", err)
		}
		st, err := loadSettings(ctx, tx.Setting)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, st.Version); err != nil {
			return err
		}
		var changed []string
		set := func(name string, f patch.Field[int], dst **int) {
			if f.Set {
				if (*dst == nil) != (f.Value == nil) || (f.Value != nil && **dst != *f.Value) {
					changed = append(changed, name)
				}
				*dst = f.Value
			}
		}
		set("maxOwnedLeads", in.MaxOwnedLeads, &st.MaxOwnedLeads)
		set("maxOwnedCustomers", in.MaxOwnedCustomers, &st.MaxOwnedCustomers)
		set("maxFrozen", in.MaxFrozen, &st.MaxFrozen)
		if f := in.MinQuoteMarginPercent; f.Set {
			if err := checkPercent("body/minQuoteMarginPercent", f.Value); err != nil {
				return err
			}
			if (st.MinQuoteMarginPercent == nil) != (f.Value == nil) || (f.Value != nil && *st.MinQuoteMarginPercent != *f.Value) {
				changed = append(changed, "minQuoteMarginPercent")
			}
			st.MinQuoteMarginPercent = f.Value
		}
		if f := in.MinQuoteMarginPercentByCategory; f.Set {
			var next map[string]string
			if f.Value != nil && len(*f.Value) > 0 {
				next = *f.Value
			}
			for cat, v := range next {
				if err := checkPercent("body/minQuoteMarginPercentByCategory/"+cat, &v); err != nil {
					return err
				}
			}
			if !maps.Equal(st.MinQuoteMarginPercentByCategory, next) {
				changed = append(changed, "minQuoteMarginPercentByCategory")
			}
			st.MinQuoteMarginPercentByCategory = next
		}
		recount := in.CapCountsDealt != nil && *in.CapCountsDealt != st.CapCountsDealt
		if recount {
			changed = append(changed, "capCountsDealt")
		}
		if changed == nil {
			changed = []string{}
		}
		if in.CapCountsDealt != nil {
			st.CapCountsDealt = *in.CapCountsDealt
		}
		raw, _ := json.Marshal(st)
		value := map[string]any{}
		if err := json.Unmarshal(raw, &value); err != nil {
			return err
		}
		st.Version++
		if err := tx.Setting.UpdateOneID(settingsKey).SetValue(value).SetVersion(st.Version).Exec(ctx); err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		if recount {
			if err := s.recountOwnedCustomers(ctx, tx, st.CapCountsDealt); err != nil {
				return err
			}
		}
		out = st
		// Settings are one row keyed by name, not by id: the subject id
		// is the nil UUID.
		return events.Emit(ctx, tx, events.Event{Type: events.SettingsUpdated, SubjectKind: events.KindSettings,
			SubjectID: uuid.Nil, Actor: auth.ContextActor(ctx), OccurredAt: s.clock.Now(), Data: events.Changed{Fields: changed}})
	})
	return out, err
}

// checkPercent checks a margin percentage: a decimal from -100 to 100.
func checkPercent(field string, v *string) error {
	if v == nil {
		return nil
	}
	d, err := decimal.NewFromString(*v)
	if err != nil || d.LessThan(decimal.NewFromInt(-100)) || d.GreaterThan(decimal.NewFromInt(100)) {
		return apperr.Invalidf(field, "invalid", "a percentage is a decimal from -100 to 100")
	}
	return nil
}

// historyList orders ownership changes by id: oldest first.
var historyList = listing.ByID(ownershipchange.FieldID, func(h *ent.OwnershipChange) uuid.UUID { return h.ID }, false)

// recountOwnedCustomers sets every user's customer counter to the number
// of active customers he owns, dealt ones only when countDealt.
func (s *Service) recountOwnedCustomers(ctx context.Context, tx *ent.Tx, countDealt bool) error {
	return s.store.SetCount(ctx, tx, user.Table, user.FieldID, user.FieldOwnedCustomers, customer.Table, customer.FieldOwnerID,
		func(sel *sql.Selector) *sql.Predicate {
			p := sql.EQ(sel.C(customer.FieldStatus), customer.StatusActive.String())
			if !countDealt {
				p = sql.And(p, sql.EQ(sel.C(customer.FieldDealStatus), false))
			}
			return p
		})
}

// History returns a record's ownership history, oldest first, if p may see
// the record, and the cursor of the next page. It reads without locks.
func (s *Service) History(ctx context.Context, p *auth.Principal, kind kinds.Kind, id uuid.UUID, cursor *listing.Cursor, limit int) ([]*ent.OwnershipChange, *listing.Cursor, error) {
	pg, err := historyList.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	r, pl, err := s.peek(ctx, kind, id) // kind.NotFound() when there is no such record
	if err != nil {
		return nil, nil, err
	}
	o := &op{r: r, pl: pl}
	if r.OwnerID != nil {
		owner, err := s.store.Reader.User.Get(ctx, *r.OwnerID)
		if err != nil {
			return nil, nil, fmt.Errorf("load owner: %w", err)
		}
		o.ownerPath = owner.TeamPath
	}
	if !o.sees(p) {
		return nil, nil, kind.NotFound()
	}
	// A merged record's history moved to its survivor.
	if survivor := r.mergedInto(); survivor != nil {
		return nil, nil, kind.MergedInto(*survivor)
	}
	rows, err := s.store.Reader.OwnershipChange.Query().
		Where(ownershipchange.RecordKindEQ(ownershipchange.RecordKind(kind)), ownershipchange.RecordID(id), predicate.OwnershipChange(pg.Apply)).
		Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list history: %w", err)
	}
	return rows, pg.Next(rows), nil
}
