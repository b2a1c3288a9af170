package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"
	oapimw "github.com/oapi-codegen/echo-middleware"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// requestValidator checks every request to a spec operation against
// openapi.yaml before any handler runs. One 400 lists every bad field.
// Requests to routes outside the spec (404, 405, /metrics, …) are left to
// the router.
func (s *Server) requestValidator() echo.MiddlewareFunc {
	return oapimw.OapiRequestValidatorWithOptions(s.spec, &oapimw.Options{
		Skipper: func(c echo.Context) bool {
			_, ok := s.ops[routeKey(c.Request().Method, c.Path())]
			return !ok
		},
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
		fields = append(fields, fieldErrors(err)...)
	}
	msg := "the request does not match the API contract"
	if len(fields) > 0 {
		msg = fields[0].Field + ": " + fields[0].Message
	}
	return &apperr.Error{Kind: apperr.Invalid, Code: "validation_failed", Message: msg, Fields: fields}
}

func fieldErrors(err error) []apperr.FieldError {
	var me openapi3.MultiError
	if errors.As(err, &me) && len(me) > 0 {
		var out []apperr.FieldError
		for _, e := range me {
			out = append(out, fieldErrors(e)...)
		}
		return out
	}
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return []apperr.FieldError{{Field: "", Code: "invalid", Message: firstLine(err.Error())}}
	}
	prefix := ""
	switch {
	case re.Parameter != nil:
		prefix = re.Parameter.In + "." + re.Parameter.Name
	case re.RequestBody != nil:
		prefix = "body"
	}
	if re.Err != nil {
		var inner openapi3.MultiError
		if errors.As(re.Err, &inner) {
			var out []apperr.FieldError
			for _, e := range inner {
				out = append(out, schemaFieldError(prefix, e))
			}
			return out
		}
		return []apperr.FieldError{schemaFieldError(prefix, re.Err)}
	}
	code := "invalid"
	if strings.Contains(re.Reason, "required") || strings.Contains(re.Reason, "must have a value") {
		code = "required"
	}
	return []apperr.FieldError{{Field: prefix, Code: code, Message: firstLine(re.Reason)}}
}

func schemaFieldError(prefix string, err error) apperr.FieldError {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		field := prefix
		if ptr := se.JSONPointer(); len(ptr) > 0 {
			field = prefix + "/" + strings.Join(ptr, "/")
		}
		code := se.SchemaField
		if code == "" {
			code = "invalid"
		}
		if code == "readOnly" {
			code = "read_only"
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
