package httpapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/audit"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/export"
	"github.com/shoalcrm/shoal/internal/observe"
	"github.com/shoalcrm/shoal/internal/records"
)

// exportPageSize is how many rows an export reads per page of the list's
// keyset query: large enough that the per-page lookups (owner names,
// pools) cost little, small enough that memory stays flat.
const exportPageSize = 1000

// errNotAcceptable answers an Accept header that names nothing the
// operation answers (406).
var errNotAcceptable = apperr.New(apperr.Invalid, "not_acceptable",
	"none of the media types in Accept is available here: ask for application/json, text/csv or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")

// representations are the media types of an operation's 200 answer, JSON
// first, and the names of its query parameters.
type representations struct {
	types []string
	query map[string]bool
}

// successMediaTypes lists, per operationId, the representations of the
// operations whose 200 answer has more than one media type (the lists
// that export).
func successMediaTypes(spec *openapi3.T) map[string]representations {
	out := map[string]representations{}
	for _, item := range spec.Paths.Map() {
		for _, op := range item.Operations() {
			if op.Responses == nil {
				continue
			}
			r := op.Responses.Value("200")
			if r == nil || r.Value == nil || len(r.Value.Content) < 2 {
				continue
			}
			var types []string
			for mt := range r.Value.Content {
				types = append(types, mt)
			}
			// JSON first: it is what a client that states no preference gets.
			sort.Slice(types, func(i, j int) bool {
				if (types[i] == echo.MIMEApplicationJSON) != (types[j] == echo.MIMEApplicationJSON) {
					return types[i] == echo.MIMEApplicationJSON
				}
				return types[i] < types[j]
			})
			query := map[string]bool{}
			for _, params := range []openapi3.Parameters{item.Parameters, op.Parameters} {
				for _, p := range params {
					if p.Value != nil && p.Value.In == openapi3.ParameterInQuery {
						query[p.Value.Name] = true
					}
				}
			}
			out[op.OperationID] = representations{types: types, query: query}
		}
	}
	return out
}

// wanted is what a list request asked for beyond JSON: an export's format
// and language, and the names (never the values) of the query parameters
// it was filtered with, for the audit.
type wanted struct {
	format  export.Format
	chinese bool
	query   string
}

type wantedKey struct{}

// exportWanted returns the export a list request asked for, if any.
func exportWanted(ctx context.Context) (wanted, bool) {
	w, ok := ctx.Value(wantedKey{}).(wanted)
	return w, ok
}

// negotiate chooses, for an operation with several representations, the
// one Accept prefers (JSON when Accept is absent or states no preference),
// answers 406 not_acceptable when Accept allows none, and tells the
// handler which through the request's context. nil for an operation with
// one representation: Accept is not checked there.
func negotiate(reps representations) echo.MiddlewareFunc {
	offers := reps.types
	if len(offers) < 2 {
		return nil
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			mt, ok := chooseMedia(r.Header.Values(echo.HeaderAccept), offers)
			if !ok {
				return errNotAcceptable
			}
			if mt != echo.MIMEApplicationJSON {
				w := wanted{format: export.Format(mt), chinese: wantsChinese(r), query: queryNames(r, reps.query)}
				c.SetRequest(r.WithContext(context.WithValue(r.Context(), wantedKey{}, w)))
				res := c.Response()
				res.Writer = &rollingDeadline{ResponseWriter: res.Writer, rc: http.NewResponseController(res.Writer)}
			}
			return next(c)
		}
	}
}

// exportWriteWindow is how long one write of an export may take. The
// server's WriteTimeout bounds a whole answer (60 s for shoal serve),
// which a large export outlasts; an export instead gets this long for each
// write, so it fails only when the client stops reading.
const exportWriteWindow = time.Minute

// rollingDeadline moves the connection's write deadline forward before
// each write of an export (and names a CSV's character set).
type rollingDeadline struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (d *rollingDeadline) Write(p []byte) (int, error) {
	// A writer that cannot set deadlines (a test recorder) keeps none.
	_ = d.rc.SetWriteDeadline(time.Now().Add(exportWriteWindow))
	return d.ResponseWriter.Write(p)
}

// WriteHeader names the CSV's character set, which text/csv has no
// default for (RFC 4180 leaves it to the charset parameter).
func (d *rollingDeadline) WriteHeader(code int) {
	h := d.Header()
	if h.Get(echo.HeaderContentType) == string(export.CSV) {
		h.Set(echo.HeaderContentType, string(export.CSV)+"; charset=utf-8")
	}
	d.ResponseWriter.WriteHeader(code)
}

func (d *rollingDeadline) Unwrap() http.ResponseWriter { return d.ResponseWriter }

// chooseMedia picks the offer Accept gives the highest quality (RFC 9110
// §12.5.1: the most specific matching range sets an offer's quality),
// the earliest offer on a tie; ok is false when every offer has quality 0.
func chooseMedia(accept []string, offers []string) (string, bool) {
	type rng struct {
		typ, sub string
		q        float64
	}
	var ranges []rng
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			mt, params, err := mime.ParseMediaType(part)
			typ, sub, slash := strings.Cut(mt, "/")
			if err != nil || !slash {
				continue // a malformed range is ignored, as if not sent
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f <= 1 {
					q = f
				}
			}
			ranges = append(ranges, rng{typ, sub, q})
		}
	}
	if len(ranges) == 0 {
		return offers[0], true
	}
	best, bestQ := "", 0.0
	for _, o := range offers {
		typ, sub, _ := strings.Cut(o, "/")
		q, spec := 0.0, -1
		for _, r := range ranges {
			s := -1
			switch {
			case r.typ == typ && r.sub == sub:
				s = 2
			case r.typ == typ && r.sub == "*":
				s = 1
			case r.typ == "*" && r.sub == "*":
				s = 0
			}
			if s > spec {
				spec, q = s, r.q
			}
		}
		if q > bestQ {
			best, bestQ = o, q
		}
	}
	return best, bestQ > 0
}

