package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// atDo sends one request as bearer without failing the test from another
// goroutine: the caller checks the error. body is sent as is.
func atDo(env *apitest.Env, bearer, method, path, body, requestID string) (int, []byte, error) {
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, env.URL+path, r)
	if err != nil {
		return 0, nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("X-Request-ID", requestID)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// atEvents returns the whole audit log by request id, read straight from
// the database.
func atEvents(t *testing.T, env *apitest.Env) map[string]*ent.AuditEvent {
	t.Helper()
	events, err := env.App.Store.Reader.AuditEvent.Query().All(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*ent.AuditEvent{}
	for _, e := range events {
		if _, dup := out[e.RequestID]; dup {
			t.Errorf("request %s audited twice", e.RequestID)
		}
		out[e.RequestID] = e
	}
	return out
}

// atClean reports whether s is what the audit log may hold: valid UTF-8
// without control characters.
func atClean(s string) bool {
	return utf8.ValidString(s) && strings.IndexFunc(s, unicode.IsControl) < 0
}

// TestAuditSurvivesJunk is the suppression attack of the hardening issue:
// a rep creates leads while another of his goroutines hammers the API with
// junk ids (NUL, invalid UTF-8, huge) and junk bodies. Every acknowledged
// create has its audit row, and every junk request is audited too, with no
// target and clean fields.
func TestAuditSurvivesJunk(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		// The junk loop shares repC's request budget with the creates: make it
		// big enough that only the audit is under test.
		env := apitest.New(t, databaseURL, apitest.Options{Config: app.Config{Auth: auth.Config{UserRate: 1e4, UserBurst: 1e4}}})
		rep, repC := env.User(auth.RoleRep, nil)

		junk := []struct{ method, path, body string }{
			{"PATCH", "/v1/leads/%00", `{"name":"x"}`},
			{"POST", "/v1/leads/%00/claim", ""},
			{"PATCH", "/v1/leads/%FF%FE", `{"name":"x"}`},
			{"POST", "/v1/leads/" + strings.Repeat("a", 4000) + "/freeze", `{}`},
			{"DELETE", "/v1/contacts/%00%01%1B", ""},
			{"PATCH", "/v1/customers/" + uuid.NewString() + "%00", `{"name":"x"}`},
			{"POST", "/v1/leads", `{"name":"nul\u0000name"}`},
			{"POST", "/v1/leads", "{\"name\":\"bad \xff utf8\"}"},
		}
		stop := make(chan struct{})
		type sent struct {
			id     string
			status int
		}
		var junkSent []sent
		var junkErr error
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; ; i++ {
				if i >= len(junk) { // at least one full round
					select {
					case <-stop:
						return
					default:
					}
				}
				j := junk[i%len(junk)]
				id := fmt.Sprintf("junk-%d", i)
				status, _, err := atDo(env, repC.Bearer, j.method, j.path, j.body, id)
				if err != nil {
					junkErr = err
					return
				}
				junkSent = append(junkSent, sent{id, status})
			}
		})

		const n = 40
		created := map[string]string{} // request id → lead id
		for i := range n {
			id := fmt.Sprintf("create-%d", i)
			res := repC.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("junk-race lead ")}, "X-Request-ID", id)
			if res.Status == http.StatusCreated {
				var l struct{ ID string }
				res.JSON(&l)
				created[id] = l.ID
			}
		}
		close(stop)
		wg.Wait()
		if junkErr != nil {
			t.Fatal(junkErr)
		}
		if len(created) != n {
			t.Fatalf("%d of %d creates acknowledged", len(created), n)
		}

		events := atEvents(t, env)
		for reqID, leadID := range created {
			e, ok := events[reqID]
			if !ok {
				t.Errorf("acknowledged create %s (lead %s) has no audit row", reqID, leadID)
				continue
			}
			if e.Operation != "createLead" || e.Outcome != "success" || e.Status != http.StatusCreated ||
				e.TargetType != "lead" || e.TargetID != leadID || e.ActorID == nil || *e.ActorID != rep.ID {
				t.Errorf("create %s: audit row %+v, want createLead success 201 on lead %s by %s", reqID, e, leadID, rep.ID)
			}
		}
		for _, j := range junkSent {
			if j.status >= 500 || j.status < 400 {
				t.Errorf("junk request %s answered %d", j.id, j.status)
			}
			e, ok := events[j.id]
			if !ok {
				t.Errorf("junk request %s (%d) has no audit row", j.id, j.status)
				continue
			}
			if e.TargetID != "" || e.Status != j.status || e.Outcome == "success" {
				t.Errorf("junk request %s: audit row %+v, want no target and status %d", j.id, e, j.status)
			}
			for _, f := range []string{e.Operation, e.TargetType, e.RequestID, e.ClientAddress, e.Detail} {
				if !atClean(f) {
					t.Errorf("junk request %s: unclean audit field %q", j.id, f)
				}
			}
		}
	})
}

