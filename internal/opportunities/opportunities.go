package opportunities

import (
	"context"
	"fmt"
	"strings"
	"time"

	entsql "entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/opportunity"
	"github.com/shoalcrm/shoal/ent/opportunitystagechange"
	entpipeline "github.com/shoalcrm/shoal/ent/pipeline"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

var (
	errNotFound         = apperr.NotFoundf("opportunity")
	errCustomerNotFound = apperr.NotFoundf("customer")
	errStageNotOpen     = apperr.New(apperr.Unprocessable, "stage_not_open", "the stage is retired, or not an open stage")
	errLostReason       = apperr.New(apperr.Unprocessable, "lost_reason_required", "moving to a lost stage needs lostReason")
	errOwnerNotAllowed  = apperr.New(apperr.Forbidden, "forbidden", "only supervisors and admins choose an opportunity's owner")
	errNotEditable      = apperr.New(apperr.Forbidden, "not_record_owner", "only the owner, his supervisor or an admin may change this")
	errOwnerOutOfScope  = apperr.New(apperr.Forbidden, "target_out_of_scope", "the owner is outside your scope")
)

// Service runs pipelines and opportunities.
type Service struct {
	store *store.Store
	pools *pool.Service
	clock clock.Clock
}

// NewService returns the service and registers its cascade with the pool
// engine: a customer transferred takes its open opportunities along.
func NewService(st *store.Store, pools *pool.Service, clk clock.Clock) *Service {
	s := &Service{store: st, pools: pools, clock: clk}
	pools.AddCascader(s.cascade)
	return s
}

// cascade moves a transferred customer's open opportunities of its old
// owner to the new one, in the transfer's transaction.
func (s *Service) cascade(ctx context.Context, tx *ent.Tx, customerID, from, to uuid.UUID) error {
	_, err := tx.Opportunity.Update().Where(opportunity.CustomerID(customerID), opportunity.OwnerID(from),
		opportunity.StageKindEQ(opportunity.StageKindOpen)).SetOwnerID(to).AddVersion(1).SetUpdatedAt(s.now()).Save(ctx)
	if err != nil {
		return fmt.Errorf("move opportunities: %w", err)
	}
	return nil
}

// visible is "opportunities p sees".
func (s *Service) visible(ctx context.Context, p *auth.Principal) (predicate.Opportunity, error) {
	return s.OnCustomer(ctx, p)
}

// OnCustomer is "rows on a customer p sees": those of the customers he
// sees, and those he owns (a supervisor: owned in his team subtree);
// everything for admins and auditors. It reads the selected table's
// customer_id and owner_id columns, so every document on a customer
// (opportunities, quotes, later orders and contracts) shares one scope.
func (s *Service) OnCustomer(ctx context.Context, p *auth.Principal) (func(*entsql.Selector), error) {
	reach := authz.RecordReach(p)
	if reach.All {
		return func(*entsql.Selector) {}, nil
	}
	if p == nil || (p.Type != auth.ActorUser && p.Type != auth.ActorAPIKey) {
		return func(sel *entsql.Selector) { sel.Where(entsql.False()) }, nil
	}
	sc, err := s.pools.Scope(ctx, p, string(kinds.Customer))
	if err != nil {
		return nil, err
	}
	if p.Type == auth.ActorAPIKey {
		// A key owns nothing: it sees the documents on the customers
		// it sees (its pool's, or all when it is bound to none).
		return func(sel *entsql.Selector) {
			c := entsql.Table(customer.Table)
			seen := entsql.Select(c.C(customer.FieldID)).From(c)
			sc.Predicate(records.CustomerColumns)(seen)
			sel.Where(entsql.In(sel.C(customerIDColumn), seen))
		}, nil
	}
	return func(sel *entsql.Selector) {
		c := entsql.Table(customer.Table)
		seen := entsql.Select(c.C(customer.FieldID)).From(c)
		sc.Predicate(records.CustomerColumns)(seen)
		preds := []*entsql.Predicate{entsql.In(sel.C(customerIDColumn), seen), entsql.EQ(sel.C(ownerIDColumn), p.ID)}
		if reach.TeamPathPrefix != "" {
			u := entsql.Table(user.Table)
			preds = append(preds, entsql.In(sel.C(ownerIDColumn),
				entsql.Select(u.C(user.FieldID)).From(u).Where(entsql.HasPrefix(u.C(user.FieldTeamPath), reach.TeamPathPrefix))))
		}
		sel.Where(entsql.Or(preds...))
	}, nil
}

// The columns OnCustomer reads.
const (
	customerIDColumn = "customer_id"
	ownerIDColumn    = "owner_id"
)

// Input is a new opportunity.
type Input struct {
	Title             string
	CustomerID        uuid.UUID
	ContactID         *uuid.UUID
	PipelineID        *uuid.UUID
	StageID           *uuid.UUID
	Amount            money.Money
	Currency          *string
	Probability       *int
	ExpectedCloseDate *string
	Source            *string
	OwnerID           *uuid.UUID
}

// mayChooseOwner: supervisors and admins choose owners.
func mayChooseOwner(p *auth.Principal) bool {
	return p != nil && p.Type == auth.ActorUser && (p.Role == auth.RoleSupervisor || p.Role == auth.RoleAdmin)
}

// checkOwner checks a chosen owner: an active user within a supervisor's
// team subtree (anyone active for an admin).
func (s *Service) checkOwner(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID) error {
	if !mayChooseOwner(p) {
		return errOwnerNotAllowed
	}
	u, err := tx.User.Get(ctx, id)
	if ent.IsNotFound(err) {
		return apperr.Invalidf("body/ownerId", "unknown_user", "no user has this id")
	}
	if err != nil {
		return fmt.Errorf("owner: %w", err)
	}
	if !u.Active {
		return apperr.New(apperr.Unprocessable, "target_inactive", "the target user is not active")
	}
	if p.Role == auth.RoleSupervisor && u.ID != p.ID && !strings.HasPrefix(u.TeamPath, p.TeamPath) {
		return errOwnerOutOfScope
	}
	return nil
}

// Create makes an opportunity on a customer p sees.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in Input) (*ent.Opportunity, error) {
	title := strings.TrimSpace(in.Title)
	if title == "" {
		return nil, apperr.Invalidf("body/title", "required", "title is required")
	}
	if in.Amount.IsNegative() {
		return nil, apperr.Invalidf("body/amount", "minimum", "amount may not be negative")
	}
	if err := CheckDate("body/expectedCloseDate", in.ExpectedCloseDate); err != nil {
		return nil, err
	}
	var out *ent.Opportunity
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		cu, err := s.Customer(ctx, tx, p, in.CustomerID)
		if err != nil {
			return err
		}
		if in.ContactID != nil {
			if err := CheckContact(ctx, tx, in.CustomerID, *in.ContactID); err != nil {
				return err
			}
		}
		var pl *ent.Pipeline
		if in.PipelineID != nil {
			pl, err = tx.Pipeline.Get(ctx, *in.PipelineID)
			if ent.IsNotFound(err) {
				return apperr.Invalidf("body/pipelineId", "unknown_pipeline", "no pipeline has this id")
			}
		} else {
			pl, err = tx.Pipeline.Query().Where(entpipeline.IsDefault(true)).Only(ctx)
		}
		if err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		var st schema.Stage
		if in.StageID != nil {
			var ok bool
			if st, ok = stageOf(pl, *in.StageID); !ok {
				return apperr.Invalidf("body/stageId", "unknown_stage", "the pipeline has no stage with this id")
			}
			if st.Retired || st.Kind != KindOpen {
				return errStageNotOpen
			}
		} else {
			found := false
			for _, c := range pl.Stages {
				if c.Kind == KindOpen && !c.Retired {
					st, found = c, true
					break
				}
			}
			if !found {
				return errStageNotOpen
			}
		}
		owner := p.ID
		if cu.OwnerID != nil {
			owner = *cu.OwnerID
		}
		if in.OwnerID != nil {
			if err := s.checkOwner(ctx, tx, p, *in.OwnerID); err != nil {
				return err
			}
			owner = *in.OwnerID
		}
		now := s.now()
		c := tx.Opportunity.Create().SetTitle(title).SetCustomerID(cu.ID).SetNillableContactID(in.ContactID).
			SetPipelineID(pl.ID).SetStageID(st.ID).SetStageKind(opportunity.StageKindOpen).SetAmount(in.Amount).
			SetNillableProbability(in.Probability).SetNillableExpectedCloseDate(in.ExpectedCloseDate).
			SetNillableSource(in.Source).SetOwnerID(owner).SetCreatedAt(now).SetUpdatedAt(now)
		if in.Currency != nil {
			c.SetCurrency(*in.Currency)
		}
		if out, err = c.Save(ctx); err != nil {
			return fmt.Errorf("create opportunity: %w", err)
		}
		if err := s.record(ctx, tx, p, out.ID, nil, st.ID, nil, now); err != nil {
			return err
		}
		return s.emit(ctx, tx, p, events.OpportunityCreated, events.KindOpportunity, out.ID,
			events.Opportunity{CustomerID: cu.ID, PipelineID: pl.ID, StageID: st.ID, StageKind: KindOpen, OwnerID: owner})
	})
	return out, err
}

