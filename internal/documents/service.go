package documents

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"html/template"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/documenttemplate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/store"
)

var errNotFound = apperr.NotFoundf("document template")

// TemplateInvalid is the 422 refusing a body that does not parse or does
// not execute against the kind's sample; its message is the error, with
// the line.
func TemplateInvalid(err error) *apperr.Error {
	msg := err.Error()
	return &apperr.Error{Kind: apperr.Unprocessable, Code: "template_invalid", Message: msg,
		Fields: []apperr.FieldError{{Field: "body/body", Code: "template_invalid", Message: msg}}}
}

// Template is a kind's template: the stored row, or the built-in default
// (version 1, never updated) until an admin changes it.
type Template struct {
	Kind                                                    Kind
	Name, Body                                              string
	CompanyName, CompanyAddress, CompanyPhone, CompanyTaxID string
	// IsDefault: the body is the built-in one.
	IsDefault bool
	Version   int
	// UpdatedAt and UpdatedBy are nil until the first change.
	UpdatedAt *time.Time
	UpdatedBy *uuid.UUID
}

// Company is the letterhead as the template sees it (.Company).
func (t Template) Company() Party {
	return Party{Name: t.CompanyName, Address: t.CompanyAddress, Phone: t.CompanyPhone, TaxID: t.CompanyTaxID}
}

// Patch changes a template. Reset puts the built-in body back (it may not
// come with Body).
type Patch struct {
	Name, Body                                              *string
	CompanyName, CompanyAddress, CompanyPhone, CompanyTaxID *string
	Reset                                                   bool
}

// Service keeps the templates and renders documents with them.
type Service struct {
	store *store.Store
	clock clock.Clock

	mu    sync.Mutex
	cache map[Kind]parsed
}

// parsed is a kind's body parsed, for the version it was read at.
type parsed struct {
	version int
	body    string
	t       *template.Template
}

// NewService returns the templates service.
func NewService(st *store.Store, clk clock.Clock) *Service {
	return &Service{store: st, clock: clk, cache: map[Kind]parsed{}}
}

func lookup(kind string) (Kind, kindSpec, error) {
	k := Kind(kind)
	spec, ok := registry[k]
	if !ok {
		return "", kindSpec{}, errNotFound
	}
	return k, spec, nil
}

func defaultTemplate(k Kind, spec kindSpec) Template {
	return Template{Kind: k, Name: spec.name, Body: spec.body, IsDefault: true, Version: 1}
}

func fromRow(row *ent.DocumentTemplate) Template {
	k := Kind(row.ID)
	at := row.UpdatedAt.UTC()
	return Template{Kind: k, Name: row.Name, Body: row.Body, CompanyName: row.CompanyName, CompanyAddress: row.CompanyAddress,
		CompanyPhone: row.CompanyPhone, CompanyTaxID: row.CompanyTaxID, IsDefault: row.Body == registry[k].body,
		Version: row.Version, UpdatedAt: &at, UpdatedBy: row.UpdatedBy}
}

// List returns every kind's template, sorted by kind.
func (s *Service) List(ctx context.Context) ([]Template, error) {
	rows, err := s.store.Reader.DocumentTemplate.Query().All(ctx)
	if err != nil {
		return nil, fmt.Errorf("list document templates: %w", err)
	}
	stored := map[Kind]*ent.DocumentTemplate{}
	for _, r := range rows {
		stored[Kind(r.ID)] = r
	}
	out := make([]Template, 0, len(registry))
	for _, k := range Kinds() {
		if r, ok := stored[k]; ok {
			out = append(out, fromRow(r))
		} else {
			out = append(out, defaultTemplate(k, registry[k]))
		}
	}
	return out, nil
}

// Get returns kind's template; not_found for an unknown kind.
func (s *Service) Get(ctx context.Context, kind string) (Template, error) {
	k, spec, err := lookup(kind)
	if err != nil {
		return Template{}, err
	}
	row, err := s.store.Reader.DocumentTemplate.Get(ctx, string(k))
	if ent.IsNotFound(err) {
		return defaultTemplate(k, spec), nil
	}
	if err != nil {
		return Template{}, fmt.Errorf("get document template: %w", err)
	}
	return fromRow(row), nil
}

func trimmed(field string, v *string, required bool) (*string, error) {
	if v == nil {
		return nil, nil
	}
	t := strings.TrimSpace(*v)
	if required && t == "" {
		return nil, apperr.Invalidf(field, "required", strings.TrimPrefix(field, "body/")+" may not be empty")
	}
	return &t, nil
}

