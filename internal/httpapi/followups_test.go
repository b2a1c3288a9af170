package httpapi_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/testdb"
)

type followUpItem struct {
	ID          string     `json:"id"`
	SubjectType string     `json:"subjectType"`
	SubjectID   string     `json:"subjectId"`
	AuthorID    string     `json:"authorId"`
	Channel     string     `json:"channel"`
	Content     string     `json:"content"`
	OccurredAt  time.Time  `json:"occurredAt"`
	NextAt      *time.Time `json:"nextAt"`
	CreatedAt   time.Time  `json:"createdAt"`
}

type followUpPage struct {
	Items      []followUpItem `json:"items"`
	NextCursor *string        `json:"nextCursor"`
}

// logFollowUp posts a follow-up on a record; extra adds body fields.
func logFollowUp(c *apitest.Client, kind, id string, at time.Time, extra ...any) *apitest.Response {
	body := map[string]any{"subjectType": kind, "subjectId": id, "channel": "call", "content": "called, interested",
		"occurredAt": at.UTC().Format(time.RFC3339Nano)}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	return c.Do("POST", "/v1/follow-ups", body)
}

func listFollowUps(t *testing.T, c *apitest.Client, query url.Values) followUpPage {
	t.Helper()
	var p followUpPage
	c.Do("GET", "/v1/follow-ups?"+query.Encode(), nil).Expect(http.StatusOK).JSON(&p)
	return p
}

// cfRecordClock is what a follow-up may change on a lead or customer.
type cfRecordClock struct {
	OwnedAt        *time.Time `json:"ownedAt"`
	LastFollowUpAt *time.Time `json:"lastFollowUpAt"`
	ReclaimAt      *time.Time `json:"reclaimAt"`
	ETag           string     `json:"-"`
}

func cfClockOf(t *testing.T, c *apitest.Client, kind, id string) cfRecordClock {
	t.Helper()
	res := c.Do("GET", "/v1/"+kind+"s/"+id, nil).Expect(http.StatusOK)
	var rc cfRecordClock
	res.JSON(&rc)
	rc.ETag = res.Header.Get("ETag")
	return rc
}

func cfSameTime(a *time.Time, b time.Time) bool { return a != nil && a.Equal(b) }

func TestFollowUpTimes(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		lead := w.record(w.repA, "lead", nil)
		now := time.Now().UTC().Truncate(time.Second)
		cases := []struct {
			name     string
			occurred time.Time
			extra    []any
			status   int
			field    string // the offending field of a 400
			code     string
		}{
			{"past", now.Add(-72 * time.Hour), nil, 201, "", ""},
			{"now", now, nil, 201, "", ""},
			{"within clock skew", now.Add(30 * time.Second), nil, 201, "", ""},
			{"future", now.Add(2 * time.Hour), nil, 400, "body/occurredAt", "in_future"},
			{"future beyond skew", now.Add(3 * time.Minute), nil, 400, "body/occurredAt", "in_future"},
			{"next after occurred", now.Add(-time.Hour), []any{"nextAt", now.Add(24 * time.Hour).Format(time.RFC3339)}, 201, "", ""},
			{"next before occurred", now.Add(-time.Hour), []any{"nextAt", now.Add(-2 * time.Hour).Format(time.RFC3339)}, 400, "body/nextAt", "not_after_occurred_at"},
			{"next equal to occurred", now.Add(-time.Hour), []any{"nextAt", now.Add(-time.Hour).Format(time.RFC3339)}, 400, "body/nextAt", "not_after_occurred_at"},
			{"blank content", now, []any{"content", "   "}, 400, "body/content", "required"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := logFollowUp(w.repA, "lead", lead, tc.occurred, tc.extra...)
				if tc.status != 201 {
					p := res.ExpectProblem(tc.status, "validation_failed")
					if len(p.Errors) != 1 || p.Errors[0].Field != tc.field || p.Errors[0].Code != tc.code {
						t.Fatalf("errors %+v, want %s %s", p.Errors, tc.field, tc.code)
					}
					return
				}
				var f followUpItem
				res.Expect(http.StatusCreated).JSON(&f)
				if f.SubjectType != "lead" || f.SubjectID != lead || f.AuthorID != w.repAID.String() || f.Channel != "call" ||
					f.Content != "called, interested" || !f.OccurredAt.Equal(tc.occurred) || f.CreatedAt.IsZero() {
					t.Fatalf("follow-up %+v", f)
				}
				if (f.NextAt != nil) != (len(tc.extra) > 0) {
					t.Fatalf("nextAt %v", f.NextAt)
				}
			})
		}
	})
}

