package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

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
//
// Before the contract, checkText refuses text no field takes.
func (s *Server) requestValidator() echo.MiddlewareFunc {
	contract := oapimw.OapiRequestValidatorWithOptions(s.spec, &oapimw.Options{
		Options: openapi3filter.Options{
			MultiError:         true,
			AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		},
		ErrorHandler: func(_ echo.Context, err *echo.HTTPError) error { return err },
		MultiErrorHandler: func(me openapi3.MultiError) *echo.HTTPError {
			return &echo.HTTPError{Code: http.StatusBadRequest, Internal: validationError(me)}
		},
	})
	media := bodyMediaTypes(s.spec)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return checkMediaType(media, s.checkText(contract(mergePatchAsJSON(next))))
	}
}

// bodyMediaTypes lists, per operationId, the media types its request body
// may have.
func bodyMediaTypes(spec *openapi3.T) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			if op.RequestBody == nil || op.RequestBody.Value == nil {
				continue
			}
			types := map[string]bool{}
			for mt := range op.RequestBody.Value.Content {
				types[mt] = true
			}
			out[op.OperationID] = types
		}
	}
	return out
}

// checkMediaType answers 415 unsupported_media to a request whose body is
// of a type the operation does not take (or of no declared type at all),
// rather than letting the contract check call it a malformed 400: the
// client's mistake is the label, not the content.
func checkMediaType(media map[string]map[string]bool, next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		types, takesBody := media[operationID(c)]
		if !takesBody || r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			return next(c)
		}
		mt, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
		if err != nil || !types[mt] {
			return apperr.New(apperr.Invalid, "unsupported_media", "the request body must be one of the operation's media types")
		}
		return next(c)
	}
}

// mergePatchAsJSON relabels a validated application/merge-patch+json body
// as application/json for the handler: a merge patch is JSON read with the
// same rule (absent unchanged, null clears), and echo's binder, which the
// generated handlers decode with, only knows application/json.
func mergePatchAsJSON(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header
		if mt, params, err := mime.ParseMediaType(h.Get(echo.HeaderContentType)); err == nil && mt == "application/merge-patch+json" {
			h.Set(echo.HeaderContentType, mime.FormatMediaType(echo.MIMEApplicationJSON, params))
		}
		return next(c)
	}
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

// personalFields are the JSON members and query parameters that name or
// reach a person or company: names, phones, emails, handles. Invisible and
// direction-changing characters are refused in them too, because they
// make two values that look the same compare different (a duplicate check
// defeated by a zero-width space) or make a value display as another
// ("+86 138…" reversed by an override).
var personalFields = map[string]bool{
	"name":         true,
	"customerName": true,
	"contactName":  true,
	"ownerName":    true,
	"company":      true,
	"phone":        true,
	"email":        true,
	"wechat":       true,
}

// checkText refuses text no field of the API takes, the same way on every
// engine (PostgreSQL refuses NUL in text and invalid UTF-8 outright, SQLite
// stores both): in path parameters, query parameters and every string of
// a JSON body, keys included, nested, it refuses invalid UTF-8 and C0
// control characters other than tab, newline and carriage return (and
// DEL); in personal fields also bidi overrides and isolates and zero-width
// characters. A JSON body must also be one value with nothing after it:
// encoding/json would otherwise ignore what follows. It answers one 400
// validation_failed naming every bad field, before the contract check.
func (s *Server) checkText(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var fields []apperr.FieldError
		names, values := c.ParamNames(), c.ParamValues()
		for i, name := range names {
			if i < len(values) {
				fields = append(fields, checkString("path."+name, values[i], false)...)
			}
		}
		fields = append(fields, checkQuery(c.Request().URL.RawQuery)...)
		bodyFields, err := checkBody(c)
		if err != nil {
			return err
		}
		fields = append(fields, bodyFields...)
		if len(fields) > 0 {
			return &apperr.Error{Kind: apperr.Invalid, Code: "validation_failed",
				Message: fields[0].Field + ": " + fields[0].Message, Fields: fields}
		}
		return next(c)
	}
}

// checkQuery checks every query parameter's name and values.
func checkQuery(raw string) []apperr.FieldError {
	if raw == "" {
		return nil
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return []apperr.FieldError{{Field: "query", Code: "malformed", Message: "the query string is not valid URL encoding"}}
	}
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fields []apperr.FieldError
	for _, k := range keys {
		field := "query." + fieldLabel(k)
		if f := checkString(field, k, false); f != nil {
			fields = append(fields, f...)
			continue
		}
		for _, v := range q[k] {
			fields = append(fields, checkString(field, v, personalFields[k])...)
		}
	}
	return fields
}