// Update changes kind's template; ifMatch must name the version read
// (etag.Check; the built-in default is version 1). A body is checked
// against the kind's sample first: one that fails is refused with
// template_invalid and nothing changes. A change that changes nothing
// makes no version and no event.
func (s *Service) Update(ctx context.Context, p *auth.Principal, kind string, ifMatch *string, in Patch) (Template, error) {
	k, spec, err := lookup(kind)
	if err != nil {
		return Template{}, err
	}
	if in.Reset && in.Body != nil {
		return Template{}, apperr.Invalidf("body/reset", "conflict", "reset and body may not be given together")
	}
	name, err := trimmed("body/name", in.Name, true)
	if err != nil {
		return Template{}, err
	}
	if in.Body != nil && strings.TrimSpace(*in.Body) == "" {
		return Template{}, apperr.Invalidf("body/body", "required", "body may not be empty")
	}
	letterhead := make([]*string, 4)
	for i, f := range []struct {
		name string
		v    *string
	}{{"body/companyName", in.CompanyName}, {"body/companyAddress", in.CompanyAddress},
		{"body/companyPhone", in.CompanyPhone}, {"body/companyTaxId", in.CompanyTaxID}} {
		if letterhead[i], err = trimmed(f.name, f.v, false); err != nil {
			return Template{}, err
		}
	}
	body := in.Body
	if in.Reset {
		body = &spec.body
	}
	if in.Body != nil {
		if err := Check(k, *in.Body); err != nil {
			return Template{}, TemplateInvalid(err)
		}
	}
	var out Template
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		now := s.now()
		// The row exists from the first change on (at version 1, the
		// default's), so there is a row to lock and two first changes
		// cannot both pass the version check.
		if err := tx.DocumentTemplate.Create().SetID(string(k)).SetName(spec.name).SetBody(spec.body).
			SetCreatedAt(now).SetUpdatedAt(now).
			OnConflictColumns(documenttemplate.FieldID).DoNothing().Exec(ctx); err != nil && !errors.Is(err, stdsql.ErrNoRows) {
			return fmt.Errorf("ensure document template: %w", err)
		}
		cur, err := store.ForUpdate(s.store, tx.DocumentTemplate.Query().Where(documenttemplate.ID(string(k)))).Only(ctx)
		if err != nil {
			return fmt.Errorf("lock document template: %w", err)
		}
		if err := etag.Check(ifMatch, cur.Version); err != nil {
			return err
		}
		m := tx.DocumentTemplate.UpdateOne(cur)
		if name != nil {
			m.SetName(*name)
		}
		if body != nil {
			m.SetBody(*body)
		}
		for i, set := range []func(string) *ent.DocumentTemplateUpdateOne{m.SetCompanyName, m.SetCompanyAddress, m.SetCompanyPhone, m.SetCompanyTaxID} {
			if letterhead[i] != nil {
				set(*letterhead[i])
			}
		}
		fields, err := events.ChangedFields(ctx, m.Mutation())
		if err != nil {
			return err
		}
		if len(fields) == 0 {
			out = fromRow(cur)
			return nil
		}
		if p != nil && p.Type == auth.ActorUser {
			m.SetUpdatedBy(p.ID)
		}
		row, err := m.SetVersion(cur.Version + 1).SetUpdatedAt(now).Save(ctx)
		if err != nil {
			return fmt.Errorf("update document template: %w", err)
		}
		out = fromRow(row)
		return events.Emit(ctx, tx, events.Event{Type: events.DocumentTemplateUpdated, SubjectKind: events.KindDocumentTemplate,
			SubjectID: uuid.Nil, Actor: p.EventActor(), OccurredAt: now, Data: events.DocumentTemplate{Kind: string(k), Fields: fields}})
	})
	if err != nil {
		return Template{}, err
	}
	return out, nil
}

// Render prints doc, the data of a kind ("quote": a QuoteDoc), with the
// kind's template (stored or built in), its Company filled from the
// template's letterhead.
func (s *Service) Render(ctx context.Context, kind string, doc any) ([]byte, error) {
	tpl, err := s.Get(ctx, kind)
	if err != nil {
		return nil, err
	}
	spec := registry[tpl.Kind]
	data, ok := spec.fill(doc, tpl.Company())
	if !ok {
		return nil, fmt.Errorf("render %s: the data is a %T", kind, doc)
	}
	t, err := s.parsed(tpl)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", kind, err)
	}
	out, err := execute(t, data)
	if err != nil {
		return nil, fmt.Errorf("render %s: %w", kind, err)
	}
	return out, nil
}

// RenderQuote prints a quote.
func (s *Service) RenderQuote(ctx context.Context, doc QuoteDoc) ([]byte, error) {
	return s.Render(ctx, string(Quote), doc)
}

// parsed returns tpl's body parsed, from the cache when the version and
// the body are the ones parsed last.
func (s *Service) parsed(tpl Template) (*template.Template, error) {
	s.mu.Lock()
	c, ok := s.cache[tpl.Kind]
	s.mu.Unlock()
	if ok && c.version == tpl.Version && c.body == tpl.Body {
		return c.t, nil
	}
	t, err := parseBody(tpl.Kind, tpl.Body)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.cache[tpl.Kind] = parsed{version: tpl.Version, body: tpl.Body, t: t}
	s.mu.Unlock()
	return t, nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }
