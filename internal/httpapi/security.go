package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/observe"
)

var (
	errUnauthorized = apperr.New(apperr.Unauthenticated, "unauthorized", "missing or invalid credentials")
	errForbidden    = apperr.New(apperr.Forbidden, "forbidden", "you may not perform this operation")
)

// operationChain is the middleware every spec operation runs through, in
// this order: remember the operationId, audit, authenticate, authorize
// (casbin), then validate the request against the spec, and on a POST
// honour Idempotency-Key (idempotent). Authorization runs
// before validation so that a caller who may not call an operation learns
// nothing about its contract.
func (s *Server) operationChain(op string) []echo.MiddlewareFunc {
	chain := []echo.MiddlewareFunc{tagOperation(op), s.auditTrail(op)}
	if !s.public[op] {
		chain = append(chain, s.authenticate, s.authorize(op))
	}
	if n := negotiate(s.offers[op]); n != nil {
		// Before the contract check, which fills in the query's defaults:
		// an export's audit row names the parameters the client gave.
		chain = append(chain, n)
	}
	chain = append(chain, s.validator)
	if s.posts[op] {
		chain = append(chain, s.idempotent(op))
	}
	return chain
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
		var budget auth.Budget
		policy := ""
		switch p.Type {
		case auth.ActorAPIKey:
			budget, policy = s.auth.AllowKey(p.ID), "apiKey"
		case auth.ActorUser:
			budget, policy = s.auth.AllowUser(p.ID), "user"
		}
		if policy != "" {
			setRateLimit(c.Response().Header(), policy, budget)
			if !budget.Allowed {
				s.metrics.rateLimited.WithLabelValues(policy).Inc()
				return &apperr.Error{Kind: apperr.RateLimited, Code: "rate_limited", Message: "rate limit exceeded for this " + policy, RetryAfter: budget.Wait}
			}
		}
		return next(c)
	}
}

// setRateLimit advertises the caller's request budget in the header fields
// of draft-ietf-httpapi-ratelimit-headers-10: the policy (quota q = the
// bucket size, window w = the seconds an empty bucket takes to refill) and
// the current state (r = requests left, t = seconds until the bucket is
// full again). Both are set before the handler runs, so that every answer
// to an authenticated request carries them, errors included.
func setRateLimit(h http.Header, policy string, b auth.Budget) {
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", policy, b.Quota, ceilSeconds(b.Window)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", policy, b.Remaining, ceilSeconds(b.Reset)))
}

// ceilSeconds rounds d up to whole seconds, as the header fields count them.
func ceilSeconds(d time.Duration) int64 {
	return int64((d + time.Second - 1) / time.Second)
}

// authorizedKey marks a request whose operation passed the casbin check.
type authorizedKey struct{}

// authorize denies unless a policy allows the principal's role (or one of
// its API key scopes) to call op.
func (s *Server) authorize(op string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			p := auth.FromContext(r.Context())
			if !s.enforcer.Allowed(p, op) {
				return s.denied(c, p, op)
			}
			c.SetRequest(r.WithContext(context.WithValue(r.Context(), authorizedKey{}, op)))
			return next(c)
		}
	}
}

