package httpapi

import (
	"context"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/page"
)

// clientAddressKey carries the caller's network address to handlers that
// need it (login throttling); it is set by the access log middleware.
type clientAddressKey struct{}

func clientAddress(ctx context.Context) string {
	a, _ := ctx.Value(clientAddressKey{}).(string)
	return a
}

// GetJwks publishes the keys that verify access tokens.
func (s *Server) GetJwks(context.Context, api.GetJwksRequestObject) (api.GetJwksResponseObject, error) {
	keys := s.auth.Keys().PublicKeys()
	out := api.Jwks{Keys: make([]api.Jwk, len(keys))}
	for i, k := range keys {
		out.Keys[i] = api.Jwk{Kty: api.JwkKty(k.Kty), Crv: api.JwkCrv(k.Crv), X: k.X, Kid: k.Kid, Alg: api.JwkAlg(k.Alg), Use: api.JwkUse(k.Use)}
	}
	return api.GetJwks200JSONResponse(out), nil
}

func tokenPairOut(p *auth.TokenPair) api.TokenPair {
	return api.TokenPair{AccessToken: p.AccessToken, RefreshToken: p.RefreshToken, TokenType: api.TokenPairTokenTypeBearer, ExpiresIn: int32(p.ExpiresIn.Seconds())}
}

// Login starts a session.
func (s *Server) Login(ctx context.Context, req api.LoginRequestObject) (api.LoginResponseObject, error) {
	password := ""
	if req.Body.Password != nil {
		password = *req.Body.Password
	}
	pair, u, err := s.auth.Login(ctx, string(req.Body.Email), password, clientAddress(ctx))
	if u != nil {
		noteTarget(ctx, "user", u.ID.String())
		if err == nil {
			noteActor(ctx, u.ID)
		}
	}
	if err != nil {
		return nil, err
	}
	return api.Login200JSONResponse{Body: tokenPairOut(pair), Headers: api.Login200ResponseHeaders{CacheControl: noStore()}}, nil
}

// RefreshToken rotates a refresh token.
func (s *Server) RefreshToken(ctx context.Context, req api.RefreshTokenRequestObject) (api.RefreshTokenResponseObject, error) {
	pair, err := s.auth.Refresh(ctx, req.Body.RefreshToken)
	if err != nil {
		return nil, err
	}
	return api.RefreshToken200JSONResponse{Body: tokenPairOut(pair), Headers: api.RefreshToken200ResponseHeaders{CacheControl: noStore()}}, nil
}

// noStore is the Cache-Control of answers carrying tokens: no cache, proxy
// or browser history may keep them (RFC 6749 §5.1).
func noStore() *string {
	v := "no-store"
	return &v
}

// ChangeMyPassword changes the caller's own password and ends his other
// sessions.
func (s *Server) ChangeMyPassword(ctx context.Context, req api.ChangeMyPasswordRequestObject) (api.ChangeMyPasswordResponseObject, error) {
	var current, next string
	if req.Body.CurrentPassword != nil {
		current = *req.Body.CurrentPassword
	}
	if req.Body.NewPassword != nil {
		next = *req.Body.NewPassword
	}
	p := auth.FromContext(ctx)
	if p != nil {
		noteTarget(ctx, "user", p.ID.String())
	}
	out, err := s.auth.ChangePassword(ctx, p, current, next, clientAddress(ctx))
	if err != nil {
		return nil, err
	}
	return api.ChangeMyPassword200JSONResponse{
		Body: api.PasswordChanged{RevokedSessions: int32(out.RevokedSessions), AccessToken: out.AccessToken,
			TokenType: api.PasswordChangedTokenTypeBearer, ExpiresIn: int32(out.ExpiresIn.Seconds())},
		Headers: api.ChangeMyPassword200ResponseHeaders{CacheControl: noStore()},
	}, nil
}

// Logout ends a session.
func (s *Server) Logout(ctx context.Context, req api.LogoutRequestObject) (api.LogoutResponseObject, error) {
	if err := s.auth.Logout(ctx, auth.FromContext(ctx), req.Body.RefreshToken); err != nil {
		return nil, err
	}
	return api.Logout204Response{}, nil
}

// GetCurrentUser returns the caller.
func (s *Server) GetCurrentUser(ctx context.Context, _ api.GetCurrentUserRequestObject) (api.GetCurrentUserResponseObject, error) {
	p := auth.FromContext(ctx)
	u, err := s.org.GetUser(ctx, p, p.ID)
	if err != nil {
		return nil, err
	}
	return api.GetCurrentUser200JSONResponse{Body: userOut(u), Headers: api.GetCurrentUser200ResponseHeaders{ETag: etag.Ptr(u.Version)}}, nil
}

