package records

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/store"
)

// LeadInput holds a lead's client-set fields. On update, nil means
// unchanged.
type LeadInput struct {
	Name, Company, Phone, Email, Source, Region, Industry, Notes *string
	Tags                                                         *[]string
	PoolID                                                       *uuid.UUID
}

// LeadView is a lead as one caller sees it.
type LeadView struct {
	*ent.Lead
	OwnerName *string
	Masked    bool
	// Placement is set on create only.
	Placement string
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return strings.TrimSpace(*s)
}

// CreateLead creates a lead placed by the pool engine (owned by its
// creator unless at cap; pooled when created into a pool). A duplicate is
// Conflict duplicate and nothing is written.
func (s *Service) CreateLead(ctx context.Context, p *auth.Principal, in LeadInput) (*LeadView, error) {
	keys := keysOf(deref(in.Company), deref(in.Phone), deref(in.Email))
	id := uuid.Must(uuid.NewV7())
	var place string
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		pl, err := s.pools.Place(ctx, tx, p, "lead", in.PoolID)
		if err != nil {
			return err
		}
		if err := s.claimKeys(ctx, tx, p, "lead", id, nil, keys); err != nil {
			return err
		}
		c := tx.Lead.Create().SetID(id).SetName(deref(in.Name)).SetPoolID(pl.Pool.ID).
			SetNillableOwnerID(pl.OwnerID).SetCreatedAt(pl.Now).SetUpdatedAt(pl.Now)
		if pl.OwnerID != nil {
			c.SetOwnedAt(pl.Now)
		}
		setLeadFields(c.Mutation(), in)
		if err := c.Exec(ctx); err != nil {
			return fmt.Errorf("create lead: %w", err)
		}
		if err := s.pools.Created(ctx, tx, p, "lead", id, pl); err != nil {
			return err
		}
		place = pl.How
		return nil
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	v, err := s.leadView(ctx, s.store.Reader, p, id)
	if err != nil {
		return nil, err
	}
	v.Placement = place
	return v, nil
}

// setLeadFields copies the given fields and their normalised forms.
func setLeadFields(m *ent.LeadMutation, in LeadInput) {
	if in.Name != nil {
		m.SetName(deref(in.Name))
		m.SetNameNorm(dedupe.Name(*in.Name))
	}
	if in.Company != nil {
		m.SetCompany(deref(in.Company))
		m.SetCompanyNorm(dedupe.Name(*in.Company))
	}
	if in.Phone != nil {
		m.SetPhone(deref(in.Phone))
		m.SetPhoneNorm(dedupe.Phone(*in.Phone))
	}
	if in.Email != nil {
		m.SetEmail(deref(in.Email))
		m.SetEmailNorm(dedupe.Email(*in.Email))
	}
	set := func(v *string, f func(string)) {
		if v != nil {
			f(deref(v))
		}
	}
	set(in.Source, m.SetSource)
	set(in.Region, m.SetRegion)
	set(in.Industry, m.SetIndustry)
	if in.Notes != nil {
		m.SetNotes(*in.Notes)
	}
	if in.Tags != nil {
		m.SetTags(cleanTags(*in.Tags))
	}
}