// denied is the answer to p calling op without a policy allowing it. An
// API key that lacks a scope some policy grants op is told which scope
// (RFC 6750 insufficient_scope), so that its owner knows what to ask for;
// otherwise the operation is simply forbidden.
func (s *Server) denied(c echo.Context, p *auth.Principal, op string) error {
	if p == nil || p.Type != auth.ActorAPIKey {
		return errForbidden
	}
	var scopes []string
	for _, sc := range auth.Scopes {
		if s.enforcer.SubjectAllowed("scope:"+sc, op) {
			scopes = append(scopes, sc)
		}
	}
	if len(scopes) == 0 {
		return errForbidden
	}
	return &apperr.Error{Kind: apperr.Forbidden, Code: "insufficient_scope",
		Message: "this API key lacks a scope the operation needs: " + strings.Join(scopes, " or "),
		Extra:   map[string]any{"scopes": scopes}}
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

// noteTarget tells the audit trail what the operation acted on.
func noteTarget(ctx context.Context, targetType, targetID string) {
	if p := audit.PendingFrom(ctx); p != nil {
		p.Update(func(ev *audit.Event) { ev.TargetType, ev.TargetID = targetType, audit.TargetID(targetID) })
	}
}

// noteActor names the user an unauthenticated operation (login) acted as.
func noteActor(ctx context.Context, id uuid.UUID) {
	if p := audit.PendingFrom(ctx); p != nil {
		p.Update(func(ev *audit.Event) { ev.ActorType, ev.ActorID = string(auth.ActorUser), &id })
	}
}

// noteDetail adds a short, secret-free note to the audit entry.
func noteDetail(ctx context.Context, detail string) {
	if p := audit.PendingFrom(ctx); p != nil {
		p.Update(func(ev *audit.Event) { ev.Detail = detail })
	}
}

// auditTrail records every data-changing operation (and every login
// attempt) with its actor, target, request id, client address and outcome.
// Reads are not audited, nor are requests to guarded operations without
// valid credentials (anyone can make those, in any number).
//
// A request whose change commits has its row written inside the same
// transaction (see audit.Pending), with outcome success and the status the
// spec gives the operation's success (its 2xx response; the first of two,
// as for a claim that may be answered 202, since the handler has not
// answered yet when the transaction commits). Its target comes from the
// path id or, for a create, from the record the transaction created. A
// request that ends without committing anything (refused, invalid, not
// found, failed) is recorded after the response, with its final status.
func (s *Server) auditTrail(op string) echo.MiddlewareFunc {
	success := successStatus(s.spec, op)
	resolve := s.resolveAudit(op)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.Method == http.MethodGet || r.Method == http.MethodHead || (s.public[op] && op != "login") {
				return next(c)
			}
			targetType, targetID := targetTypeOf(op, c.Path()), ""
			if id := audit.TargetID(c.Param("id")); id != "" {
				targetID = id
			}
			ctx, pending := s.audit.Begin(r.Context(), audit.Event{
				ActorType:     "anonymous",
				Operation:     op,
				TargetType:    targetType,
				TargetID:      targetID,
				RequestID:     observe.RequestID(r.Context()),
				ClientAddress: c.RealIP(),
				Outcome:       audit.Success,
				Status:        success,
			}, resolve)
			c.SetRequest(r.WithContext(ctx))
			err := next(c)
			if err != nil {
				c.Error(err) // render now so the status is known
			}
			ev, written := pending.Close()
			if written {
				return nil
			}
			ctx = c.Request().Context()
			p := auth.FromContext(ctx)
			if p == nil && op != "login" {
				return nil // unauthenticated noise on a guarded operation
			}
			status := c.Response().Status
			ev.Status = status
			if p != nil {
				ev.ActorType, ev.ActorID = string(p.Type), &p.ID
			}
			switch {
			case status < 400:
				ev.Outcome = audit.Success
			case status == http.StatusUnauthorized || status == http.StatusForbidden:
				ev.Outcome = audit.Denied
			default:
				ev.Outcome = audit.Failure
			}
			if op == "login" && ev.Outcome != audit.Success {
				// A failed login names the account it tried (target)
				// but was not made by it.
				ev.ActorType, ev.ActorID = "anonymous", nil
			}
			if err := s.audit.Record(context.WithoutCancel(ctx), ev); err != nil {
				s.log.ErrorContext(ctx, "audit write failed", "error", err, "operation", op)
			}
			return nil
		}
	}
}

// createdTargets names, for each create operation, the audit target type
// and the ent type of the record whose id is the target. The handler notes
// the target only after the commit, too late for the row written inside
// the transaction.
var createdTargets = map[string]struct{ targetType, entType string }{
	"createUser":        {"user", "User"},
	"createTeam":        {"team", "Team"},
	"createApiKey":      {"apiKey", "APIKey"},
	"createLead":        {string(kinds.Lead), "Lead"},
	"createCustomer":    {string(kinds.Customer), "Customer"},
	"createContact":     {"contact", "Contact"},
	"createFollowUp":    {"followUp", "FollowUp"},
	"createPool":        {"pool", "Pool"},
	"createTag":         {"tag", "Tag"},
	"createImport":      {"import", "BulkImport"},
	"createWebhook":     {"webhook", "Webhook"},
	"createProduct":     {"product", "Product"},
	"createPipeline":    {"pipeline", "Pipeline"},
	"createOpportunity": {"opportunity", "Opportunity"},
	"createQuote":       {"quote", "Quote"},
}