// queryNames lists the query parameters a request gave, by name only
// (values such as q may be personal), and only those the operation
// declares: a name is the client's free text too.
func queryNames(r *http.Request, declared map[string]bool) string {
	var names []string
	for k := range r.URL.Query() {
		if declared[k] {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}

// exportOf describes one list's export: its columns, the audit target, and
// how to read a page after a cursor. The page is read through the list's
// own service call, so filters, scope and masking are the JSON list's.
type exportOf[T any] struct {
	exportAudit
	noun    string // the file's and the sheet's name
	columns []export.Column[T]
	bom     *bool
	page    func(ctx context.Context, after *records.Cursor) ([]T, *records.Cursor, error)
}

// exportAudit is what an export's audit row names: the operation and the
// list's target (a customer's contacts name the customer).
type exportAudit struct {
	op, targetType, targetID string
}

// stream starts the export: it reads the first page now, so that a bad
// filter or a refusal is still a problem answer, then streams the file
// from a goroutine through a pipe the generated handler copies to the
// client. The goroutine stops when the client goes (the handler closes
// the pipe when a write to the client fails, and the request's context
// ends). Every export is audited: one row, written before the file's end,
// with the format and the row count (an export whose audit row cannot be
// written is cut short), or, when the export stops midway, a failure row
// with the rows sent so far.
func stream[T any](ctx context.Context, s *Server, w wanted, e exportOf[T]) (io.Reader, *string, error) {
	return streamWith(ctx, w, e, s.pools.Clock().Now(), s.audit.Record, s.log)
}

// streamWith is stream with its clock reading, audit log and logger
// given.
func streamWith[T any](ctx context.Context, w wanted, e exportOf[T], now time.Time,
	record func(context.Context, audit.Event) error, log *slog.Logger) (io.ReadCloser, *string, error) {
	first, next, err := e.page(ctx, nil)
	if err != nil {
		return nil, nil, err
	}
	pager := func(ctx context.Context) ([]T, error) {
		if next == nil {
			return nil, nil
		}
		rows, after, err := e.page(ctx, next)
		next = after
		return rows, err
	}
	o := export.Options{Format: w.format, Chinese: w.chinese, BOM: e.bom != nil && *e.bom && w.format == export.CSV, Sheet: e.noun}
	disposition := mime.FormatMediaType("attachment", map[string]string{"filename": export.FileName(e.noun, w.format, now)})
	pr, pw := io.Pipe()
	go func() {
		// Outside the handler, recoverPanics cannot catch a panic here;
		// it would end the process. It ends this export instead.
		defer func() {
			if p := recover(); p != nil {
				log.ErrorContext(ctx, "export panicked", slog.String("panic", fmt.Sprint(p)), slog.String("stack", string(debug.Stack())))
				_ = pw.CloseWithError(fmt.Errorf("export panicked: %v", p))
			}
		}()
		audited := false
		finish := func(rows int) error {
			audited = true
			return record(context.WithoutCancel(ctx), exportEvent(ctx, w, e.exportAudit, rows, true))
		}
		rows, err := export.Write(ctx, pw, e.columns, o, first, pager, finish)
		if err != nil && !audited {
			if aerr := record(context.WithoutCancel(ctx), exportEvent(ctx, w, e.exportAudit, rows, false)); aerr != nil {
				log.ErrorContext(ctx, "audit write failed", slog.Any("error", aerr), slog.String("operation", e.op))
			}
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, io.ErrClosedPipe) {
			log.ErrorContext(ctx, "export failed", slog.Any("error", err), slog.String("operation", e.op), slog.Int("rows", rows))
		}
		_ = pw.CloseWithError(err) // nil closes cleanly
	}()
	return pr, &disposition, nil
}

// exportEvent is an export's audit row: reads are not audited, but an
// export is the whole list leaving the system. The row names the format,
// the rows written and the query parameters used, by name; never a value.
func exportEvent(ctx context.Context, w wanted, e exportAudit, rows int, complete bool) audit.Event {
	ev := audit.Event{
		Operation: e.op, TargetType: e.targetType, TargetID: e.targetID,
		RequestID: observe.RequestID(ctx), ClientAddress: clientAddress(ctx),
		Outcome: audit.Success, Status: http.StatusOK,
		Detail: fmt.Sprintf("export format=%s rows=%d", w.format.Ext(), rows),
	}
	if p := auth.FromContext(ctx); p != nil {
		ev.ActorType, ev.ActorID = string(p.Type), &p.ID
	}
	if w.query != "" {
		ev.Detail += " query=" + w.query
	}
	if !complete {
		ev.Outcome = audit.Failure
		ev.Detail += " incomplete"
	}
	return ev
}