// Customer reads a customer p sees, for a document on it.
func (s *Service) Customer(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID) (*ent.Customer, error) {
	q := tx.Customer.Query().Where(customer.ID(id))
	if !authz.RecordReach(p).All {
		sc, err := s.pools.Scope(ctx, p, string(kinds.Customer))
		if err != nil {
			return nil, err
		}
		q = q.Where(predicate.Customer(sc.Predicate(records.CustomerColumns)))
	}
	cu, err := q.Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errCustomerNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("customer: %w", err)
	}
	return cu, nil
}

// CheckContact checks that contactID is one of the customer's contacts.
func CheckContact(ctx context.Context, tx *ent.Tx, customerID, contactID uuid.UUID) error {
	ok, err := tx.Contact.Query().Where(contact.ID(contactID), contact.CustomerID(customerID)).Exist(ctx)
	if err != nil {
		return fmt.Errorf("contact: %w", err)
	}
	if !ok {
		return apperr.Invalidf("body/contactId", "unknown_contact", "the customer has no contact with this id")
	}
	return nil
}

// CheckDate checks an optional YYYY-MM-DD date.
func CheckDate(field string, d *string) error {
	if d == nil {
		return nil
	}
	if _, err := time.Parse(time.DateOnly, *d); err != nil {
		return apperr.Invalidf(field, "format", "a date is YYYY-MM-DD")
	}
	return nil
}