// opTargets names the audit target type of the writes whose path has no
// {id} and that create nothing of their own: batch claims act on records
// of a kind, a session's operations on its user.
var opTargets = map[string]string{
	"login": "user", "refreshToken": "user", "logout": "user", "changeMyPassword": "user",
	"batchClaimLeads": string(kinds.Lead), "batchClaimCustomers": string(kinds.Customer),
	"mergeLeads": string(kinds.Lead), "mergeCustomers": string(kinds.Customer),
	"updateSettings": "settings", "runSweep": "sweep", "advanceTestClock": "testClock",
	"exportPersonalData": "personalData", "erasePersonalData": "personalData",
	"updateApprovalFlow": "approvalFlow", "updateDocumentTemplate": "documentTemplate",
}

// targetTypeOf is the audit target type of op on route: the type of the
// path's {id}, of what a create creates, or opTargets'.
func targetTypeOf(op, route string) string {
	if strings.Contains(route, ":id") {
		if t := pathTargetType(route); t != "" {
			return t
		}
	}
	if t, ok := createdTargets[op]; ok {
		return t.targetType
	}
	return opTargets[op]
}

// resolveAudit completes op's audit row inside its transaction: the
// principal is on the transaction's context, and what the handler notes
// after the commit is read off what the transaction created.
func (s *Server) resolveAudit(op string) audit.Resolver {
	target, isCreate := createdTargets[op]
	return func(ctx context.Context, ev *audit.Event, created []audit.Created) {
		if p := auth.FromContext(ctx); p != nil {
			ev.ActorType, ev.ActorID = string(p.Type), &p.ID
		}
		for _, c := range created {
			switch {
			case isCreate && c.Type == target.entType && ev.TargetID == "":
				ev.TargetType, ev.TargetID = target.targetType, c.ID.String()
			case op == "login" && c.Type == "RefreshToken" && c.UserID != nil && ev.ActorID == nil:
				// The session's refresh token names who logged in.
				ev.ActorType, ev.ActorID = string(auth.ActorUser), c.UserID
				ev.TargetType, ev.TargetID = "user", c.UserID.String()
			case op == "convertLead" && c.Type == "Customer" && ev.Detail == "":
				ev.Detail = "customer=" + c.ID.String()
			}
		}
		if ev.TargetType == "user" && ev.TargetID == "" && ev.ActorType == string(auth.ActorUser) && ev.ActorID != nil &&
			(op == "logout" || op == "changeMyPassword") {
			ev.TargetID = ev.ActorID.String() // his own session, his own password
		}
	}
}

// pathTargets maps a path's first segment to the audit target type of
// its {id}.
var pathTargets = map[string]string{
	"users": "user", "teams": "team", "api-keys": "apiKey", kinds.Lead.Desc().Path: string(kinds.Lead), kinds.Customer.Desc().Path: string(kinds.Customer),
	"contacts": "contact", "follow-ups": "followUp", "pools": "pool", "claim-requests": "claimRequest", "tags": "tag",
	"webhooks": "webhook", "products": "product", "pipelines": "pipeline", "opportunities": "opportunity",
	"quotes": "quote", "approvals": "approval",
}

// pathTargetType is the target type of the {id} in route path (/v1/leads/:id/claim → lead).
func pathTargetType(route string) string {
	seg := strings.Split(strings.TrimPrefix(route, "/v1/"), "/")
	return pathTargets[seg[0]]
}

// successStatus is the status the spec gives op's success: its 2xx
// response, the lowest if it has several.
func successStatus(spec *openapi3.T, op string) int {
	best := 0
	for _, item := range spec.Paths.Map() {
		for _, o := range item.Operations() {
			if o.OperationID != op || o.Responses == nil {
				continue
			}
			for code := range o.Responses.Map() {
				n, err := strconv.Atoi(code)
				if err == nil && n >= 200 && n < 300 && (best == 0 || n < best) {
					best = n
				}
			}
		}
	}
	if best == 0 {
		best = http.StatusOK
	}
	return best
}
