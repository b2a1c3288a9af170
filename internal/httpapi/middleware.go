package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/observe"
)

// recoverPanics turns a panic into a 500 problem that shows no internals,
// and logs the panic with its stack and the request id.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(c.Request().Context(), "panic",
				slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
			err = &apperr.Error{Kind: apperr.Internal, Code: "internal", Message: "internal error"}
			s.metrics.observe(c, 500, 0)
		}()
		return next(c)
	}
}

const headerContentTypeOptions = "X-Content-Type-Options"

// requestID takes the client's X-Request-ID when it is sane, makes one
// otherwise, echoes it back and puts it on the request's context, where
// every log line finds it.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(id) {
			id = newRequestID()
		}
		h := c.Response().Header()
		h.Set(echo.HeaderXRequestID, id)
		// Every answer, errors and documents included, is what its
		// Content-Type says; browsers must not guess otherwise.
		h.Set(headerContentTypeOptions, "nosniff")
		ctx := observe.WithRequestID(c.Request().Context(), id)
		ctx = context.WithValue(ctx, clientAddressKey{}, c.RealIP())
		c.SetRequest(c.Request().WithContext(ctx))
		return next(c)
	}
}

// saneRequestID accepts ids that cannot forge log lines: short, printable
// ASCII without spaces.
func saneRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// accessLog writes one structured line per request and records metrics.
// It renders errors itself (c.Error) so that the status it logs is the one
// the client got.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		elapsed := time.Since(start)
		req, res := c.Request(), c.Response()
		s.metrics.observe(c, res.Status, elapsed)
		level := slog.LevelInfo
		if res.Status >= 500 {
			level = slog.LevelError
		}
		s.log.LogAttrs(req.Context(), level, "request",
			slog.String("method", methodLabel(req.Method)),
			slog.String("path", req.URL.Path),
			slog.String("route", c.Path()),
			slog.String("operation", operationID(c)),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Duration("duration", elapsed),
			slog.String("remote", c.RealIP()),
		)
		return nil
	}
}
