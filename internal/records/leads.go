package records

import (
	"context"
	"fmt"
	"strings"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/dedupe"
	"github.com/shoalcrm/shoal/internal/kinds"
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

// leads is the lead kind of the owned-record service.
var leads = &ownedKind[*ent.Lead, LeadInput]{
	kind:  kinds.Lead,
	sorts: leadList,
	lock: func(ctx context.Context, st *store.Store, tx *ent.Tx, id uuid.UUID) error {
		_, err := store.ForUpdate(st, tx.Lead.Query().Where(lead.ID(id))).IDs(ctx)
		return err
	},
	find: func(ctx context.Context, c *ent.Client, limit int, preds ...func(*sql.Selector)) ([]*ent.Lead, error) {
		q := c.Lead.Query().Where(leadPreds(preds)...)
		if limit > 0 {
			q.Limit(limit)
		}
		return q.All(ctx)
	},
	count: func(ctx context.Context, c *ent.Client, preds ...func(*sql.Selector)) (int, error) {
		return c.Lead.Query().Where(leadPreds(preds)...).Count(ctx)
	},
	meta: func(l *ent.Lead) rowMeta {
		return rowMeta{ID: l.ID, OwnerID: l.OwnerID, PoolID: l.PoolID, Version: l.Version, CreatedAt: l.CreatedAt,
			UpdatedAt: l.UpdatedAt, OwnedAt: l.OwnedAt, LastFollowUpAt: l.LastFollowUpAt, MergedInto: mergedInto(string(l.Status), l.MergedIntoID)}
	},
	clone: func(l *ent.Lead) *ent.Lead { cp := *l; return &cp },
	masked: func(l *ent.Lead) ([]*string, *[]string) {
		return []*string{&l.Name, &l.Company, &l.Phone, &l.Email, &l.Notes, &l.Region, &l.Industry, &l.Source}, &l.Tags
	},
	// A lead's name key is its company's: two people of one company are
	// one prospect.
	keyed: func(in LeadInput) dedupeFields {
		return dedupeFields{name: in.Company, phone: in.Phone, email: in.Email}
	},
	stored: func(l *ent.Lead) dedupeFields {
		return dedupeFields{name: &l.CompanyNorm, phone: &l.PhoneNorm, email: &l.EmailNorm}
	},
	insert: func(ctx context.Context, tx *ent.Tx, id uuid.UUID, in LeadInput, place func(placedMutation)) error {
		return newLead(tx, in, place).Exec(ctx)
	},
	update: func(tx *ent.Tx, id uuid.UUID, in LeadInput) (versionedMutation, func(context.Context) error) {
		upd := tx.Lead.UpdateOneID(id)
		setLeadFields(upd.Mutation(), in)
		return upd.Mutation(), upd.Exec
	},
}

// newLead is the builder of a new lead with the input's fields; place sets
// its id and placement columns.
func newLead(tx *ent.Tx, in LeadInput, place func(placedMutation)) *ent.LeadCreate {
	c := tx.Lead.Create().SetName(deref(in.Name))
	place(c.Mutation())
	setLeadFields(c.Mutation(), in)
	return c
}

func leadPreds(preds []func(*sql.Selector)) []predicate.Lead {
	out := make([]predicate.Lead, len(preds))
	for i, p := range preds {
		out[i] = p
	}
	return out
}

func leadView(v *View[*ent.Lead]) *LeadView {
	return &LeadView{Lead: v.Row, OwnerName: v.OwnerName, Masked: v.Masked, Placement: v.Placement}
}

// CreateLead creates a lead placed by the pool engine (owned by its
// creator unless at cap; pooled when created into a pool). A duplicate is
// Conflict duplicate and nothing is written.
func (s *Service) CreateLead(ctx context.Context, p *auth.Principal, in LeadInput) (*LeadView, error) {
	v, err := leads.create(ctx, s, p, in, in.PoolID)
	if err != nil {
		return nil, err
	}
	return leadView(v), nil
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
	setReach(m, in.Phone, in.Email)
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

// reachMutation is a row that holds a phone and an email with their
// normalised (duplicate-key) forms: leads and contacts.
type reachMutation interface {
	SetPhone(string)
	SetPhoneNorm(string)
	SetEmail(string)
	SetEmailNorm(string)
}

// setReach copies the given phone and email and their normalised forms.
func setReach(m reachMutation, phone, email *string) {
	if phone != nil {
		m.SetPhone(deref(phone))
		m.SetPhoneNorm(dedupe.Phone(*phone))
	}
	if email != nil {
		m.SetEmail(deref(email))
		m.SetEmailNorm(dedupe.Email(*email))
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
	v, err := leads.view(ctx, s, c, p, id)
	if err != nil {
		return nil, err
	}
	return leadView(v), nil
}

// leadViews adds owner names and applies masking.
func (s *Service) leadViews(ctx context.Context, c *ent.Client, p *auth.Principal, list []*ent.Lead) ([]*LeadView, error) {
	views, err := leads.views(ctx, c, p, list)
	return mapViews(views, leadView), err
}

// mapViews converts generic views into a kind's view type.
func mapViews[R, V any](views []*View[R], conv func(*View[R]) V) []V {
	if views == nil {
		return nil
	}
	out := make([]V, len(views))
	for i, v := range views {
		out[i] = conv(v)
	}
	return out
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
// the caller's If-Match; duplicates of changed company/phone/email are
// Conflict duplicate.
func (s *Service) UpdateLead(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in LeadInput) (*LeadView, error) {
	v, err := leads.updateFields(ctx, s, p, id, ifMatch, in)
	if err != nil {
		return nil, err
	}
	return leadView(v), nil
}

// ListLeads lists the leads p may see, filtered, keyset-paginated. The
// total is counted only when asked for.
func (s *Service) ListLeads(ctx context.Context, p *auth.Principal, f Filter) ([]*LeadView, *int, *Cursor, error) {
	views, total, next, err := leads.list(ctx, s, p, f)
	return mapViews(views, leadView), total, next, err
}

// principalUser is the id "me" refers to.
func principalUser(p *auth.Principal) uuid.UUID {
	if p.Type == auth.ActorUser {
		return p.ID
	}
	return uuid.Nil
}
