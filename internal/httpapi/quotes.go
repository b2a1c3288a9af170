package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"strconv"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/documents"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/quotes"
	"github.com/shoalcrm/shoal/internal/records"
)

func fenOut(fen int64) api.Money { return money.MustFen(fen).String() }

// quoteOut renders a quote; costs and margins only for those who may
// see them (products.CostVisible).
func quoteOut(q *ent.Quote, seesCost bool) api.Quote {
	out := api.Quote{Id: q.ID, Number: q.Number, Revision: int32(q.Revision), RootId: q.RootID, PreviousId: q.PreviousID,
		SupersededById: q.SupersededByID, CustomerId: q.CustomerID, OpportunityId: q.OpportunityID, ContactId: q.ContactID,
		OwnerId: q.OwnerID, Title: q.Title, Status: api.QuoteStatus(q.Status), Currency: api.Currency(q.Currency),
		Lines: make([]api.QuoteLine, len(q.Lines)), Subtotal: q.Subtotal.String(), DiscountTotal: q.DiscountTotal.String(),
		TaxTotal: q.TaxTotal.String(), Total: q.Total.String(), Notes: q.Notes, Terms: q.Terms, ApprovalId: q.ApprovalID,
		SubmittedAt: utcPtr(q.SubmittedAt), SentAt: utcPtr(q.SentAt), AnsweredAt: utcPtr(q.AnsweredAt),
		DeclineReason: q.DeclineReason, Version: int32(q.Version), CreatedAt: q.CreatedAt.UTC(), UpdatedAt: q.UpdatedAt.UTC()}
	if d, err := dateOf(q.ValidUntil); err == nil {
		out.ValidUntil = d
	}
	for i, l := range q.Lines {
		ol := api.QuoteLine{Id: l.ID, ProductId: l.ProductID, Sku: strOrNil(l.SKU), Name: l.Name,
			Specification: strOrNil(l.Specification), Unit: strOrNil(l.Unit), Quantity: l.Quantity,
			UnitPrice: fenOut(l.UnitPrice), DiscountPercent: l.DiscountPercent, TaxRate: l.TaxRate,
			Subtotal: fenOut(l.Subtotal), Discount: fenOut(l.Discount), Tax: fenOut(l.Tax), Total: fenOut(l.Total)}
		if seesCost && l.UnitCost != nil {
			margin, pct, cost, _ := quotes.LineMargin(l)
			uc, c, m, p := fenOut(*l.UnitCost), cost.String(), margin.String(), pct.StringFixed(2)
			ol.UnitCost, ol.Cost, ol.Margin, ol.MarginPercent = &uc, &c, &m, &p
		}
		out.Lines[i] = ol
	}
	if seesCost {
		m := quotes.MarginOf(q.Lines)
		c, mg, p := m.Cost.String(), m.Margin.String(), m.Percent.StringFixed(2)
		out.CostTotal, out.Margin, out.MarginPercent = &c, &mg, &p
	}
	return out
}

func linesIn(in []api.QuoteLineInput) ([]quotes.LineInput, error) {
	out := make([]quotes.LineInput, len(in))
	for i, l := range in {
		li := quotes.LineInput{ProductID: l.ProductId, Name: l.Name, Specification: l.Specification, Unit: l.Unit,
			Quantity: l.Quantity, DiscountPercent: l.DiscountPercent, TaxRate: l.TaxRate}
		if l.UnitPrice != nil {
			m, err := moneyIn("body/lines/"+strconv.Itoa(i)+"/unitPrice", *l.UnitPrice)
			if err != nil {
				return nil, err
			}
			li.UnitPrice = &m
		}
		out[i] = li
	}
	return out, nil
}

