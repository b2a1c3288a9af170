package httpapi

import "github.com/google/uuid"

// location is the URL of a created resource, for the Location header every
// 201 carries: the collection's path and the new id.
func location(collection string, id uuid.UUID) string {
	return "/v1/" + collection + "/" + id.String()
}
