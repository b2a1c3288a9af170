package httpapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/observe"
)

var (
	errUnauthorized = apperr.New(apperr.Unauthenticated, "unauthorized", "missing or invalid credentials")
	errForbidden    = apperr.New(apperr.Forbidden, "forbidden", "you may not perform this operation")
)

// operationChain is the middleware every spec operation runs through, in
// this order: remember the operationId, audit, authenticate, authorize
// (casbin), then validate the request against the spec. Authorization runs
// before validation so that a caller who may not call an operation learns
// nothing about its contract.
func (s *Server) operationChain(op string) []echo.MiddlewareFunc {
	chain := []echo.MiddlewareFunc{tagOperation(op), s.auditTrail(op)}
	if !s.public[op] {
		chain = append(chain, s.authenticate, s.authorize(op))
	}
	return append(chain, s.validator)
}

// authenticate resolves the credential (Authorization: Bearer, or
// X-API-Key) into a principal on the request context, and applies the
// per-key rate limit.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		cred := r.Header.Get("X-API-Key")
		if h := r.Header.Get(echo.HeaderAuthorization); cred == "" && h != "" {
			scheme, token, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				return errUnauthorized
			}
			cred = strings.TrimSpace(token)
		}
		if cred == "" {
			return errUnauthorized
		}
		p, err := s.auth.Authenticate(r.Context(), cred)
		if err != nil {
			return err
		}
		c.SetRequest(r.WithContext(auth.WithPrincipal(r.Context(), p)))
		if p.Type == auth.ActorAPIKey {
			if ok, wait := s.auth.AllowKey(p.ID); !ok {
				s.metrics.rateLimited.WithLabelValues("apiKey").Inc()
				return &apperr.Error{Kind: apperr.RateLimited, Code: "rate_limited", Message: "rate limit exceeded for this API key", RetryAfter: wait}
			}
		}
		if p.Type == auth.ActorUser {
			if ok, wait := s.auth.AllowUser(p.ID); !ok {
				s.metrics.rateLimited.WithLabelValues("user").Inc()
				return &apperr.Error{Kind: apperr.RateLimited, Code: "rate_limited", Message: "rate limit exceeded for this user", RetryAfter: wait}
			}
		}
		return next(c)
	}
}

// authorizedKey marks a request whose operation passed the casbin check.
type authorizedKey struct{}

// authorize denies unless a policy allows the principal's role (or one of
// its API key scopes) to call op.
func (s *Server) authorize(op string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if !s.enforcer.Allowed(auth.FromContext(r.Context()), op) {
				return errForbidden
			}
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), authorizedKey{}, op)))
			return next(c)
		}
	}
}

// requireAuthorized is a strict-server middleware: it refuses to run any
// non-public handler whose request did not pass authorize, so a route wired
// without the chain fails closed.
func (s *Server) requireAuthorized(f api.StrictHandlerFunc, _ string) api.StrictHandlerFunc {
	return func(c echo.Context, req any) (any, error) {
		op := operationID(c)
		if !s.public[op] && c.Request().Context().Value(authorizedKey{}) != op {
			return nil, &apperr.Error{Kind: apperr.Internal, Code: "internal", Message: "operation reached its handler unauthorized: " + op}
		}
		return f(c, req)
	}
}

// auditInfo is filled in by handlers that know their target better than
// the path does (creates).
type auditInfo struct {
	targetType, targetID, detail string
	// actorID names the user behind an unauthenticated call (a login).
	actorID *uuid.UUID
}

type auditKey struct{}

// noteTarget tells the audit trail what the operation acted on.
func noteTarget(ctx context.Context, targetType, targetID string) {
	if a, ok := ctx.Value(auditKey{}).(*auditInfo); ok {
		a.targetType, a.targetID = targetType, targetID
	}
}

// noteActor names the user an unauthenticated operation (login) acted as.
func noteActor(ctx context.Context, id uuid.UUID) {
	if a, ok := ctx.Value(auditKey{}).(*auditInfo); ok {
		a.actorID = &id
	}
}

// noteDetail adds a short, secret-free note to the audit entry.
func noteDetail(ctx context.Context, detail string) {
	if a, ok := ctx.Value(auditKey{}).(*auditInfo); ok {
		a.detail = detail
	}
}

// auditTrail records every data-changing operation (and every login
// attempt) with its actor, target, request id, client address and outcome.
// Reads are not audited.
func (s *Server) auditTrail(op string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Method == http.MethodGet || r.Method == http.MethodHead || (s.public[op] && op != "login") {
				return next(c)
			}
			info := &auditInfo{targetID: c.Param("id")}
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), auditKey{}, info)))
			err := next(c)
			if err != nil {
				c.Error(err) // render now so the status is known
			}
			status := c.Response().Status
			ctx := c.Request().Context()
			p := auth.FromContext(ctx)
			if p == nil && op != "login" {
				return nil // unauthenticated noise on a guarded operation
			}
			ev := audit.Event{
				ActorType:     "anonymous",
				Operation:     op,
				TargetType:    info.targetType,
				TargetID:      info.targetID,
				RequestID:     observe.RequestID(ctx),
				ClientAddress: c.RealIP(),
				Status:        status,
				Detail:        info.detail,
			}
			switch {
			case p != nil:
				ev.ActorType, ev.ActorID = string(p.Type), &p.ID
			case info.actorID != nil:
				ev.ActorType, ev.ActorID = string(auth.ActorUser), info.actorID
			}
			switch {
			case status < 400:
				ev.Outcome = audit.Success
			case status == http.StatusUnauthorized || status == http.StatusForbidden:
				ev.Outcome = audit.Denied
			default:
				ev.Outcome = audit.Failure
			}
			if err := s.audit.Record(context.WithoutCancel(ctx), ev); err != nil {
				s.log.ErrorContext(ctx, "audit write failed", "error", err, "operation", op)
			}
			return nil
		}
	}
}