// quoteColumns are a quote's export columns: one row per quote, costs
// only for those who may see them.
func quoteColumns(p *auth.Principal) []export.Column[api.Quote] {
	id := func(v *uuid.UUID) string {
		if v == nil {
			return ""
		}
		return v.String()
	}
	cols := []export.Column[api.Quote]{
		col("id", "编号", func(v api.Quote) string { return v.Id.String() }),
		col("number", "报价单号", func(v api.Quote) string { return v.Number }),
		col("revision", "版本", func(v api.Quote) string { return strconv.Itoa(int(v.Revision)) }),
		col("title", "标题", func(v api.Quote) string { return v.Title }),
		col("status", "状态", func(v api.Quote) string { return string(v.Status) }),
		col("customerId", "客户编号", func(v api.Quote) string { return v.CustomerId.String() }),
		col("opportunityId", "商机编号", func(v api.Quote) string { return id(v.OpportunityId) }),
		col("ownerId", "负责人编号", func(v api.Quote) string { return v.OwnerId.String() }),
		col("currency", "币种", func(v api.Quote) string { return string(v.Currency) }),
		col("validUntil", "有效期至", func(v api.Quote) string { return v.ValidUntil.String() }),
		col("subtotal", "小计", func(v api.Quote) string { return v.Subtotal }),
		col("discountTotal", "折扣", func(v api.Quote) string { return v.DiscountTotal }),
		col("taxTotal", "税额", func(v api.Quote) string { return v.TaxTotal }),
		col("total", "合计", func(v api.Quote) string { return v.Total }),
	}
	if products.CostVisible(p) {
		cols = append(cols,
			col("costTotal", "成本", func(v api.Quote) string { return export.Text(v.CostTotal) }),
			col("margin", "毛利", func(v api.Quote) string { return export.Text(v.Margin) }),
			col("marginPercent", "毛利率", func(v api.Quote) string { return export.Text(v.MarginPercent) }))
	}
	return append(cols,
		col("createdAt", "创建时间", func(v api.Quote) string { return export.Time(v.CreatedAt) }),
		col("updatedAt", "更新时间", func(v api.Quote) string { return export.Time(v.UpdatedAt) }))
}

// CreateQuote makes a draft quote.
func (s *Server) CreateQuote(ctx context.Context, req api.CreateQuoteRequestObject) (api.CreateQuoteResponseObject, error) {
	b := req.Body
	lines, err := linesIn(b.Lines)
	if err != nil {
		return nil, err
	}
	in := quotes.Input{Title: b.Title, CustomerID: b.CustomerId, OpportunityID: b.OpportunityId, ContactID: b.ContactId,
		ValidUntil: dateIn(b.ValidUntil), Notes: b.Notes, Terms: b.Terms, Lines: lines}
	if b.Currency != nil {
		c := string(*b.Currency)
		in.Currency = &c
	}
	p := auth.FromContext(ctx)
	q, err := s.quotes.Create(ctx, p, in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "quote", q.ID.String())
	return api.CreateQuote201JSONResponse{Body: quoteOut(q, products.CostVisible(p)),
		Headers: api.CreateQuote201ResponseHeaders{ETag: etag.Ptr(q.Version), Location: location("quotes", q.ID)}}, nil
}