// cleanTags trims, drops empties and duplicates, keeping order.
func cleanTags(tags []string) []string {
	out := make([]string, 0, len(tags))
	seen := map[string]bool{}
	for _, t := range tags {
		t = strings.TrimSpace(t)
		if t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// GetLead returns a lead p may see; NotFound otherwise.
func (s *Service) GetLead(ctx context.Context, p *auth.Principal, id uuid.UUID) (*LeadView, error) {
	return s.leadView(ctx, s.store.Reader, p, id)
}

func (s *Service) leadView(ctx context.Context, c *ent.Client, p *auth.Principal, id uuid.UUID) (*LeadView, error) {
	sc, err := s.scope(ctx, p, "lead")
	if err != nil {
		return nil, err
	}
	l, err := c.Lead.Query().Where(lead.ID(id), predicate.Lead(sc)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("lead")
	}
	if err != nil {
		return nil, fmt.Errorf("get lead: %w", err)
	}
	views, err := s.leadViews(ctx, c, p, []*ent.Lead{l})
	if err != nil {
		return nil, err
	}
	return views[0], nil
}

// leadViews adds owner names and applies masking, with one query for the
// owners and one for the pools of the page.
func (s *Service) leadViews(ctx context.Context, c *ent.Client, p *auth.Principal, leads []*ent.Lead) ([]*LeadView, error) {
	owners, pools, err := lookups(ctx, c, len(leads), func(i int) (*uuid.UUID, uuid.UUID) { return leads[i].OwnerID, leads[i].PoolID })
	if err != nil {
		return nil, err
	}
	out := make([]*LeadView, len(leads))
	for i, l := range leads {
		v := &LeadView{Lead: l}
		if l.OwnerID != nil {
			if name, ok := owners[*l.OwnerID]; ok {
				v.OwnerName = &name
			}
		} else {
			m := maskerFor(p, pools[l.PoolID])
			cp := *l
			masked := m.str("name", &cp.Name)
			masked = m.str("company", &cp.Company) || masked
			masked = m.str("phone", &cp.Phone) || masked
			masked = m.str("email", &cp.Email) || masked
			masked = m.str("notes", &cp.Notes) || masked
			masked = m.str("region", &cp.Region) || masked
			masked = m.str("industry", &cp.Industry) || masked
			masked = m.str("source", &cp.Source) || masked
			masked = m.tags(&cp.Tags) || masked
			v.Lead, v.Masked = &cp, masked
		}
		out[i] = v
	}
	return out, nil
}

// lookups loads the owners' names and the pools of n records.
func lookups(ctx context.Context, c *ent.Client, n int, at func(int) (*uuid.UUID, uuid.UUID)) (map[uuid.UUID]string, map[uuid.UUID]*ent.Pool, error) {
	var ownerIDs, poolIDs []uuid.UUID
	seenO, seenP := map[uuid.UUID]bool{}, map[uuid.UUID]bool{}
	for i := range n {
		o, pid := at(i)
		if o != nil && !seenO[*o] {
			seenO[*o] = true
			ownerIDs = append(ownerIDs, *o)
		}
		if o == nil && !seenP[pid] {
			seenP[pid] = true
			poolIDs = append(poolIDs, pid)
		}
	}
	owners := map[uuid.UUID]string{}
	if len(ownerIDs) > 0 {
		users, err := c.User.Query().Where(userIDIn(ownerIDs)).All(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load owners: %w", err)
		}
		for _, u := range users {
			owners[u.ID] = u.Name
		}
	}
	pools := map[uuid.UUID]*ent.Pool{}
	if len(poolIDs) > 0 {
		pls, err := c.Pool.Query().Where(poolIDIn(poolIDs)).All(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("load pools: %w", err)
		}
		for _, pl := range pls {
			pools[pl.ID] = pl
		}
	}
	return owners, pools, nil
}

// UpdateLead changes a lead's fields (never its owner or pool). It needs
// the caller's If-Match; duplicates of changed name/phone/email are
// Conflict duplicate.
func (s *Service) UpdateLead(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in LeadInput) (*LeadView, error) {
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		sc, err := s.scope(ctx, p, "lead")
		if err != nil {
			return err
		}
		// Locked (PostgreSQL), so that the version If-Match is checked
		// against is the one this change overwrites.
		l, err := store.ForUpdate(s.store, tx.Lead.Query().Where(lead.ID(id), predicate.Lead(sc))).Only(ctx)
		if ent.IsNotFound(err) {
			return apperr.NotFoundf("lead")
		}
		if err != nil {
			return fmt.Errorf("load lead: %w", err)
		}
		ok, err := s.canEdit(ctx, tx, p, l.OwnerID, l.PoolID)
		if err != nil {
			return err
		}
		if !ok {
			return errNotEditable
		}
		if err := etag.Check(ifMatch, l.Version); err != nil {
			return err
		}
		// Re-key whatever duplicate-relevant field changed.
		var changed []string
		var keys []dupKey
		if in.Company != nil && dedupe.Name(*in.Company) != l.CompanyNorm {
			changed = append(changed, dedupe.MatchedName)
			keys = append(keys, keysOf(*in.Company, "", "")...)
		}
		if in.Phone != nil && dedupe.Phone(*in.Phone) != l.PhoneNorm {
			changed = append(changed, dedupe.MatchedPhone)
			keys = append(keys, keysOf("", *in.Phone, "")...)
		}
		if in.Email != nil && dedupe.Email(*in.Email) != l.EmailNorm {
			changed = append(changed, dedupe.MatchedEmail)
			keys = append(keys, keysOf("", "", *in.Email)...)
		}
		if len(changed) > 0 {
			if err := releaseKeys(ctx, tx, id, changed...); err != nil {
				return err
			}
			if err := s.claimKeys(ctx, tx, p, "lead", id, nil, keys); err != nil {
				return err
			}
		}
		upd := tx.Lead.UpdateOneID(id).AddVersion(1).SetUpdatedAt(s.clock.Now())
		setLeadFields(upd.Mutation(), in)
		if err := s.emitUpdated(ctx, tx, p, events.KindLead, id, upd.Mutation()); err != nil {
			return err
		}
		return upd.Exec(ctx)
	})
	if err != nil {
		return nil, s.reportRace(ctx, p, err)
	}
	return s.leadView(ctx, s.store.Reader, p, id)
}

// ListLeads lists the leads p may see, filtered, keyset-paginated. The
// total is counted only when asked for.
func (s *Service) ListLeads(ctx context.Context, p *auth.Principal, f Filter) ([]*LeadView, *int, *Cursor, error) {
	sc, fp, ks, err := s.listPredicates(ctx, p, "lead", f)
	if err != nil {
		return nil, nil, nil, err
	}
	var total *int
	if f.IncludeTotal {
		n, err := s.store.Reader.Lead.Query().Where(predicate.Lead(sc), predicate.Lead(fp)).Count(ctx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("count leads: %w", err)
		}
		total = &n
	}
	leads, err := s.store.Reader.Lead.Query().Where(predicate.Lead(sc), predicate.Lead(fp), predicate.Lead(ks)).Limit(f.Limit).All(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("list leads: %w", err)
	}
	var next *Cursor
	if len(leads) == f.Limit && f.Limit > 0 {
		l := leads[len(leads)-1]
		next = f.next(l.ID, l.CreatedAt, l.UpdatedAt, l.OwnedAt, l.LastFollowUpAt)
	}
	views, err := s.leadViews(ctx, s.store.Reader, p, leads)
	return views, total, next, err
}

// principalUser is the id "me" refers to.
func principalUser(p *auth.Principal) uuid.UUID {
	if p.Type == auth.ActorUser {
		return p.ID
	}
	return uuid.Nil
}
