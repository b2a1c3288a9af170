package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/auditevent"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func openLog(t *testing.T, url string) (*Log, *store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return New(st), st
}

func TestSanitize(t *testing.T) {
	id := uuid.New()
	for _, tc := range []struct {
		name string
		in   Event
		want Event
	}{
		{"clean stays", Event{Operation: "createLead", TargetID: id.String(), Detail: "role=rep"},
			Event{Operation: "createLead", TargetID: id.String(), Detail: "role=rep"}},
		{"upper-case id is canonical", Event{TargetID: strings.ToUpper(id.String())}, Event{TargetID: id.String()}},
		{"NUL target dropped", Event{TargetID: "\x00"}, Event{}},
		{"junk target dropped", Event{TargetID: "leads/../x"}, Event{}},
		{"huge target dropped", Event{TargetID: strings.Repeat("a", 5000)}, Event{}},
		{"braced uuid is canonical", Event{TargetID: "{" + id.String() + "}"}, Event{TargetID: id.String()}},
		{"controls replaced", Event{Detail: "a\x00b\x1bc\nd"}, Event{Detail: "a\uFFFDb\uFFFDc\uFFFDd"}},
		{"invalid UTF-8 replaced", Event{RequestID: "r\xff\xfe"}, Event{RequestID: "r\uFFFD"}},
		{"detail bounded", Event{Detail: strings.Repeat("公", 400)}, Event{Detail: strings.Repeat("公", 166)}},
	} {
		got := Sanitize(tc.in)
		if got != tc.want {
			t.Errorf("%s: Sanitize = %+v, want %+v", tc.name, got, tc.want)
		}
		for _, f := range []string{got.Operation, got.TargetID, got.RequestID, got.Detail} {
			if !utf8.ValidString(f) || strings.IndexFunc(f, unicode.IsControl) >= 0 {
				t.Errorf("%s: unclean field %q", tc.name, f)
			}
		}
	}
}

// refuse makes the database refuse audit rows of operation op.
func refuse(t *testing.T, st *store.Store, op string) {
	t.Helper()
	qs := []string{`CREATE TRIGGER refuse BEFORE INSERT ON audit_events WHEN NEW.operation = '` + op + `'
		BEGIN SELECT RAISE(ABORT, 'refused'); END`}
	if st.Dialect == "postgres" {
		qs = []string{
			`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$`,
			`CREATE TRIGGER refuse BEFORE INSERT ON audit_events FOR EACH ROW WHEN (NEW.operation = '` + op + `') EXECUTE FUNCTION refuse()`,
		}
	}
	for _, q := range qs {
		if _, err := st.DB().ExecContext(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
}

// A batch with a row the database refuses still writes every other row,
// and only the refused row's writer hears of the failure.
func TestBatchFailureDropsOnlyTheBadRow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		l, st := openLog(t, url)
		ctx := context.Background()
		refuse(t, st, "poison")
		var batch []*queued
		for i := range 20 {
			op := fmt.Sprintf("op%02d", i)
			if i%7 == 3 {
				op = "poison"
			}
			batch = append(batch, &queued{event: Sanitize(Event{ActorType: "anonymous", Operation: op, Outcome: Failure,
				RequestID: fmt.Sprintf("r%02d", i)}), done: make(chan error, 1)})
		}
		// Queued at once, so that they go into one insert.
		l.pending, l.draining = batch, true
		l.drain(ctx)
		for i, q := range batch {
			err := <-q.done
			n, cerr := st.Reader.AuditEvent.Query().Where(auditevent.RequestID(q.event.RequestID)).Count(ctx)
			if cerr != nil {
				t.Fatal(cerr)
			}
			if bad := q.event.Operation == "poison"; (err != nil) != bad || (n == 1) == bad {
				t.Errorf("row %d (%s): err %v, stored %d", i, q.event.Operation, err, n)
			}
		}
	})
}

// A request's entry is written once, by the first of its transactions
// that commits, with what that transaction created; a failed transaction
// leaves it to the next, and a request without any leaves it to Close.
func TestPendingWrittenWithTheFirstCommit(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		l, st := openLog(t, url)
		ctx := context.Background()
		resolve := func(_ context.Context, ev *Event, created []Created) {
			for _, c := range created {
				if c.Type == "Team" {
					ev.TargetType, ev.TargetID = "team", c.ID.String()
				}
			}
		}
		rctx, p := l.Begin(ctx, Event{ActorType: "system", Operation: "createTeam", RequestID: "req-1", Outcome: Success, Status: 201}, resolve)
		errFail := errors.New("body fails")
		var failedTeam uuid.UUID
		err := st.WithTx(rctx, func(tx *ent.Tx) error {
			t, err := tx.Team.Create().SetName("rolled back").SetPath("/a").Save(rctx)
			if err != nil {
				return err
			}
			failedTeam = t.ID
			return errFail
		})
		if !errors.Is(err, errFail) {
			t.Fatalf("WithTx = %v", err)
		}
		var team *ent.Team
		if err := st.WithTx(rctx, func(tx *ent.Tx) error {
			var err error
			team, err = tx.Team.Create().SetName("kept").SetPath("/b").Save(rctx)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if err := st.WithTx(rctx, func(tx *ent.Tx) error { return tx.Team.UpdateOne(team).SetName("again").Exec(rctx) }); err != nil {
			t.Fatal(err)
		}
		if _, done := p.Close(); !done {
			t.Error("Close: entry not written with the commit")
		}
		rows, err := st.Reader.AuditEvent.Query().Where(auditevent.RequestID("req-1")).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || rows[0].TargetID != team.ID.String() || rows[0].TargetType != "team" || rows[0].Status != 201 {
			t.Fatalf("rows %v, want one on team %s (not the rolled back %s)", rows, team.ID, failedTeam)
		}

		// Nothing committed: Close hands the entry back, and later
		// transactions under the request's context do not write it.
		rctx, p = l.Begin(ctx, Event{ActorType: "system", Operation: "updateTeam", RequestID: "req-2", Outcome: Success}, resolve)
		if _, done := p.Close(); done {
			t.Error("Close: written without a commit")
		}
		if err := st.WithTx(rctx, func(tx *ent.Tx) error { return tx.Team.UpdateOne(team).SetName("late").Exec(rctx) }); err != nil {
			t.Fatal(err)
		}
		if n, _ := st.Reader.AuditEvent.Query().Where(auditevent.RequestID("req-2")).Count(ctx); n != 0 {
			t.Errorf("%d rows written after Close", n)
		}
	})
}