func TestFollowUpMovesLastFollowUpAt(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		ctx := context.Background()
		for _, kind := range []string{"lead", "customer"} {
			if err := w.env.App.Store.Client.Pool.UpdateOneID(pool.DefaultPoolID(kinds.Kind(kind))).SetIdleDays(10).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		const idle = 10 * 24 * time.Hour
		for _, kind := range []string{"lead", "customer"} {
			t.Run(kind, func(t *testing.T) {
				id := w.record(w.repA, kind, nil)
				before := cfClockOf(t, w.repA, kind, id)
				if before.LastFollowUpAt != nil || before.OwnedAt == nil || !cfSameTime(before.ReclaimAt, before.OwnedAt.Add(idle)) {
					t.Fatalf("fresh record %+v", before)
				}

				// By the owner: lastFollowUpAt moves, the idle clock restarts
				// and the version changes.
				at := before.OwnedAt.Add(time.Second).Truncate(time.Millisecond)
				logFollowUp(w.repA, kind, id, at).Expect(http.StatusCreated)
				after := cfClockOf(t, w.repA, kind, id)
				if !cfSameTime(after.LastFollowUpAt, at) || !cfSameTime(after.ReclaimAt, at.Add(idle)) || after.ETag == before.ETag {
					t.Fatalf("after the owner's follow-up at %v: %+v (before %+v)", at, after, before)
				}

				// An older follow-up by the owner never moves it back.
				logFollowUp(w.repA, kind, id, at.Add(-time.Hour)).Expect(http.StatusCreated)
				if got := cfClockOf(t, w.repA, kind, id); !cfSameTime(got.LastFollowUpAt, at) || got.ETag != after.ETag {
					t.Fatalf("after an older follow-up: %+v, want lastFollowUpAt %v and ETag %s", got, at, after.ETag)
				}

				// Anyone else's follow-up, however recent, leaves it alone.
				for name, c := range map[string]*apitest.Client{"supervisor": w.supEast, "admin": w.admin} {
					logFollowUp(c, kind, id, at.Add(2*time.Second)).Expect(http.StatusCreated)
					if got := cfClockOf(t, w.repA, kind, id); !cfSameTime(got.LastFollowUpAt, at) || !cfSameTime(got.ReclaimAt, at.Add(idle)) || got.ETag != after.ETag {
						t.Fatalf("after the %s's follow-up: %+v, want it unchanged %+v", name, got, after)
					}
				}
			})
		}
	})
}

func TestFollowUpPermissions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		// Each case gets a fresh record of rep A's, so that whether its
		// clock moved is the case's doing alone.
		fresh := func(kind string) string { return w.record(w.repA, kind, nil) }
		pooledLead := w.record(w.admin, "lead", cfPtr(pool.DefaultPoolID("lead")))
		pooledCust := w.record(w.admin, "customer", cfPtr(pool.DefaultPoolID("customer")))
		missing := uuid.Must(uuid.NewV7()).String()
		cases := []struct {
			name       string
			c          *apitest.Client
			kind, id   string
			status     int
			code       string
			movesClock bool
		}{
			{"owner on his lead", w.repA, "lead", fresh("lead"), 201, "", true},
			{"owner on his customer", w.repA, "customer", fresh("customer"), 201, "", true},
			{"other rep", w.repB, "lead", fresh("lead"), 404, "not_found", false},
			{"other rep on a customer", w.repB, "customer", fresh("customer"), 404, "not_found", false},
			{"supervisor of the owner", w.supEast, "lead", fresh("lead"), 201, "", false},
			{"supervisor of another team", w.supWest, "customer", fresh("customer"), 404, "not_found", false},
			{"admin", w.admin, "customer", fresh("customer"), 201, "", false},
			{"auditor", w.auditor, "lead", fresh("lead"), 403, "forbidden", false},
			{"rep on a pooled lead", w.repA, "lead", pooledLead, 403, "not_record_owner", false},
			{"rep on a pooled customer", w.repB, "customer", pooledCust, 403, "not_record_owner", false},
			{"pool manager on a pooled lead", w.admin, "lead", pooledLead, 201, "", false},
			{"missing record", w.repA, "lead", missing, 404, "not_found", false},
			{"wrong subject type", w.repA, "customer", fresh("lead"), 404, "not_found", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				res := logFollowUp(tc.c, tc.kind, tc.id, time.Now().Add(-time.Minute))
				if tc.status != 201 {
					res.ExpectProblem(tc.status, tc.code)
					return
				}
				res.Expect(http.StatusCreated)
				if got := cfClockOf(t, w.admin, tc.kind, tc.id).LastFollowUpAt != nil; got != tc.movesClock {
					t.Fatalf("lastFollowUpAt set = %v, want %v", got, tc.movesClock)
				}
			})
		}
	})
}

