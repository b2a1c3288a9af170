package httpapi

import (
	"context"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/internal/apperr"
)

// TEMPORARY: operations not yet implemented answer 503 while they are being built.
var errNotYet = apperr.New(apperr.Unavailable, "not_implemented", "not implemented yet")

func (s *Server) DeleteContact(context.Context, api.DeleteContactRequestObject) (api.DeleteContactResponseObject, error) {
	return nil, errNotYet
}
func (s *Server) GetContact(context.Context, api.GetContactRequestObject) (api.GetContactResponseObject, error) {
	return nil, errNotYet
}
func (s *Server) UpdateContact(context.Context, api.UpdateContactRequestObject) (api.UpdateContactResponseObject, error) {
	return nil, errNotYet
}
func (s *Server) ListContacts(context.Context, api.ListContactsRequestObject) (api.ListContactsResponseObject, error) {
	return nil, errNotYet
}
func (s *Server) CreateContact(context.Context, api.CreateContactRequestObject) (api.CreateContactResponseObject, error) {
	return nil, errNotYet
}
func (s *Server) ListFollowUps(context.Context, api.ListFollowUpsRequestObject) (api.ListFollowUpsResponseObject, error) {
	return nil, errNotYet
}
func (s *Server) CreateFollowUp(context.Context, api.CreateFollowUpRequestObject) (api.CreateFollowUpResponseObject, error) {
	return nil, errNotYet
}
