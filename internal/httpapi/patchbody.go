package httpapi

import (
	"github.com/oapi-codegen/nullable"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/patch"
)

// mergeBody picks the body of a PATCH: every PATCH takes
// application/merge-patch+json and, read the same way, application/json;
// the generated request has one field per media type, both of one schema.
func mergeBody[T any](jsonBody, mergePatch *T) (*T, error) {
	if mergePatch != nil {
		return mergePatch, nil
	}
	if jsonBody != nil {
		return jsonBody, nil
	}
	// The contract check refuses a missing body and the media-type check
	// any other type before a handler runs; this is the backstop.
	return nil, apperr.Invalidf("body", "required", "a JSON merge patch body is required")
}

// text reads an optional text field of a merge patch for a domain input
// that keeps unset text as "": absent is nil (unchanged), null is ""
// (cleared), a value is itself.
func text[T ~string](n nullable.Nullable[T]) *string {
	return patch.OrZero(fieldOf(n, func(v T) string { return string(v) }))
}

// tagsField is text for tag lists: null clears to no tags.
func tagsField[T ~[]string](n nullable.Nullable[T]) *[]string {
	t := patch.OrZero(fieldOf(n, func(v T) []string { return []string(v) }))
	if t != nil && *t == nil {
		*t = []string{}
	}
	return t
}
