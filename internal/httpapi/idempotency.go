package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/idempotency"
	"github.com/shoalcrm/shoal/internal/store"
)

var (
	errIdempotencyInUse = apperr.New(apperr.Conflict, "idempotency_key_in_use",
		"a request with this Idempotency-Key is still in progress; retry later")
	errIdempotencyMismatch = apperr.New(apperr.Unprocessable, "idempotency_key_mismatch",
		"this Idempotency-Key was already used for a different request")
)

// notHeld are the operations whose work does not fit in one transaction:
// the sweep commits batch after batch (holding them all would keep SQLite's
// writer from everyone else for the whole sweep), and the test clock is not
// in the database. Their answers are stored after the fact; both are safe to
// run again after a crash (a sweep finds nothing left to do; a test clock
// lives in memory and died with the process).
var notHeld = map[string]bool{"runSweep": true, "advanceTestClock": true}

// idempotent makes a POST honour Idempotency-Key (docs/idempotency.md).
// It runs last in the operation's chain, after authentication (the stored
// answers are per caller) and validation (a malformed request is refused
// before it can use up a key).
//
// A first request runs under a store.Hold: its first write transaction
// stays open until the handler has answered into a buffer; the answer is
// then written into that transaction, which commits, and only then is the
// answer sent. So the stored answer and the change commit together or not
// at all, and a kill -9 at any point leaves either both (the retry
// replays) or neither (the retry runs now). A request that wrote nothing
// stores a success after the fact; a refusal that wrote nothing is not
// stored. A retry of the same request replays the stored answer with
// Idempotent-Replayed: true; the same key with another request is 422; a
// duplicate while the first still runs (in this process) is 409, as is one
// that loses the race to commit the same key on another replica.
func (s *Server) idempotent(op string) echo.MiddlewareFunc {
	hold := !notHeld[op]
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			values := r.Header.Values("Idempotency-Key")
			if len(values) == 0 || s.idem == nil {
				return next(c)
			}
			if len(values) > 1 || !idempotency.ValidKey(values[0]) {
				return apperr.Invalidf("header.Idempotency-Key", "invalid",
					"Idempotency-Key must be one header of 1 to 255 printable ASCII characters")
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			caller := "anonymous"
			if p := auth.FromContext(r.Context()); p != nil {
				caller = string(p.Type) + ":" + p.ID.String()
			}
			k := s.idem.KeyOf(caller, values[0], r.Method, r.URL.Path, r.URL.RawQuery, body)
			release, ok := s.idem.Begin(k)
			if !ok {
				return answerNow(c, errIdempotencyInUse)
			}
			defer release()
			stored, err := s.idem.Find(r.Context(), &k)
			if errors.Is(err, idempotency.ErrMismatch) {
				return answerNow(c, errIdempotencyMismatch)
			}
			if err != nil {
				return err
			}
			if stored != nil {
				noteDetail(r.Context(), "idempotent replay")
				return replay(c, stored)
			}
			// A serialization failure at the commit undoes the whole
			// request, which is then run again, as WithRetryTx would.
			for attempt := 1; ; attempt++ {
				r.Body = io.NopCloser(bytes.NewReader(body))
				err := s.runKeyed(c, next, k, hold)
				if err == nil || attempt == 5 || !store.Retryable(err) {
					return err
				}
			}
		}
	}
}

// runKeyed runs the request once under a hold, stores its answer and
// sends it (see idempotent).
func (s *Server) runKeyed(c echo.Context, next echo.HandlerFunc, k idempotency.Key, hold bool) (err error) {
	orig, origReq := c.Response(), c.Request()
	buf := &bufferedWriter{header: orig.Header().Clone()}
	c.SetResponse(echo.NewResponse(buf, c.Echo()))
	h := s.store.NewHold()
	ctx := origReq.Context()
	if hold {
		ctx = store.WithHold(ctx, h)
	}
	c.SetRequest(origReq.WithContext(ctx))
	finished := false
	defer func() {
		c.SetResponse(orig)
		c.SetRequest(origReq)
		if !finished {
			// A panic: the held transaction (if any) rolls back.
			_, _ = h.Finish(nil)
		}
	}()
	if herr := next(c); herr != nil {
		c.Error(herr) // render now, into buf
	}
	res := c.Response()
	ans := idempotency.AnswerOf(res.Status, buf.header, buf.body.Bytes())
	if s.idemHook != nil {
		s.idemHook(ctx)
	}
	held, cerr := h.Finish(func(tx *ent.Tx) error { return s.idem.Write(ctx, tx, k, ans) })
	finished = true
	switch {
	case cerr != nil && store.IsUniqueViolation(cerr):
		// Another replica's request with this key committed first.
		return errIdempotencyInUse
	case cerr != nil:
		return cerr
	case !held && ans.Status >= 200 && ans.Status < 300:
		// Nothing was written: store the success on its own.
		if werr := s.idem.WriteAlone(origReq.Context(), k, ans); werr != nil {
			s.log.ErrorContext(ctx, "store idempotent answer", "error", werr)
		}
	}
	for name, v := range buf.header {
		orig.Header()[name] = v
	}
	orig.WriteHeader(ans.Status)
	_, err = orig.Write(ans.Body)
	return err
}

// answerNow sends err's problem at once, whole (with its length, so the
// client has it without waiting for the request's end): the audit row of
// the refusal is written after the answer, and must not keep the client
// waiting for a writer that a held request of the same key may be keeping
// (SQLite).
func answerNow(c echo.Context, err error) error {
	orig := c.Response()
	buf := &bufferedWriter{header: orig.Header().Clone()}
	c.SetResponse(echo.NewResponse(buf, c.Echo()))
	c.Error(err)
	status := c.Response().Status
	c.SetResponse(orig)
	return sendWhole(c, idempotency.AnswerOf(status, buf.header, buf.body.Bytes()), buf.header)
}

// replay sends a stored answer, saying it is one.
func replay(c echo.Context, a *idempotency.Answer) error {
	h := http.Header{}
	for name, v := range a.Header {
		h.Set(name, v)
	}
	h.Set("Idempotent-Replayed", "true")
	return sendWhole(c, *a, h)
}

// sendWhole sends a with the header fields h, its length, and flushes it.
func sendWhole(c echo.Context, a idempotency.Answer, h http.Header) error {
	res := c.Response()
	for name, v := range h {
		res.Header()[name] = v
	}
	res.Header().Set(echo.HeaderContentLength, strconv.Itoa(len(a.Body)))
	res.WriteHeader(a.Status)
	_, err := res.Write(a.Body)
	_ = http.NewResponseController(res.Writer).Flush()
	return err
}

// bufferedWriter keeps a response until it may be sent.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header         { return b.header }
func (b *bufferedWriter) WriteHeader(status int)      { b.status = status }
func (b *bufferedWriter) Write(p []byte) (int, error) { return b.body.Write(p) }

// SetIdempotencyHook sets a function that keyed requests call once their
// answer is known and before it is stored and committed: with their write
// transaction held open. Tests use it to hold a request there; set it
// before serving.
func (s *Server) SetIdempotencyHook(f func(ctx context.Context)) { s.idemHook = f }
