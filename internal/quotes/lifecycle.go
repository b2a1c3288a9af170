package quotes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/shopspring/decimal"

	"github.com/shoalcrm/shoal/ent"
	entquote "github.com/shoalcrm/shoal/ent/quote"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/approvals"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
)

// The life of a quote after its draft: submit (the gate and the flow),
// the approvers' decision, send, the customer's answer, revise.

// check is a quote's gate and flow: the blocking lines, and the approval
// plan (no steps: none needed). Lines carry the products' current costs.
func (s *Service) check(ctx context.Context, tx *ent.Tx, q *ent.Quote) ([]schema.QuoteLine, []Blocker, approvals.Plan, error) {
	lines, err := refreshCosts(ctx, tx, q.Lines)
	if err != nil {
		return nil, nil, approvals.Plan{}, err
	}
	st, err := pool.LoadSettings(ctx, tx.Setting)
	if err != nil {
		return nil, nil, approvals.Plan{}, err
	}
	floor := decimal.Zero
	if st.MinQuoteMarginPercent != nil {
		floor, _ = decimal.NewFromString(*st.MinQuoteMarginPercent)
	}
	byCat := map[string]decimal.Decimal{}
	for k, v := range st.MinQuoteMarginPercentByCategory {
		if d, err := decimal.NewFromString(v); err == nil {
			byCat[k] = d
		}
	}
	blockers := Gate(lines, floor, byCat)
	own := ""
	if len(blockers) > 0 {
		own = RuleCostGate
	}
	t := Totals{Subtotal: q.Subtotal, Discount: q.DiscountTotal, Tax: q.TaxTotal, Total: q.Total}
	dp := discountPercent(t)
	facts := approvals.Facts{DiscountPercent: &dp, Total: &q.Total}
	if m := MarginOf(lines); m.Complete && !m.Revenue.IsZero() {
		facts.MarginPercent = &m.Percent
	}
	plan, err := s.approvals.Plan(ctx, tx, approvals.SubjectQuote, facts, own)
	if err != nil {
		return nil, nil, approvals.Plan{}, err
	}
	return lines, blockers, plan, nil
}

// expired reports whether q's validity date has passed (in UTC+8, the
// business day of its users).
func (s *Service) expired(q *ent.Quote) bool {
	today := s.clock.Now().In(businessZone).Format(time.DateOnly)
	return q.ValidUntil < today
}

// businessZone is China Standard Time; quotes are valid until the end of
// their date there.
var businessZone = time.FixedZone("CST", 8*3600)

// act runs change on quote id, locked for p, who may change it, once
// If-Match (optional on these actions) matched, in one transaction.
func (s *Service) act(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string,
	change func(tx *ent.Tx, q *ent.Quote) (*ent.Quote, error)) (*ent.Quote, error) {
	var out *ent.Quote
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		q, err := s.lock(ctx, tx, p, id)
		if err != nil {
			return err
		}
		if err := etag.CheckIfGiven(ifMatch, q.Version); err != nil {
			return err
		}
		out, err = change(tx, q)
		return err
	})
	return out, err
}

// Submit asks for the quote's approval when its gate or flow needs one,
// and approves it at once otherwise.
func (s *Service) Submit(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string) (*ent.Quote, *ent.Approval, error) {
	var ap *ent.Approval
	out, err := s.act(ctx, p, id, ifMatch, func(tx *ent.Tx, q *ent.Quote) (*ent.Quote, error) {
		if q.Status != entquote.StatusDraft {
			return nil, errStatus(q.Status, "submitted")
		}
		if s.expired(q) {
			return nil, errExpired
		}
		lines, blockers, plan, err := s.check(ctx, tx, q)
		if err != nil {
			return nil, err
		}
		now := s.now()
		m := tx.Quote.UpdateOne(q).SetLines(lines).SetSubmittedAt(now).AddVersion(1).SetUpdatedAt(now)
		ap = nil
		if plan.Needed() {
			reasons := make([]map[string]string, len(blockers))
			for i, b := range blockers {
				reasons[i] = map[string]string{"lineId": b.LineID, "reason": b.Reason}
			}
			ap, err = s.approvals.Open(ctx, tx, approvals.Request{SubjectKind: approvals.SubjectQuote, SubjectID: q.ID,
				Requester: p, Plan: plan, Reasons: reasons, Data: events.ApprovalSubject{CustomerID: &q.CustomerID}})
			if err != nil {
				return nil, err
			}
			m.SetStatus(entquote.StatusPendingApproval).SetApprovalID(ap.ID)
		} else {
			m.SetStatus(entquote.StatusApproved).ClearApprovalID()
		}
		out, err := m.Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("submit quote: %w", err)
		}
		return out, s.emit(ctx, tx, p, events.QuoteSubmitted, out, nil)
	})
	return out, ap, err
}