// Get returns an opportunity p sees.
func (s *Service) Get(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ent.Opportunity, error) {
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, err
	}
	o, err := s.store.Reader.Opportunity.Query().Where(opportunity.ID(id), vis).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get opportunity: %w", err)
	}
	return o, nil
}

// lock reads an opportunity p sees and may change, locked.
func (s *Service) lock(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID) (*ent.Opportunity, error) {
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, err
	}
	o, err := store.ForUpdate(s.store, tx.Opportunity.Query().Where(opportunity.ID(id), vis)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, errNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("load opportunity: %w", err)
	}
	if err := MayEdit(ctx, tx, p, o.OwnerID); err != nil {
		return nil, err
	}
	return o, nil
}

// MayEdit: a document's owner, a supervisor over its owner, an admin.
// Auditors read only (casbin refuses them before this).
func MayEdit(ctx context.Context, tx *ent.Tx, p *auth.Principal, ownerID uuid.UUID) error {
	if p.Role == auth.RoleAdmin || ownerID == p.ID {
		return nil
	}
	if p.Role == auth.RoleSupervisor {
		u, err := tx.User.Get(ctx, ownerID)
		if err == nil && strings.HasPrefix(u.TeamPath, p.TeamPath) {
			return nil
		}
	}
	return errNotEditable
}

// Patch changes an opportunity (merge patch).
type Patch struct {
	Title             *string
	ContactID         patch.Field[uuid.UUID]
	Amount            *money.Money
	Currency          *string
	Probability       patch.Field[int]
	ExpectedCloseDate patch.Field[string]
	Source            patch.Field[string]
	OwnerID           *uuid.UUID
}