// CreateUser creates a user.
func (s *Server) CreateUser(ctx context.Context, req api.CreateUserRequestObject) (api.CreateUserResponseObject, error) {
	b := req.Body
	in := org.NewUser{Email: string(b.Email), Name: b.Name, Role: string(b.Role), TeamID: b.TeamId,
		Caps: capsIn(b.MaxOwnedLeads, b.MaxOwnedCustomers, b.MaxFrozen)}
	if b.Password != nil {
		in.Password = *b.Password
	}
	u, err := s.org.CreateUser(ctx, in)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "user", u.ID.String())
	return api.CreateUser201JSONResponse{Body: userOut(u), Headers: api.CreateUser201ResponseHeaders{ETag: etag.Ptr(u.Version), Location: location("users", u.ID)}}, nil
}

// GetUser returns a user the caller may see.
func (s *Server) GetUser(ctx context.Context, req api.GetUserRequestObject) (api.GetUserResponseObject, error) {
	u, err := s.org.GetUser(ctx, auth.FromContext(ctx), req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetUser200JSONResponse{Body: userOut(u), Headers: api.GetUser200ResponseHeaders{ETag: etag.Ptr(u.Version)}}, nil
}

// ListUsers lists the users the caller may see.
func (s *Server) ListUsers(ctx context.Context, req api.ListUsersRequestObject) (api.ListUsersResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	f := org.UserFilter{TeamID: req.Params.TeamId, Active: req.Params.Active, Cursor: cursor, Limit: page.Size(req.Params.Limit)}
	if req.Params.Role != nil {
		r := string(*req.Params.Role)
		f.Role = &r
	}
	users, next, err := s.org.ListUsers(ctx, auth.FromContext(ctx), f)
	if err != nil {
		return nil, err
	}
	out := api.UserList{Items: make([]api.User, len(users))}
	for i, u := range users {
		out.Items[i] = userOut(u)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListUsers200JSONResponse{Body: out}, nil
}

// UpdateUser patches a user.
func (s *Server) UpdateUser(ctx context.Context, req api.UpdateUserRequestObject) (api.UpdateUserResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	in := org.UserPatch{Name: b.Name, Active: b.Active, Password: b.Password,
		TeamID:    fieldOf(b.TeamId, same[uuid.UUID]),
		CapsPatch: capsPatchIn(b.MaxOwnedLeads, b.MaxOwnedCustomers, b.MaxFrozen),
		Handover:  leaveHandoverIn(b.Handover), Force: b.Force != nil && *b.Force}
	if b.Email != nil {
		e := string(*b.Email)
		in.Email = &e
	}
	if b.Role != nil {
		r := string(*b.Role)
		in.Role = &r
		noteDetail(ctx, "role="+r)
	}
	u, revoked, err := s.org.ChangeUser(ctx, auth.FromContext(ctx), req.Id, req.Params.IfMatch, in)
	if err != nil {
		return nil, err
	}
	out := userOut(u)
	if in.Password != nil || in.Role != nil || (in.Active != nil && !*in.Active) {
		// Only changes that end sessions say how many they ended.
		n := int32(revoked)
		out.RevokedSessions = &n
	}
	return api.UpdateUser200JSONResponse{Body: out, Headers: api.UpdateUser200ResponseHeaders{ETag: etag.Ptr(u.Version)}}, nil
}

// CreateTeam creates a team.
func (s *Server) CreateTeam(ctx context.Context, req api.CreateTeamRequestObject) (api.CreateTeamResponseObject, error) {
	b := req.Body
	t, err := s.org.CreateTeam(ctx, org.NewTeam{Name: b.Name, ParentID: b.ParentId, Caps: capsIn(b.MaxOwnedLeads, b.MaxOwnedCustomers, b.MaxFrozen),
		DefaultPools: org.DefaultPools{Lead: idPtr(b.DefaultLeadPoolId), Customer: idPtr(b.DefaultCustomerPoolId)}})
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "team", t.ID.String())
	return api.CreateTeam201JSONResponse{Body: teamOut(t), Headers: api.CreateTeam201ResponseHeaders{ETag: etag.Ptr(t.Version), Location: location("teams", t.ID)}}, nil
}

// GetTeam returns a team.
func (s *Server) GetTeam(ctx context.Context, req api.GetTeamRequestObject) (api.GetTeamResponseObject, error) {
	t, err := s.org.GetTeam(ctx, req.Id)
	if err != nil {
		return nil, err
	}
	return api.GetTeam200JSONResponse{Body: teamOut(t), Headers: api.GetTeam200ResponseHeaders{ETag: etag.Ptr(t.Version)}}, nil
}

// ListTeams lists teams.
func (s *Server) ListTeams(ctx context.Context, req api.ListTeamsRequestObject) (api.ListTeamsResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	teams, next, err := s.org.ListTeams(ctx, req.Params.ParentId, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.TeamList{Items: make([]api.Team, len(teams))}
	for i, t := range teams {
		out.Items[i] = teamOut(t)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListTeams200JSONResponse{Body: out}, nil
}

// UpdateTeam patches a team.
func (s *Server) UpdateTeam(ctx context.Context, req api.UpdateTeamRequestObject) (api.UpdateTeamResponseObject, error) {
	b, err := mergeBody(req.JSONBody, req.ApplicationMergePatchPlusJSONBody)
	if err != nil {
		return nil, err
	}
	t, err := s.org.UpdateTeam(ctx, req.Id, req.Params.IfMatch, org.TeamPatch{Name: b.Name,
		ParentID:  fieldOf(b.ParentId, same[uuid.UUID]),
		CapsPatch: capsPatchIn(b.MaxOwnedLeads, b.MaxOwnedCustomers, b.MaxFrozen),
		DefaultPools: org.DefaultPoolsPatch{Lead: fieldOf(b.DefaultLeadPoolId, same[uuid.UUID]),
			Customer: fieldOf(b.DefaultCustomerPoolId, same[uuid.UUID])}})
	if err != nil {
		return nil, err
	}
	return api.UpdateTeam200JSONResponse{Body: teamOut(t), Headers: api.UpdateTeam200ResponseHeaders{ETag: etag.Ptr(t.Version)}}, nil
}

// CreateApiKey creates a partner key and returns its secret once.
func (s *Server) CreateApiKey(ctx context.Context, req api.CreateApiKeyRequestObject) (api.CreateApiKeyResponseObject, error) {
	b := req.Body
	scopes := make([]string, len(b.Scopes))
	for i, sc := range b.Scopes {
		scopes[i] = string(sc)
	}
	k, secret, err := s.auth.CreateAPIKey(ctx, auth.FromContext(ctx),
		auth.NewAPIKey{Name: b.Name, Scopes: scopes, PoolID: b.PoolId, ExpiresAt: b.ExpiresAt}, s.pools.Kind)
	if err != nil {
		return nil, err
	}
	noteTarget(ctx, "apiKey", k.ID.String())
	o := apiKeyOut(k)
	return api.CreateApiKey201JSONResponse{Body: api.ApiKeyCreated{
		Id: o.Id, Name: o.Name, Prefix: o.Prefix, Scopes: o.Scopes, PoolId: o.PoolId, ExpiresAt: o.ExpiresAt,
		LastUsedAt: o.LastUsedAt, RevokedAt: o.RevokedAt, CreatedBy: o.CreatedBy, CreatedAt: o.CreatedAt,
		Secret: secret,
	}, Headers: api.CreateApiKey201ResponseHeaders{Location: location("api-keys", k.ID)}}, nil
}

// ListApiKeys lists keys without their secrets.
func (s *Server) ListApiKeys(ctx context.Context, req api.ListApiKeysRequestObject) (api.ListApiKeysResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	keys, next, err := s.auth.ListAPIKeys(ctx, cursor, page.Size(req.Params.Limit))
	if err != nil {
		return nil, err
	}
	out := api.ApiKeyList{Items: make([]api.ApiKey, len(keys))}
	for i, k := range keys {
		out.Items[i] = apiKeyOut(k)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListApiKeys200JSONResponse{Body: out}, nil
}

// RevokeApiKey revokes a key.
func (s *Server) RevokeApiKey(ctx context.Context, req api.RevokeApiKeyRequestObject) (api.RevokeApiKeyResponseObject, error) {
	noteTarget(ctx, "apiKey", req.Id.String())
	if err := s.auth.RevokeAPIKey(ctx, req.Id); err != nil {
		return nil, err
	}
	return api.RevokeApiKey204Response{}, nil
}

// ListAuditEvents lists the audit log, newest first.
func (s *Server) ListAuditEvents(ctx context.Context, req api.ListAuditEventsRequestObject) (api.ListAuditEventsResponseObject, error) {
	cursor, err := s.cursorIn(ctx, req.Params.Cursor)
	if err != nil {
		return nil, err
	}
	f := audit.Filter{ActorID: req.Params.ActorId, TargetType: req.Params.TargetType, Operation: req.Params.Operation,
		Since: req.Params.Since, Until: req.Params.Until, Cursor: cursor, Limit: page.Size(req.Params.Limit)}
	if req.Params.TargetId != nil {
		t := req.Params.TargetId.String()
		f.TargetID = &t
	}
	events, next, err := s.audit.List(ctx, f)
	if err != nil {
		return nil, err
	}
	out := api.AuditEventList{Items: make([]api.AuditEvent, len(events))}
	for i, e := range events {
		out.Items[i] = auditOut(e)
	}
	out.NextCursor = s.cursorOut(ctx, next)
	return api.ListAuditEvents200JSONResponse{Body: out}, nil
}
