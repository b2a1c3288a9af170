package listing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/lead"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/page"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

func open(t *testing.T, url string) *store.Store {
	t.Helper()
	ctx := context.Background()
	if strings.HasPrefix(url, "sqlite:") {
		url = "sqlite:" + filepath.Join(t.TempDir(), "l.db")
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

var leadSpec = listing.New(lead.FieldID, func(l *ent.Lead) uuid.UUID { return l.ID }, "-createdAt",
	map[string]listing.Key[*ent.Lead]{
		"createdAt": {Column: lead.FieldCreatedAt, Value: func(l *ent.Lead) *time.Time { return &l.CreatedAt }},
		"ownedAt":   {Column: lead.FieldOwnedAt, Nullable: true, Value: func(l *ent.Lead) *time.Time { return l.OwnedAt }},
	})

// seed creates n leads whose sort values collide often (three distinct
// times) and, for owned_at, are missing on about a third of the rows.
func seed(t *testing.T, st *store.Store, n int) map[uuid.UUID]*ent.Lead {
	t.Helper()
	ctx := context.Background()
	pl, err := st.Client.Pool.Create().SetKind(entpool.KindLead).SetName("p").Save(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	rows := map[uuid.UUID]*ent.Lead{}
	for i := range n {
		c := st.Client.Lead.Create().SetName(fmt.Sprintf("l%d", i)).SetPoolID(pl.ID).
			SetCreatedAt(base.Add(time.Duration(rng.IntN(3)) * time.Hour))
		if rng.IntN(3) != 0 {
			c.SetOwnedAt(base.Add(time.Duration(rng.IntN(3)) * time.Minute))
		}
		l, err := c.Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rows[l.ID] = l
	}
	return rows
}

// Paging through any sort, in either direction and at any page size, lists
// every row exactly once, in order, with ties and NULLs in the sort key.
func TestPagesListEveryRowOnce(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		st := open(t, url)
		rows := seed(t, st, 47)
		ctx := context.Background()
		for _, sort := range []string{"", "createdAt", "-createdAt", "ownedAt", "-ownedAt"} {
			for _, size := range []int{1, 4, 7, 47, 50} {
				t.Run(fmt.Sprintf("%s/%d", sort, size), func(t *testing.T) {
					seen := map[uuid.UUID]int{}
					var prev *ent.Lead
					var cur *listing.Cursor
					for pages := 0; ; pages++ {
						if pages > len(rows)+1 {
							t.Fatal("paging does not end")
						}
						p, err := leadSpec.Page(sort, cur, size)
						if err != nil {
							t.Fatal(err)
						}
						got, err := st.Reader.Lead.Query().Where(predicate.Lead(p.Apply)).Limit(p.Limit).All(ctx)
						if err != nil {
							t.Fatal(err)
						}
						for _, l := range got {
							seen[l.ID]++
							if prev != nil && !inOrder(sort, prev, l) {
								t.Fatalf("%v listed after %v", l, prev)
							}
							prev = l
						}
						if cur = p.Next(got); cur == nil {
							break
						}
					}
					if len(seen) != len(rows) {
						t.Fatalf("%d rows listed, want %d", len(seen), len(rows))
					}
					for id, n := range seen {
						if n != 1 {
							t.Fatalf("row %s listed %d times", id, n)
						}
					}
				})
			}
		}
	})
}

// inOrder reports whether b may follow a in the given sort: by the key
// (values first, NULLs last whatever the direction), then by id.
func inOrder(sort string, a, b *ent.Lead) bool {
	desc := strings.HasPrefix(sort, "-") || sort == ""
	var av, bv *time.Time
	if strings.HasSuffix(sort, "ownedAt") {
		av, bv = a.OwnedAt, b.OwnedAt
	} else {
		av, bv = &a.CreatedAt, &b.CreatedAt
	}
	switch {
	case av == nil && bv != nil:
		return false
	case av != nil && bv == nil:
		return true
	case av != nil && !av.Equal(*bv):
		return av.Before(*bv) != desc
	}
	c := strings.Compare(a.ID.String(), b.ID.String())
	return c != 0 && (c < 0) != desc
}

// A cursor is refused when it was issued by another operation, mangled,
// or made for another sort order of the same list; an unknown sort key is
// refused too.
func TestCursorsAreBoundAndChecked(t *testing.T) {
	codec := page.NewCodec([]byte("0123456789abcdef0123456789abcdef"))
	leads := page.WithOperation(context.Background(), "listLeads")
	customers := page.WithOperation(context.Background(), "listCustomers")
	c := &listing.Cursor{Sort: "ownedAt", At: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), ID: uuid.New()}
	s := listing.Encode(leads, codec, c)

	got, err := listing.Decode(leads, codec, s)
	if err != nil || *got != *c {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if none, err := listing.Decode(leads, codec, nil); none != nil || err != nil {
		t.Fatalf("no cursor: %+v, %v", none, err)
	}
	tampered := []byte(*s)
	tampered[3] ^= 1
	for name, tc := range map[string]struct {
		ctx    context.Context
		cursor string
	}{
		"other operation": {customers, *s},
		"tampered":        {leads, string(tampered)},
		"garbage":         {leads, "bm90LWEtY3Vyc29y"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := listing.Decode(tc.ctx, codec, &tc.cursor)
			var ae *apperr.Error
			if !errors.As(err, &ae) || ae.Code != "invalid_cursor" {
				t.Fatalf("err %v, want invalid_cursor", err)
			}
		})
	}

	for name, tc := range map[string]struct {
		sort  string
		c     *listing.Cursor
		field string
	}{
		"other sort":        {"-ownedAt", c, "query.cursor"},
		"default vs named":  {"-createdAt", &listing.Cursor{ID: c.ID}, "query.cursor"},
		"null on not null":  {"createdAt", &listing.Cursor{Sort: "createdAt", Null: true, ID: c.ID}, "query.cursor"},
		"unknown sort":      {"name", nil, "query.sort"},
		"sort on id order":  {"", nil, ""},
		"sort on id order2": {"createdAt", nil, "query.sort"},
	} {
		t.Run(name, func(t *testing.T) {
			var err error
			if strings.HasPrefix(name, "sort on id order") {
				_, err = listing.ByID(lead.FieldID, func(l *ent.Lead) uuid.UUID { return l.ID }, false).Page(tc.sort, tc.c, 10)
			} else {
				_, err = leadSpec.Page(tc.sort, tc.c, 10)
			}
			var ae *apperr.Error
			if tc.field == "" {
				if err != nil {
					t.Fatalf("err %v, want none", err)
				}
				return
			}
			if !errors.As(err, &ae) || ae.Kind != apperr.Invalid || len(ae.Fields) != 1 || ae.Fields[0].Field != tc.field {
				t.Fatalf("err %#v, want Invalid on %s", err, tc.field)
			}
		})
	}
}