// GetQuote returns a quote the caller sees.
func (s *Server) GetQuote(ctx context.Context, req api.GetQuoteRequestObject) (api.GetQuoteResponseObject, error) {
	p := auth.FromContext(ctx)
	q, err := s.quotes.Get(ctx, p, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetQuote200JSONResponse{Body: quoteOut(q, products.CostVisible(p)), Headers: api.GetQuote200ResponseHeaders{ETag: etag.Ptr(q.Version)}}, nil
}

// ListQuotes lists the quotes the caller sees, as JSON or as a CSV or XLSX
// file.
func (s *Server) ListQuotes(ctx context.Context, req api.ListQuotesRequestObject) (api.ListQuotesResponseObject, error) {
	prm := req.Params
	p := auth.FromContext(ctx)
	f := quotes.Filter{CustomerID: prm.CustomerId, OpportunityID: prm.OpportunityId, Number: prm.Number, Q: prm.Q}
	if prm.OwnerId != nil {
		if *prm.OwnerId == "me" {
			f.Owner = &p.ID
		} else {
			id, err := uuid.Parse(*prm.OwnerId)
			if err != nil {
				return nil, apperr.Invalidf("query.ownerId", "invalid", "ownerId is me or a user id")
			}
			f.Owner = &id
		}
	}
	if prm.Status != nil {
		st := string(*prm.Status)
		f.Status = &st
	}
	seesCost := products.CostVisible(p)
	if w, ok := exportWanted(ctx); ok {
		body, cd, err := stream(ctx, s, w, exportOf[api.Quote]{exportAudit: exportAudit{op: "listQuotes", targetType: "quote"},
			noun: "quotes", columns: quoteColumns(p), bom: prm.Bom,
			page: func(ctx context.Context, after *records.Cursor) ([]api.Quote, *records.Cursor, error) {
				rows, next, err := s.quotes.List(ctx, p, f, after, exportPageSize)
				return outAll(rows, func(q *ent.Quote) api.Quote { return quoteOut(q, seesCost) }), next, err
			}})
		if err != nil {
			return nil, err
		}
		h := api.ListQuotes200ResponseHeaders{ContentDisposition: cd}
		if w.format == export.XLSX {
			return api.ListQuotes200ApplicationvndOpenxmlformatsOfficedocumentSpreadsheetmlSheetResponse{Body: body, Headers: h}, nil
		}
		return api.ListQuotes200TextcsvResponse{Body: body, Headers: h}, nil
	}
	cursor, err := s.cursorIn(ctx, prm.Cursor)
	if err != nil {
		return nil, err
	}
	rows, next, err := s.quotes.List(ctx, p, f, cursor, page.Size(prm.Limit))
	if err != nil {
		return nil, err
	}
	out := api.QuoteList{Items: outAll(rows, func(q *ent.Quote) api.Quote { return quoteOut(q, seesCost) })}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListQuotes200JSONResponse{Body: out}, nil
}

// UpdateQuote patches a draft quote.
func (s *Server) UpdateQuote(ctx context.Context, req api.UpdateQuoteRequestObject) (api.UpdateQuoteResponseObject, error) {
	noteTarget(ctx, "quote", req.Id.String())
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := quotes.Patch{Title: b.Title, ValidUntil: dateIn(b.ValidUntil), Notes: b.Notes, Terms: b.Terms}
	if c := fieldOf(b.ContactId, same[uuid.UUID]); c.Set {
		in.ContactID, in.ClearContact = c.Value, c.Value == nil
	}
	if b.Currency != nil {
		c := string(*b.Currency)
		in.Currency = &c
	}
	if b.Lines != nil {
		if in.Lines, err = linesIn(*b.Lines); err != nil {
			return nil, err
		}
	}
	p := auth.FromContext(ctx)
	q, err := s.quotes.Update(ctx, p, req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateQuote200JSONResponse{Body: quoteOut(q, products.CostVisible(p)), Headers: api.UpdateQuote200ResponseHeaders{ETag: etag.Ptr(q.Version)}}, nil
}

// SubmitQuote submits a draft: approved at once, or pending approval.
func (s *Server) SubmitQuote(ctx context.Context, req api.SubmitQuoteRequestObject) (api.SubmitQuoteResponseObject, error) {
	noteTarget(ctx, "quote", req.Id.String())
	p := auth.FromContext(ctx)
	q, _, err := s.quotes.Submit(ctx, p, req.Id, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	return api.SubmitQuote200JSONResponse{Body: quoteOut(q, products.CostVisible(p)), Headers: api.SubmitQuote200ResponseHeaders{ETag: etag.Ptr(q.Version)}}, nil
}

// SendQuote marks a quote sent.
func (s *Server) SendQuote(ctx context.Context, req api.SendQuoteRequestObject) (api.SendQuoteResponseObject, error) {
	noteTarget(ctx, "quote", req.Id.String())
	p := auth.FromContext(ctx)
	q, err := s.quotes.Send(ctx, p, req.Id, req.Params.IfMatch)
	if err != nil {
		return nil, err
	}
	return api.SendQuote200JSONResponse{Body: quoteOut(q, products.CostVisible(p)), Headers: api.SendQuote200ResponseHeaders{ETag: etag.Ptr(q.Version)}}, nil
}

// AcceptQuote records the customer's acceptance.
func (s *Server) AcceptQuote(ctx context.Context, req api.AcceptQuoteRequestObject) (api.AcceptQuoteResponseObject, error) {
	noteTarget(ctx, "quote", req.Id.String())
	p := auth.FromContext(ctx)
	q, err := s.quotes.Answer(ctx, p, req.Id, req.Params.IfMatch, true, nil)
	if err != nil {
		return nil, err
	}
	return api.AcceptQuote200JSONResponse{Body: quoteOut(q, products.CostVisible(p)), Headers: api.AcceptQuote200ResponseHeaders{ETag: etag.Ptr(q.Version)}}, nil
}

// DeclineQuote records the customer's refusal.
func (s *Server) DeclineQuote(ctx context.Context, req api.DeclineQuoteRequestObject) (api.DeclineQuoteResponseObject, error) {
	noteTarget(ctx, "quote", req.Id.String())
	p := auth.FromContext(ctx)
	var reason *string
	if req.Body != nil {
		reason = req.Body.Reason
	}
	q, err := s.quotes.Answer(ctx, p, req.Id, req.Params.IfMatch, false, reason)
	if err != nil {
		return nil, err
	}
	return api.DeclineQuote200JSONResponse{Body: quoteOut(q, products.CostVisible(p)), Headers: api.DeclineQuote200ResponseHeaders{ETag: etag.Ptr(q.Version)}}, nil
}

// ReviseQuote makes a quote's next revision.
func (s *Server) ReviseQuote(ctx context.Context, req api.ReviseQuoteRequestObject) (api.ReviseQuoteResponseObject, error) {
	p := auth.FromContext(ctx)
	q, err := s.quotes.Revise(ctx, p, req.Id, req.Params.IfMatch)
	if err != nil {
		noteTarget(ctx, "quote", req.Id.String())
		return nil, err
	}
	noteTarget(ctx, "quote", q.ID.String())
	return api.ReviseQuote201JSONResponse{Body: quoteOut(q, products.CostVisible(p)),
		Headers: api.ReviseQuote201ResponseHeaders{ETag: etag.Ptr(q.Version), Location: location("quotes", q.ID)}}, nil
}

// RenderQuote renders a quote as printable HTML with the quote template.
// The customer and contact are read as the caller may see them (masked
// as in getCustomer and getContact); one he may no longer see is left out.
func (s *Server) RenderQuote(ctx context.Context, req api.RenderQuoteRequestObject) (api.RenderQuoteResponseObject, error) {
	p := auth.FromContext(ctx)
	q, err := s.quotes.Get(ctx, p, req.Id)
	if err != nil {
		return nil, err
	}
	var customer, contact, owner documents.Party
	switch cv, err := s.records.GetCustomer(ctx, p, q.CustomerID); {
	case err == nil:
		customer = documents.Party{Name: cv.Name, Address: cv.Address}
	case !apperr.HasCode(err, "not_found"):
		return nil, err
	}
	if q.ContactID != nil {
		switch cv, err := s.records.GetContact(ctx, p, *q.ContactID); {
		case err == nil:
			contact = documents.Party{Name: cv.Name, Phone: cv.Phone, Email: cv.Email}
		case !apperr.HasCode(err, "not_found"):
			return nil, err
		}
	}
	if u, err := s.store.Reader.User.Get(ctx, q.OwnerID); err == nil {
		owner = documents.Party{Name: u.Name, Email: u.Email}
	} else if !ent.IsNotFound(err) {
		return nil, fmt.Errorf("quote owner: %w", err)
	}
	html, err := s.documents.RenderQuote(ctx, quotes.Document(q, customer, contact, owner))
	if err != nil {
		return nil, err
	}
	return api.RenderQuote200TexthtmlResponse{Body: bytes.NewReader(html), ContentLength: int64(len(html))}, nil
}
