// Package apitest runs Shoal's real HTTP stack (router, middleware,
// authentication, casbin, generated code, services) over a real database
// for tests, and gives them logged-in clients.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testkit"
)

// Password is the password of every user the helpers create.
const Password = testkit.Password

// Env is a running Shoal over one database: a testkit world with the real
// HTTP stack in front of it.
type Env struct {
	T   testing.TB
	URL string
	App *app.App
	// Logs holds everything the server logged.
	Logs *SyncBuffer
	// World is the service-level world under the HTTP stack.
	World *testkit.World
}

// Options tune New.
type Options struct {
	Config app.Config
}

// New starts Shoal on databaseURL (applying the schema) behind an
// httptest server, and stops both when the test ends.
func New(t testing.TB, databaseURL string, opts ...Options) *Env {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	w := testkit.New(t, databaseURL, o.Config)
	srv := httptest.NewServer(w.App.HTTP.Handler())
	t.Cleanup(srv.Close)
	return &Env{T: t, URL: srv.URL, App: w.App, Logs: w.Logs, World: w}
}

// WorkJobs works the job queue until no job due now is left (see
// testkit.World.WorkJobs).
func (e *Env) WorkJobs() {
	e.T.Helper()
	e.World.WorkJobs()
}

// Migrate applies Shoal's schema to databaseURL (testdb.MigrateFunc).
func Migrate(ctx context.Context, databaseURL string) error { return testkit.Migrate(ctx, databaseURL) }

// Main is TestMain for packages whose tests run Shoal through apitest
// (see testkit.Main). Use it as os.Exit(apitest.Main(m)).
func Main(m *testing.M) int { return testkit.Main(m) }

// SyncBuffer is a bytes.Buffer safe for concurrent writers.
type SyncBuffer = testkit.SyncBuffer

// Unique returns a string unique within the process, for names and emails.
func (e *Env) Unique(prefix string) string { return e.World.Unique(prefix) }

// Team creates a team directly through the service.
func (e *Env) Team(name string, parent *uuid.UUID) *ent.Team {
	e.T.Helper()
	return e.World.Team(name, parent)
}

// User creates a user with role in team (may be nil) and returns it with a
// logged-in client.
func (e *Env) User(role string, team *uuid.UUID, caps ...org.Caps) (*ent.User, *Client) {
	e.T.Helper()
	u := e.World.User(role, team, caps...)
	return u, e.Login(u.Email, Password)
}

// Login logs in through the API and returns a client using the token.
func (e *Env) Login(email, password string) *Client {
	e.T.Helper()
	res := e.Anonymous().Do("POST", "/v1/auth/login", map[string]any{"email": email, "password": password})
	if res.Status != 200 {
		e.T.Fatalf("login %s: %d %s", email, res.Status, res.Body)
	}
	var tok struct{ AccessToken, RefreshToken string }
	res.JSON(&tok)
	return &Client{env: e, Bearer: tok.AccessToken, Refresh: tok.RefreshToken}
}

// Anonymous returns a client without credentials.
func (e *Env) Anonymous() *Client { return &Client{env: e} }

// Client calls the API with one set of credentials.
type Client struct {
	env *Env
	// Bearer is sent as Authorization: Bearer.
	Bearer string
	// Refresh is the refresh token of a login.
	Refresh string
	// APIKey is sent as X-API-Key.
	APIKey string
	// Header is added to every request.
	Header http.Header
}

// Response is a decoded response.
type Response struct {
	t      testing.TB
	Status int
	Header http.Header
	Body   []byte
}

// keyEveryPost (SHOAL_TEST_IDEMPOTENCY_KEYS=1) sends a fresh
// Idempotency-Key with every POST that has none, so that any suite can be
// run with every write held open for its stored answer (store.Hold).
var keyEveryPost = os.Getenv("SHOAL_TEST_IDEMPOTENCY_KEYS") == "1"

// Do sends a request with a JSON body (nil for none; a string is sent as
// is) and reads the whole response.
func (c *Client) Do(method, path string, body any, header ...string) *Response {
	c.env.T.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.env.T.Fatalf("encode body: %v", err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.env.URL+path, r)
	if err != nil {
		c.env.T.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.Bearer)
	}
	if c.APIKey != "" {
		req.Header.Set("X-API-Key", c.APIKey)
	}
	for k, vs := range c.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if method == http.MethodPost && keyEveryPost && req.Header.Get("Idempotency-Key") == "" {
		req.Header.Set("Idempotency-Key", uuid.NewString())
	}
	client := http.DefaultClient
	if req.Header.Get("Expect") == "100-continue" {
		client = continueClient
	}
	res, err := client.Do(req)
	if err != nil {
		c.env.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		c.env.T.Fatalf("read body: %v", err)
	}
	recordProblem(method, req.URL.Path, res, raw)
	if recordExamples {
		recordExample(method, req.URL.Path, body, res, raw)
	}
	return &Response{t: c.env.T, Status: res.StatusCode, Header: res.Header, Body: raw}
}

