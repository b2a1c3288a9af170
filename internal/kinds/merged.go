package kinds

import (
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// MergedInto is the answer for a record of this kind that was merged into
// survivor (status merged): a 409 merged_into naming the survivor in the
// body (survivorId) and in the Location header. Not a 301: clients that
// follow redirects would silently turn a write on the merged id into a
// read of the survivor.
func (k Kind) MergedInto(survivor uuid.UUID) error {
	return &apperr.Error{Kind: apperr.Conflict, Code: "merged_into", Message: "the " + k.Noun() + " was merged into another",
		Extra: map[string]any{"survivorId": survivor}, Location: "/v1/" + k.Desc().Path + "/" + survivor.String()}
}