// Update applies a patch; ifMatch must name the current version.
func (s *Service) Update(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, in Patch) (*ent.Opportunity, error) {
	if in.Title != nil && strings.TrimSpace(*in.Title) == "" {
		return nil, apperr.Invalidf("body/title", "required", "title may not be empty")
	}
	if in.Amount != nil && in.Amount.IsNegative() {
		return nil, apperr.Invalidf("body/amount", "minimum", "amount may not be negative")
	}
	if err := CheckDate("body/expectedCloseDate", in.ExpectedCloseDate.Value); err != nil {
		return nil, err
	}
	var out *ent.Opportunity
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		o, err := s.lock(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.Check(ifMatch, o.Version); err != nil {
			return err
		}
		m := tx.Opportunity.UpdateOne(o)
		if in.Title != nil {
			m.SetTitle(strings.TrimSpace(*in.Title))
		}
		if in.ContactID.Set {
			if in.ContactID.Value == nil {
				m.ClearContactID()
			} else {
				if err := CheckContact(ctx, tx, o.CustomerID, *in.ContactID.Value); err != nil {
					return err
				}
				m.SetContactID(*in.ContactID.Value)
			}
		}
		if in.Amount != nil {
			m.SetAmount(*in.Amount)
		}
		if in.Currency != nil {
			m.SetCurrency(*in.Currency)
		}
		patch.ApplyTo(in.Probability, m.SetProbability, m.ClearProbability)
		patch.ApplyTo(in.ExpectedCloseDate, m.SetExpectedCloseDate, m.ClearExpectedCloseDate)
		patch.ApplyTo(in.Source, m.SetSource, m.ClearSource)
		if in.OwnerID != nil && *in.OwnerID != o.OwnerID {
			if err := s.checkOwner(ctx, tx, p, *in.OwnerID); err != nil {
				return err
			}
			m.SetOwnerID(*in.OwnerID)
		}
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = o
			return nil
		}
		if out, err = m.AddVersion(1).SetUpdatedAt(s.now()).Save(ctx); err != nil {
			return fmt.Errorf("update opportunity: %w", err)
		}
		return s.emit(ctx, tx, p, events.OpportunityUpdated, events.KindOpportunity, id, events.OpportunityChanged{CustomerID: o.CustomerID, Fields: fields})
	})
	return out, err
}

// ChangeStage moves an opportunity to a stage of its pipeline. A won
// stage marks the customer dealt in the same transaction.
func (s *Service) ChangeStage(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, stageID uuid.UUID, lostReason *string) (*ent.Opportunity, error) {
	var out *ent.Opportunity
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		o, err := s.lock(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.CheckIfGiven(ifMatch, o.Version); err != nil {
			return err
		}
		pl, err := tx.Pipeline.Get(ctx, o.PipelineID)
		if err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		st, ok := stageOf(pl, stageID)
		if !ok {
			return apperr.Invalidf("body/stageId", "unknown_stage", "the opportunity's pipeline has no stage with this id")
		}
		if st.Retired {
			return errStageNotOpen
		}
		var reason *string
		if st.Kind == KindLost {
			if lostReason == nil || strings.TrimSpace(*lostReason) == "" {
				return errLostReason
			}
			r := strings.TrimSpace(*lostReason)
			reason = &r
		}
		if st.ID == o.StageID {
			out = o
			return nil
		}
		now := s.now()
		m := tx.Opportunity.UpdateOne(o).SetStageID(st.ID).SetStageKind(opportunity.StageKind(st.Kind)).
			AddVersion(1).SetUpdatedAt(now)
		switch st.Kind {
		case KindOpen:
			m.ClearClosedAt().ClearLostReason()
		case KindWon:
			m.SetClosedAt(now).ClearLostReason()
		case KindLost:
			m.SetClosedAt(now).SetLostReason(*reason)
		}
		if out, err = m.Save(ctx); err != nil {
			return fmt.Errorf("change stage: %w", err)
		}
		from := o.StageID
		if err := s.record(ctx, tx, p, id, &from, st.ID, reason, now); err != nil {
			return err
		}
		if err := s.emit(ctx, tx, p, events.OpportunityStageChanged, events.KindOpportunity, id,
			events.OpportunityStage{CustomerID: o.CustomerID, FromStageID: from, ToStageID: st.ID, StageKind: st.Kind}); err != nil {
			return err
		}
		if st.Kind == KindWon {
			// 成交: the customer is dealt, which stops its no-deal
			// reclaim (the pool engine emits customer.dealt).
			return s.pools.SetDealt(ctx, tx, p, o.CustomerID, true)
		}
		return nil
	})
	return out, err
}