// continueClient sends requests that carry "Expect: 100-continue": it
// holds the body until the server asks for it, however loaded the machine,
// so a server refusing a body by its declared size (413) answers before
// any of it is sent, instead of closing the connection on a half-sent
// body (a broken pipe where the test expects the 413).
var continueClient = func() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = time.Minute
	return &http.Client{Transport: tr}
}()

// ETag reads the resource at path as this client and returns its ETag,
// for a change's If-Match.
func (c *Client) ETag(path string) string {
	c.env.T.Helper()
	res := c.Do(http.MethodGet, path, nil).Expect(http.StatusOK)
	tag := res.Header.Get("ETag")
	if tag == "" {
		c.env.T.Fatalf("GET %s: no ETag", path)
	}
	return tag
}

// SeenProblem is one kind of problem answer the tests saw: the request's
// method and path, the status and the code.
type SeenProblem struct {
	Method, Path string
	Status       int
	Code         string
}

// seenProblems holds every SeenProblem of the process, so that a test can
// check at the end that the contract declares each (see Problems).
var seenProblems sync.Map // SeenProblem → struct{}

func recordProblem(method, path string, res *http.Response, raw []byte) {
	if res.Header.Get("Content-Type") != "application/problem+json" {
		return
	}
	var p struct{ Code string }
	if json.Unmarshal(raw, &p) == nil && p.Code != "" {
		seenProblems.Store(SeenProblem{Method: method, Path: path, Status: res.StatusCode, Code: p.Code}, struct{}{})
	}
}

// Problems returns every problem answer seen so far in this process.
func Problems() []SeenProblem {
	var out []SeenProblem
	seenProblems.Range(func(k, _ any) bool {
		out = append(out, k.(SeenProblem))
		return true
	})
	return out
}

// recordExamples is on when SHOAL_TEST_EXAMPLES_FILE names a file: the
// tests then keep one real exchange per operation shape and answer, from
// which maintainers take the examples of openapi.yaml.
var recordExamples = os.Getenv("SHOAL_TEST_EXAMPLES_FILE") != ""

// Example is one successful JSON exchange a test made.
type Example struct {
	Method   string          `json:"method"`
	Path     string          `json:"path"`
	Status   int             `json:"status"`
	Request  json.RawMessage `json:"request,omitempty"`
	Response json.RawMessage `json:"response,omitempty"`
}

var (
	examplesMu   sync.Mutex
	seenExamples = map[string]Example{} // method status shape → Example
	uuidRE       = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

func recordExample(method, path string, body any, res *http.Response, raw []byte) {
	if res.StatusCode >= 300 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		return
	}
	ex := Example{Method: method, Path: path, Status: res.StatusCode, Response: raw}
	switch b := body.(type) {
	case nil:
	case string:
		if json.Valid([]byte(b)) {
			ex.Request = json.RawMessage(b)
		}
	case []byte:
		if json.Valid(b) {
			ex.Request = b
		}
	default:
		if raw, err := json.Marshal(b); err == nil {
			ex.Request = raw
		}
	}
	key := fmt.Sprintf("%s %d %s %t", method, res.StatusCode, uuidRE.ReplaceAllString(path, "{id}"), ex.Request != nil)
	// Keep the fullest answer under 16 KiB: a list with items says more
	// than an empty one.
	examplesMu.Lock()
	defer examplesMu.Unlock()
	if old, ok := seenExamples[key]; !ok || (len(raw) > len(old.Response) && len(raw) <= 16<<10) {
		seenExamples[key] = ex
	}
}

// Examples returns the exchanges kept so far (see recordExamples).
func Examples() []Example {
	examplesMu.Lock()
	defer examplesMu.Unlock()
	out := make([]Example, 0, len(seenExamples))
	for _, ex := range seenExamples {
		out = append(out, ex)
	}
	return out
}

// JSON decodes the body into v.
func (r *Response) JSON(v any) {
	r.t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		r.t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body into a generic map.
func (r *Response) Map() map[string]any {
	r.t.Helper()
	m := map[string]any{}
	r.JSON(&m)
	return m
}

// Problem is an RFC 9457 body.
type Problem struct {
	Type, Title, Detail, Code, RequestID string
	Status                               int
	Errors                               []struct{ Field, Code, Message string }
}

// Problem decodes a problem+json body, failing if it is not one.
func (r *Response) Problem() Problem {
	r.t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		r.t.Fatalf("content type %q, want application/problem+json (status %d, body %s)", ct, r.Status, r.Body)
	}
	var p Problem
	r.JSON(&p)
	return p
}

// Expect fails the test unless the status is want.
func (r *Response) Expect(want int) *Response {
	r.t.Helper()
	if r.Status != want {
		r.t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
	return r
}

// ExpectProblem fails unless the response is a problem with status and code.
func (r *Response) ExpectProblem(status int, code string) Problem {
	r.t.Helper()
	p := r.Problem()
	if r.Status != status || p.Code != code {
		r.t.Fatalf("got %d %q, want %d %q: %s", r.Status, p.Code, status, code, r.Body)
	}
	return p
}