func TestFollowUpList(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		w := newCFWorld(t, databaseURL)
		leadA := w.record(w.repA, "lead", nil)
		custA := w.record(w.repA, "customer", nil)
		leadB := w.record(w.repB, "lead", nil)
		base := time.Now().UTC().Add(-10 * time.Hour).Truncate(time.Second)
		h := func(n int) time.Time { return base.Add(time.Duration(n) * time.Hour) }
		for _, f := range []struct {
			c        *apitest.Client
			kind, id string
			at       time.Time
		}{
			{w.repA, "lead", leadA, h(1)}, {w.repA, "lead", leadA, h(2)}, {w.repA, "lead", leadA, h(3)},
			{w.repA, "customer", custA, h(4)}, {w.repA, "customer", custA, h(4)}, // a tie on occurredAt
			{w.supEast, "lead", leadA, h(5)},
			{w.repB, "lead", leadB, h(6)},
		} {
			logFollowUp(f.c, f.kind, f.id, f.at).Expect(http.StatusCreated)
		}
		all := listFollowUps(t, w.admin, url.Values{"limit": {"200"}}).Items
		if len(all) != 7 {
			t.Fatalf("admin sees %d follow-ups, want 7", len(all))
		}
		for i := 1; i < len(all); i++ {
			a, b := all[i-1], all[i]
			if a.OccurredAt.Before(b.OccurredAt) || (a.OccurredAt.Equal(b.OccurredAt) && a.ID < b.ID) {
				t.Fatalf("not newest first at %d: %+v then %+v", i, a, b)
			}
		}
		ids := func(items []followUpItem) []string {
			out := make([]string, len(items))
			for i, f := range items {
				out[i] = f.ID
			}
			return out
		}
		at := func(items []followUpItem) []time.Time {
			out := make([]time.Time, len(items))
			for i, f := range items {
				out[i] = f.OccurredAt
			}
			return out
		}

		cases := []struct {
			name  string
			c     *apitest.Client
			query url.Values
			want  []time.Time
		}{
			{"rep: his records and what others logged on them", w.repA, nil, []time.Time{h(5), h(4), h(4), h(3), h(2), h(1)}},
			{"other rep: his own only", w.repB, nil, []time.Time{h(6)}},
			{"supervisor: his subtree", w.supEast, nil, []time.Time{h(6), h(5), h(4), h(4), h(3), h(2), h(1)}},
			{"supervisor of another team: nothing", w.supWest, nil, []time.Time{}},
			{"auditor: everything", w.auditor, nil, at(all)},
			{"by subject", w.repA, url.Values{"subjectType": {"lead"}, "subjectId": {leadA}}, []time.Time{h(5), h(3), h(2), h(1)}},
			{"by subject type", w.supEast, url.Values{"subjectType": {"customer"}}, []time.Time{h(4), h(4)}},
			{"by author", w.repA, url.Values{"authorId": {w.supEastID.String()}}, []time.Time{h(5)}},
			{"by time range, to exclusive", w.repA, url.Values{"from": {h(2).Format(time.RFC3339)}, "to": {h(4).Format(time.RFC3339)}}, []time.Time{h(3), h(2)}},
			{"by subject and author", w.admin, url.Values{"subjectType": {"lead"}, "subjectId": {leadA}, "authorId": {w.repAID.String()}}, []time.Time{h(3), h(2), h(1)}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				got := at(listFollowUps(t, tc.c, tc.query).Items)
				if !slices.EqualFunc(got, tc.want, time.Time.Equal) {
					t.Fatalf("occurredAt %v, want %v", got, tc.want)
				}
			})
		}

		// A subject the caller may not see, and a subject without its type.
		w.repB.Do("GET", "/v1/follow-ups?subjectType=lead&subjectId="+leadA, nil).ExpectProblem(http.StatusNotFound, "not_found")
		w.repA.Do("GET", "/v1/follow-ups?subjectId="+leadA, nil).ExpectProblem(http.StatusBadRequest, "validation_failed")
		w.repA.Do("GET", "/v1/follow-ups?cursor=forged", nil).ExpectProblem(http.StatusBadRequest, "invalid_cursor")

		// Keyset pages of two walk the whole list once, across the tie.
		var paged []followUpItem
		q := url.Values{"limit": {"2"}}
		for range 10 {
			p := listFollowUps(t, w.supEast, q)
			paged = append(paged, p.Items...)
			if p.NextCursor == nil {
				break
			}
			q.Set("cursor", *p.NextCursor)
		}
		if !slices.Equal(ids(paged), ids(all)) {
			t.Fatalf("paged %v, want %v", ids(paged), ids(all))
		}

		// Once leadA is rep B's, rep A still sees what he wrote on it, but
		// not the supervisor's follow-up, nor the lead's own list.
		if err := w.env.App.Store.Client.Lead.UpdateOneID(uuid.MustParse(leadA)).SetOwnerID(w.repBID).Exec(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := at(listFollowUps(t, w.repA, nil).Items); !slices.EqualFunc(got, []time.Time{h(4), h(4), h(3), h(2), h(1)}, time.Time.Equal) {
			t.Fatalf("rep A after losing the lead: %v", got)
		}
		if got := at(listFollowUps(t, w.repB, nil).Items); !slices.EqualFunc(got, []time.Time{h(6), h(5), h(3), h(2), h(1)}, time.Time.Equal) {
			t.Fatalf("rep B after gaining the lead: %v", got)
		}
		w.repA.Do("GET", "/v1/follow-ups?subjectType=lead&subjectId="+leadA, nil).ExpectProblem(http.StatusNotFound, "not_found")
	})
}