// A list ordered by id alone pages through every row once, both ways.
func TestByIDPages(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		st := open(t, url)
		rows := seed(t, st, 23)
		ctx := context.Background()
		for _, desc := range []bool{false, true} {
			spec := listing.ByID(lead.FieldID, func(l *ent.Lead) uuid.UUID { return l.ID }, desc)
			var cur *listing.Cursor
			var ids []string
			for {
				p, err := spec.Page("", cur, 5)
				if err != nil {
					t.Fatal(err)
				}
				got, err := st.Reader.Lead.Query().Where(predicate.Lead(p.Apply)).Limit(p.Limit).All(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range got {
					ids = append(ids, l.ID.String())
				}
				if cur = p.Next(got); cur == nil {
					break
				}
			}
			if len(ids) != len(rows) {
				t.Fatalf("desc=%v: %d rows, want %d", desc, len(ids), len(rows))
			}
			for i := 1; i < len(ids); i++ {
				if (ids[i-1] < ids[i]) == desc {
					t.Fatalf("desc=%v: %s before %s", desc, ids[i-1], ids[i])
				}
			}
		}
	})
}

// Cursors in the shapes the hand-written codecs issued (records with an
// explicit empty sort and a zero time in the null tail, follow-ups with
// time and id, id-only lists) decode to the same positions.
func TestOldCursorShapesDecode(t *testing.T) {
	id := uuid.MustParse("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for name, tc := range map[string]struct {
		json string
		want listing.Cursor
	}{
		"records":       {`{"s":"","t":"2026-01-02T03:04:05Z","i":"` + id.String() + `"}`, listing.Cursor{At: at, ID: id}},
		"records null":  {`{"s":"ownedAt","t":"0001-01-01T00:00:00Z","i":"` + id.String() + `","n":true}`, listing.Cursor{Sort: "ownedAt", ID: id, Null: true}},
		"follow-ups":    {`{"t":"2026-01-02T03:04:05Z","i":"` + id.String() + `"}`, listing.Cursor{At: at, ID: id}},
		"id-only lists": {`{"i":"` + id.String() + `"}`, listing.Cursor{ID: id}},
	} {
		t.Run(name, func(t *testing.T) {
			var got listing.Cursor
			if err := json.Unmarshal([]byte(tc.json), &got); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	// And the id-only shape is still what id lists issue.
	raw, _ := json.Marshal(listing.Cursor{ID: id})
	if string(raw) != `{"i":"`+id.String()+`"}` {
		t.Fatalf("id cursor encodes as %s", raw)
	}
}

// Declared filters narrow the list; those not asked for (nil) add nothing.
func TestFilters(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		st := open(t, url)
		rows := seed(t, st, 30)
		ctx := context.Background()
		base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
		from, to := base.Add(time.Hour), base.Add(2*time.Hour)
		name := "l7"
		var none *string
		for label, tc := range map[string]struct {
			filters []listing.Filter
			want    func(*ent.Lead) bool
		}{
			"none asked": {[]listing.Filter{listing.Eq(lead.FieldName, none), listing.Range(lead.FieldCreatedAt, nil, nil)},
				func(*ent.Lead) bool { return true }},
			"eq":   {[]listing.Filter{listing.Eq(lead.FieldName, &name)}, func(l *ent.Lead) bool { return l.Name == name }},
			"from": {[]listing.Filter{listing.Range(lead.FieldCreatedAt, &from, nil)}, func(l *ent.Lead) bool { return !l.CreatedAt.Before(from) }},
			"from to": {[]listing.Filter{listing.Range(lead.FieldCreatedAt, &from, &to)},
				func(l *ent.Lead) bool { return !l.CreatedAt.Before(from) && l.CreatedAt.Before(to) }},
		} {
			t.Run(label, func(t *testing.T) {
				got, err := st.Reader.Lead.Query().Where(predicate.Lead(listing.Where(tc.filters...))).IDs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				for _, l := range rows {
					if tc.want(l) {
						want++
					}
				}
				if len(got) != want || want == 0 {
					t.Fatalf("%d rows, want %d (> 0)", len(got), want)
				}
				for _, id := range got {
					if !tc.want(rows[id]) {
						t.Fatalf("row %+v does not match", rows[id])
					}
				}
			})
		}
	})
}