// atRefuseAudit makes the database refuse every audit row of operation op.
func atRefuseAudit(t *testing.T, env *apitest.Env, op string) (undo func()) {
	t.Helper()
	ctx := context.Background()
	db := env.App.Store.DB()
	var do, drop []string
	if env.App.Store.Dialect == "postgres" {
		do = []string{
			`CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
			BEGIN RAISE EXCEPTION 'audit refused for %', NEW.operation; END $$`,
			`CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events FOR EACH ROW
			WHEN (NEW.operation = '` + op + `') EXECUTE FUNCTION audit_refuse()`,
		}
		drop = []string{`DROP TRIGGER audit_refuse ON audit_events`, `DROP FUNCTION audit_refuse()`}
	} else {
		do = []string{`CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_events
			WHEN NEW.operation = '` + op + `' BEGIN SELECT RAISE(ABORT, 'audit refused'); END`}
		drop = []string{`DROP TRIGGER audit_refuse`}
	}
	for _, q := range do {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	return func() {
		for _, q := range drop {
			if _, err := db.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
	}
}

// TestAuditIsAtomicWithTheChange makes the database refuse createLead's
// audit rows: the lead is then never created and the client is told so,
// while other requests running at the same time (on SQLite in the same
// transaction, each in its own savepoint) commit with their rows.
func TestAuditIsAtomicWithTheChange(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		rep, repC := env.User(auth.RoleRep, nil)
		ctx := context.Background()
		undo := atRefuseAudit(t, env, "createLead")

		const n = 8
		type result struct {
			name, reqID string
			status      int
			body        []byte
			err         error
		}
		leads, customers := make([]result, n), make([]result, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				r := result{name: env.Unique("refused lead "), reqID: fmt.Sprintf("lead-%d", i)}
				body, _ := json.Marshal(map[string]any{"name": r.name})
				r.status, r.body, r.err = atDo(env, repC.Bearer, "POST", "/v1/leads", string(body), r.reqID)
				leads[i] = r
			})
			wg.Go(func() {
				r := result{name: env.Unique("kept customer "), reqID: fmt.Sprintf("customer-%d", i)}
				body, _ := json.Marshal(map[string]any{"name": r.name})
				r.status, r.body, r.err = atDo(env, repC.Bearer, "POST", "/v1/customers", string(body), r.reqID)
				customers[i] = r
			})
		}
		wg.Wait()

		events := atEvents(t, env)
		for _, r := range leads {
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status < 300 {
				t.Errorf("createLead %s answered %d although its audit row was refused: %s", r.reqID, r.status, r.body)
			}
			if n, err := env.App.Store.Reader.Lead.Query().Where(lead.Name(r.name)).Count(ctx); err != nil || n != 0 {
				t.Errorf("lead %q exists (%d, %v) without its audit row", r.name, n, err)
			}
			if _, ok := events[r.reqID]; ok {
				t.Errorf("createLead %s: the database was to refuse its row", r.reqID)
			}
		}
		for _, r := range customers {
			if r.err != nil {
				t.Fatal(r.err)
			}
			if r.status != http.StatusCreated {
				t.Fatalf("createCustomer %s answered %d: %s", r.reqID, r.status, r.body)
			}
			var c struct{ ID string }
			if err := json.Unmarshal(r.body, &c); err != nil {
				t.Fatal(err)
			}
			if n, err := env.App.Store.Reader.Customer.Query().Where(customer.Name(r.name)).Count(ctx); err != nil || n != 1 {
				t.Errorf("customer %q: %d rows (%v), want 1", r.name, n, err)
			}
			e, ok := events[r.reqID]
			if !ok || e.Operation != "createCustomer" || e.Outcome != "success" || e.Status != http.StatusCreated ||
				e.TargetType != "customer" || e.TargetID != c.ID || e.ActorID == nil || *e.ActorID != rep.ID {
				t.Errorf("createCustomer %s: audit row %+v (found %v), want success 201 on %s", r.reqID, e, ok, c.ID)
			}
		}

		// Once the database takes the rows again, so does the API.
		undo()
		res := repC.Do("POST", "/v1/leads", map[string]any{"name": env.Unique("accepted lead ")}, "X-Request-ID", "lead-after").Expect(http.StatusCreated)
		var l struct{ ID string }
		res.JSON(&l)
		if e, ok := atEvents(t, env)["lead-after"]; !ok || e.TargetID != l.ID || e.Outcome != "success" {
			t.Errorf("createLead after the trigger: audit row %+v (found %v)", e, ok)
		}
	})
}

// TestAuditLogins: a login is audited inside the transaction that starts
// its session, as the user who logged in; a failed login after the
// response, anonymous, naming the account it tried.
func TestAuditLogins(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		rep, _ := env.User(auth.RoleRep, nil)
		login := func(password, reqID string) int {
			return env.Anonymous().Do("POST", "/v1/auth/login", map[string]any{"email": rep.Email, "password": password},
				"X-Request-ID", reqID).Status
		}
		if s := login(apitest.Password, "login-ok"); s != http.StatusOK {
			t.Fatalf("login: %d", s)
		}
		if s := login("wrong password", "login-bad"); s != http.StatusUnauthorized {
			t.Fatalf("failed login: %d", s)
		}
		events := atEvents(t, env)
		for _, w := range []struct {
			reqID, actorType string
			actorID          *uuid.UUID
			outcome          string
			status           int
		}{
			{"login-ok", "user", &rep.ID, "success", http.StatusOK},
			{"login-bad", "anonymous", nil, "denied", http.StatusUnauthorized},
		} {
			e, ok := events[w.reqID]
			if !ok {
				t.Errorf("%s: not audited", w.reqID)
				continue
			}
			if e.Operation != "login" || string(e.ActorType) != w.actorType || e.Outcome.String() != w.outcome ||
				e.Status != w.status || e.TargetType != "user" || e.TargetID != rep.ID.String() ||
				(w.actorID == nil) != (e.ActorID == nil) || (w.actorID != nil && *e.ActorID != *w.actorID) {
				t.Errorf("%s: audit row %+v", w.reqID, e)
			}
		}
	})
}
