package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	oapimw "github.com/oapi-codegen/echo-middleware"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// requestValidator checks a request to a spec operation against
// openapi.yaml before its handler runs. One 400 lists every bad field. It
// is part of every operation's chain (see operationChain), so routes
// outside the spec (/metrics, …) never reach it.
func (s *Server) requestValidator() echo.MiddlewareFunc {
	return oapimw.OapiRequestValidatorWithOptions(s.spec, &oapimw.Options{
		Options: openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		},
		ErrorHandler: func(_ echo.Context, err *echo.HTTPError) error { return err },
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusBadRequest, Internal: validationError(me)}
		},
	})
}

// validationError turns the validator's errors into one problem with an
// entry per offending field.
func validationError(me openapi3.MultiError) *apperr.Error {
	var fields []apperr.FieldError
	for _, err := range me {
		fields = append(fields, fieldErrors("", err)...)
	}
	msg := "the request does not match the API contract"
	if len(fields) > 0 {
		msg = fields[0].Field + ": " + fields[0].Message
	}
	// Err keeps the cause: an oversized body surfaces here as a read error
	// and toAppErr answers it 413.
	return &apperr.Error{Kind: apperr.Invalid, Code: "validation_failed", Message: msg, Fields: fields, Err: me}
}

// fieldErrors flattens one validator error into field entries named by
// where the bad input is: query.limit, header.If-Match, body/email, ….
func fieldErrors(prefix string, err error) []apperr.FieldError {
	var re *openapi3filter.RequestError
	if errors.As(err, &re) {
		switch {
		case re.Parameter != nil:
			prefix = re.Parameter.In + "." + re.Parameter.Name
		case re.RequestBody != nil:
			prefix = "body"
		}
		if re.Err == nil {
			code := "invalid"
			if strings.Contains(re.Reason, "required") || strings.Contains(re.Reason, "must have a value") {
				code = "required"
			}
			return []apperr.FieldError{{Field: prefix, Code: code, Message: firstLine(re.Reason)}}
		}
		return fieldErrors(prefix, re.Err)
	}
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var out []apperr.FieldError
		for _, e := range me {
			out = append(out, fieldErrors(prefix, e)...)
		}
		return out
	}
	return []apperr.FieldError{schemaFieldError(prefix, err)}
}

var unsupportedProperty = regexp.MustCompile(`property "([^"]+)" is unsupported`)

func schemaFieldError(prefix string, err error) apperr.FieldError {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		field := prefix
		if ptr := se.JSONPointer(); len(ptr) > 0 {
			field = prefix + "/" + strings.Join(ptr, "/")
		}
		code := se.SchemaField
		if m := unsupportedProperty.FindStringSubmatch(se.Reason); m != nil {
			// Unknown and server-owned fields alike: clients may not set them.
			return apperr.FieldError{Field: field + "/" + m[1], Code: "not_allowed", Message: "this field cannot be set by clients"}
		}
		switch code {
		case "":
			code = "invalid"
		case "readOnly":
			code = "not_allowed"
		}
		return apperr.FieldError{Field: field, Code: code, Message: firstLine(se.Reason)}
	}
	var pe *openapi3filter.ParseError
	if errors.As(err, &pe) {
		return apperr.FieldError{Field: prefix, Code: "malformed", Message: firstLine(pe.Error())}
	}
	if errors.Is(err, openapi3filter.ErrInvalidRequired) {
		return apperr.FieldError{Field: prefix, Code: "required", Message: "value is required"}
	}
	return apperr.FieldError{Field: prefix, Code: "invalid", Message: firstLine(err.Error())}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
