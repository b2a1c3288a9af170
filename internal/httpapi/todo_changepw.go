package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
)

// TEMPORARY: replaced by the login-hardening work before this lands.
func (s *Server) ChangeMyPassword(context.Context, api.ChangeMyPasswordRequestObject) (api.ChangeMyPasswordResponseObject, error) {
	return nil, apperr.New(apperr.Internal, "internal", "not implemented")
}
