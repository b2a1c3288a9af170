// Package apperr defines the kinds of error Shoal's domain packages return.
// Domain code says what went wrong (a kind and a stable code); the HTTP layer
// alone decides how that is rendered, in one table.
package apperr

import (
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds, each commented with the HTTP status it implies.
const (
	Internal             Kind = iota // 500: a bug or an outage; details are logged, not shown
	Invalid                          // 400: the input is wrong
	Unauthenticated                  // 401: no or bad credentials
	Forbidden                        // 403: authenticated but not allowed
	NotFound                         // 404: missing, or hidden by data scope
	Conflict                         // 409: the state forbids it (already_owned, cap_exceeded, duplicate…)
	Gone                             // 410: it existed and is no longer usable
	PreconditionFailed               // 412: If-Match is stale
	TooLarge                         // 413: the body is too large
	Unprocessable                    // 422: well-formed but semantically refused
	PreconditionRequired             // 428: If-Match is missing
	RateLimited                      // 429: slow down; see RetryAfter
	Unavailable                      // 503: a dependency is down
)

// FieldError names one bad input field.
type FieldError struct {
	Field   string `json:"field"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a domain error: a kind, a stable machine code and an English
// message. Extra carries machine-readable details (such as duplicate
// matches) that clients may rely on.
type Error struct {
	Kind       Kind
	Code       string
	Message    string
	Fields     []FieldError
	RetryAfter time.Duration
	Extra      map[string]any
	// Location, when set, is sent as the Location header: the URL the
	// problem points the client at (merged_into names the survivor).
	Location string
	Err      error // the cause, logged but never shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind with a stable code and an English message.
func New(kind Kind, code, message string) *Error {
	return &Error{Kind: kind, Code: code, Message: message}
}

// Is reports whether err is an *Error with the given code, so callers can use
// errors.Is(err, apperr.New(apperr.Conflict, "cap_exceeded", "")) or, more
// simply, HasCode.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	return t.Code == e.Code
}

// HasCode reports whether err is (or wraps) an *Error with code.
func HasCode(err error, code string) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// As returns err as an *Error when it is (or wraps) one.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// NotFoundf is the 404 answer, the same for missing and hidden records.
func NotFoundf(what string) *Error {
	return New(NotFound, "not_found", what+" not found")
}

// Invalidf is a 400 for one bad field.
func Invalidf(field, code, message string) *Error {
	return &Error{Kind: Invalid, Code: "validation_failed", Message: message,
		Fields: []FieldError{{Field: field, Code: code, Message: message}}}
}