// decide is the approvals Decider of quotes: the quote is locked, the
// step recorded, and on the last approval the quote is approved after its
// rules are checked again (still pending, still valid); a rejection sends
// it back to draft.
func (s *Service) decide(ctx context.Context, p *auth.Principal, a *ent.Approval, d approvals.Decision) error {
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		q, err := store.ForUpdate(s.store, tx.Quote.Query().Where(entquote.ID(a.SubjectID))).Only(ctx)
		if err != nil {
			return fmt.Errorf("load quote: %w", err)
		}
		if q.Status != entquote.StatusPendingApproval || q.ApprovalID == nil || *q.ApprovalID != a.ID {
			return approvals.ErrNotPending
		}
		after, err := s.approvals.Step(ctx, tx, p, a.ID, d, approvals.StepInfo{Data: events.ApprovalSubject{CustomerID: &q.CustomerID}})
		if err != nil {
			return err
		}
		status, typ := entquote.StatusDraft, events.QuoteRejected
		switch after.Status {
		case approvals.StatusPending:
			return nil // more steps to go
		case approvals.StatusApproved:
			if s.expired(q) {
				return errExpired
			}
			status, typ = entquote.StatusApproved, events.QuoteApproved
		}
		out, err := tx.Quote.UpdateOne(q).SetStatus(status).AddVersion(1).SetUpdatedAt(s.now()).Save(ctx)
		if err != nil {
			return fmt.Errorf("decide quote: %w", err)
		}
		return s.emit(ctx, tx, p, typ, out, nil)
	})
}

// Send marks the quote sent to the customer: an approved quote, or a
// draft that needs no approval.
func (s *Service) Send(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string) (*ent.Quote, error) {
	return s.act(ctx, p, id, ifMatch, func(tx *ent.Tx, q *ent.Quote) (*ent.Quote, error) {
		m := tx.Quote.UpdateOne(q)
		switch q.Status {
		case entquote.StatusApproved:
		case entquote.StatusDraft, entquote.StatusPendingApproval:
			lines, blockers, plan, err := s.check(ctx, tx, q)
			if err != nil {
				return nil, err
			}
			if plan.Needed() || q.Status == entquote.StatusPendingApproval {
				return nil, errNeedsApproval(blockers, plan.Rule)
			}
			m.SetLines(lines)
		default:
			return nil, errStatus(q.Status, "sent")
		}
		if s.expired(q) {
			return nil, errExpired
		}
		now := s.now()
		out, err := m.SetStatus(entquote.StatusSent).SetSentAt(now).AddVersion(1).SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("send quote: %w", err)
		}
		return out, s.emit(ctx, tx, p, events.QuoteSent, out, nil)
	})
}

// Answer records the customer's answer to a sent quote: accepted (while
// valid) or declined, with an optional reason.
func (s *Service) Answer(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string, accept bool, reason *string) (*ent.Quote, error) {
	return s.act(ctx, p, id, ifMatch, func(tx *ent.Tx, q *ent.Quote) (*ent.Quote, error) {
		op, status, typ := "declined", entquote.StatusDeclined, events.QuoteDeclined
		if accept {
			op, status, typ = "accepted", entquote.StatusAccepted, events.QuoteAccepted
		}
		if q.Status != entquote.StatusSent {
			return nil, errStatus(q.Status, op)
		}
		if accept && s.expired(q) {
			return nil, errExpired
		}
		now := s.now()
		m := tx.Quote.UpdateOne(q).SetStatus(status).SetAnsweredAt(now).AddVersion(1).SetUpdatedAt(now)
		if !accept && reason != nil && strings.TrimSpace(*reason) != "" {
			m.SetDeclineReason(strings.TrimSpace(*reason))
		}
		out, err := m.Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("answer quote: %w", err)
		}
		return out, s.emit(ctx, tx, p, typ, out, nil)
	})
}

// Revise makes the next revision of a sent or declined quote: a draft
// with its lines, which the old revision names as superseding it.
func (s *Service) Revise(ctx context.Context, p *auth.Principal, id uuid.UUID, ifMatch *string) (*ent.Quote, error) {
	return s.act(ctx, p, id, ifMatch, func(tx *ent.Tx, q *ent.Quote) (*ent.Quote, error) {
		if q.Status != entquote.StatusSent && q.Status != entquote.StatusDeclined {
			return nil, errStatus(q.Status, "revised")
		}
		now := s.now()
		lines := make([]schema.QuoteLine, len(q.Lines))
		for i, l := range q.Lines {
			l.ID = schema.NewID()
			lines[i] = l
		}
		valid := q.ValidUntil
		if s.expired(q) {
			valid = now.AddDate(0, 0, DefaultValidDays).Format(time.DateOnly)
		}
		out, err := tx.Quote.Create().SetNumber(q.Number).SetRevision(q.Revision + 1).SetRootID(q.RootID).SetPreviousID(q.ID).
			SetCustomerID(q.CustomerID).SetNillableOpportunityID(q.OpportunityID).SetNillableContactID(q.ContactID).
			SetOwnerID(q.OwnerID).SetTitle(q.Title).SetCurrency(q.Currency).SetValidUntil(valid).SetLines(lines).
			SetSubtotal(q.Subtotal).SetDiscountTotal(q.DiscountTotal).SetTaxTotal(q.TaxTotal).SetTotal(q.Total).
			SetNotes(q.Notes).SetTerms(q.Terms).SetCreatedBy(p.CreatedByUser()).SetCreatedAt(now).SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return nil, fmt.Errorf("revise quote: %w", err)
		}
		if err := tx.Quote.UpdateOne(q).SetStatus(entquote.StatusSuperseded).SetSupersededByID(out.ID).
			AddVersion(1).SetUpdatedAt(now).Exec(ctx); err != nil {
			return nil, fmt.Errorf("supersede quote: %w", err)
		}
		prev := q.ID
		return out, s.emit(ctx, tx, p, events.QuoteRevised, out, &prev)
	})
}