func (s *Service) record(ctx context.Context, tx *ent.Tx, p *auth.Principal, id uuid.UUID, from *uuid.UUID, to uuid.UUID, reason *string, at time.Time) error {
	a := p.EventActor()
	err := tx.OpportunityStageChange.Create().SetOpportunityID(id).SetNillableFromStageID(from).SetToStageID(to).
		SetNillableLostReason(reason).SetAt(at).SetActorType(a.Type).SetNillableActorID(a.ID).Exec(ctx)
	if err != nil {
		return fmt.Errorf("stage history: %w", err)
	}
	return nil
}

// History returns an opportunity's stage changes, oldest first.
func (s *Service) History(ctx context.Context, p *auth.Principal, id uuid.UUID) ([]*ent.OpportunityStageChange, error) {
	if _, err := s.Get(ctx, p, id); err != nil {
		return nil, err
	}
	rows, err := s.store.Reader.OpportunityStageChange.Query().Where(opportunitystagechange.OpportunityID(id)).
		Order(ent.Asc(opportunitystagechange.FieldAt), ent.Asc(opportunitystagechange.FieldID)).All(ctx)
	if err != nil {
		return nil, fmt.Errorf("stage history: %w", err)
	}
	return rows, nil
}

// Filter narrows a list.
type Filter struct {
	Owner                  *uuid.UUID
	CustomerID, PipelineID *uuid.UUID
	StageID                *uuid.UUID
	StageKind              *string
	CloseFrom, CloseTo     *string
	AmountMin, AmountMax   *money.Money
	Q                      *string
}

var list = listing.New(opportunity.FieldID, func(o *ent.Opportunity) uuid.UUID { return o.ID }, "-createdAt",
	map[string]listing.Key[*ent.Opportunity]{
		"createdAt": {Column: opportunity.FieldCreatedAt, Value: func(o *ent.Opportunity) *time.Time { return &o.CreatedAt }},
	})

// List returns a page of the opportunities p sees.
func (s *Service) List(ctx context.Context, p *auth.Principal, f Filter, cursor *listing.Cursor, limit int) ([]*ent.Opportunity, *listing.Cursor, error) {
	pg, err := list.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	vis, err := s.visible(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	q := s.store.Reader.Opportunity.Query().Where(vis, predicate.Opportunity(pg.Apply))
	if f.Owner != nil {
		q = q.Where(opportunity.OwnerID(*f.Owner))
	}
	if f.CustomerID != nil {
		q = q.Where(opportunity.CustomerID(*f.CustomerID))
	}
	if f.PipelineID != nil {
		q = q.Where(opportunity.PipelineID(*f.PipelineID))
	}
	if f.StageID != nil {
		q = q.Where(opportunity.StageID(*f.StageID))
	}
	if f.StageKind != nil {
		q = q.Where(opportunity.StageKindEQ(opportunity.StageKind(*f.StageKind)))
	}
	if f.CloseFrom != nil {
		q = q.Where(opportunity.ExpectedCloseDateGTE(*f.CloseFrom))
	}
	if f.CloseTo != nil {
		q = q.Where(opportunity.ExpectedCloseDateLTE(*f.CloseTo))
	}
	if f.AmountMin != nil {
		q = q.Where(opportunity.AmountGTE(*f.AmountMin))
	}
	if f.AmountMax != nil {
		q = q.Where(opportunity.AmountLTE(*f.AmountMax))
	}
	if f.Q != nil {
		if v := strings.TrimSpace(*f.Q); v != "" {
			q = q.Where(opportunity.TitleContains(v))
		}
	}
	rows, err := q.Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list opportunities: %w", err)
	}
	return rows, pg.Next(rows), nil
}

// Probability is an opportunity's probability: its own, else its stage's.
func Probability(o *ent.Opportunity, pl *ent.Pipeline) int {
	if o.Probability != nil {
		return *o.Probability
	}
	if pl == nil {
		return 0
	}
	if st, ok := stageOf(pl, o.StageID); ok {
		return st.Probability
	}
	return 0
}

func (s *Service) emit(ctx context.Context, tx *ent.Tx, p *auth.Principal, t events.Type, kind string, id uuid.UUID, data any) error {
	return events.Emit(ctx, tx, events.Event{Type: t, SubjectKind: kind, SubjectID: id,
		Actor: p.EventActor(), OccurredAt: s.now(), Data: data})
}