// checkBody checks a JSON request body, leaving it in place for the
// contract check and the handler. A body that is not JSON at all is left
// to the contract check, which says why.
func checkBody(c echo.Context) ([]apperr.FieldError, error) {
	r := c.Request()
	if r.Body == nil || r.Body == http.NoBody {
		return nil, nil
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if mt != "application/json" && !strings.HasSuffix(mt, "+json") {
		return nil, nil
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err // over the body limit: 413 from BodyLimit
	}
	_ = r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(raw))
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, nil // malformed: the contract check reports it
	}
	var fields []apperr.FieldError
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		fields = append(fields, apperr.FieldError{Field: "body", Code: "trailing_data",
			Message: "the body must be one JSON value with nothing after it"})
	}
	walkJSON("body", "", v, &fields)
	if utf8.Valid(raw) {
		// The client sent these U+FFFD themselves: fine.
		fields = dropCode(fields, "replacement_character")
	} else {
		// encoding/json put U+FFFD where the body held invalid bytes: name
		// those strings, or the body if the bad bytes were elsewhere.
		for i := range fields {
			if fields[i].Code == "replacement_character" {
				fields[i].Code = "invalid_utf8"
			}
		}
		if !hasCode(fields, "invalid_utf8") {
			fields = append(fields, apperr.FieldError{Field: "body", Code: "invalid_utf8", Message: "the body is not valid UTF-8"})
		}
	}
	return fields, nil
}

// walkJSON checks every key and string under v, which sits at path (a
// JSON pointer below prefix); key is v's member name, if it has one.
func walkJSON(path, key string, v any, fields *[]apperr.FieldError) {
	switch v := v.(type) {
	case string:
		*fields = append(*fields, checkDecoded(path, v, personalFields[key])...)
	case []any:
		for i, e := range v {
			walkJSON(path+"/"+strconv.Itoa(i), key, e, fields)
		}
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := path + "/" + fieldLabel(k)
			if f := checkDecoded(p, k, false); f != nil {
				*fields = append(*fields, f...)
				continue
			}
			walkJSON(p, k, v[k], fields)
		}
	}
}

// checkDecoded is checkString for a string encoding/json decoded, which
// holds U+FFFD where the raw body held invalid UTF-8 (checkBody tells the
// two apart).
func checkDecoded(field, s string, personal bool) []apperr.FieldError {
	if f := checkString(field, s, personal); f != nil {
		return f
	}
	if strings.ContainsRune(s, utf8.RuneError) {
		return []apperr.FieldError{{Field: field, Code: "replacement_character", Message: "not valid UTF-8"}}
	}
	return nil
}

// checkString returns the problem with s, if any, as one field error.
func checkString(field, s string, personal bool) []apperr.FieldError {
	if !utf8.ValidString(s) {
		return []apperr.FieldError{{Field: field, Code: "invalid_utf8", Message: "not valid UTF-8"}}
	}
	for _, r := range s {
		switch {
		case (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f:
			return []apperr.FieldError{{Field: field, Code: "control_character",
				Message: "control characters other than tab and newline are not allowed"}}
		case personal && invisible(r):
			return []apperr.FieldError{{Field: field, Code: "invisible_character",
				Message: "invisible or direction-changing characters are not allowed here"}}
		}
	}
	return nil
}

// invisible reports bidi embeddings, overrides and isolates and
// zero-width characters.
func invisible(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) ||
		(r >= 0x200b && r <= 0x200d) || r == 0x2060 || r == 0xfeff
}

// fieldLabel is a client-chosen name made safe to echo back in a field
// path: invalid UTF-8 and control characters become U+FFFD, and it is
// bounded.
func fieldLabel(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || invisible(r) {
			return utf8.RuneError
		}
		return r
	}, s)
	if len(s) > 64 {
		n := 64
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s = s[:n] + "…"
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func hasCode(fields []apperr.FieldError, code string) bool {
	for _, f := range fields {
		if f.Code == code {
			return true
		}
	}
	return false
}

func dropCode(fields []apperr.FieldError, code string) []apperr.FieldError {
	out := fields[:0]
	for _, f := range fields {
		if f.Code != code {
			out = append(out, f)
		}
	}
	return out
}
