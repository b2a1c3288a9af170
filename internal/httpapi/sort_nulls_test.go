package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/testdb"
)

// Sorting by a key some records lack (lastFollowUpAt) lists every record
// exactly once: those with the key in its order, then the rest by id,
// nulls last in both directions, whatever the page size.
func TestSortByNullableKeyListsEveryRow(t *testing.T) {
	testdb.Each(t, func(t *testing.T, dbURL string) {
		w := newRecordsWorld(t, dbURL)
		var ids []uuid.UUID
		for i := range 9 {
			m := w.repA.Do("POST", "/v1/leads", map[string]any{"name": fmt.Sprintf("排序%d", i)}).Expect(201).Map()
			ids = append(ids, uuid.MustParse(m["id"].(string)))
		}
		// Four leads have a follow-up date, two of them the same one (the
		// id breaks the tie); five have none.
		base := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
		at := map[uuid.UUID]time.Time{ids[0]: base.Add(2 * time.Hour), ids[3]: base, ids[5]: base.Add(time.Hour), ids[7]: base.Add(time.Hour)}
		ctx := context.Background()
		for id, ts := range at {
			w.env.App.Store.Client.Lead.UpdateOneID(id).SetLastFollowUpAt(ts).ExecX(ctx)
		}
		want := func(desc bool) []string {
			valued, nulls := []uuid.UUID{}, []uuid.UUID{}
			for _, id := range ids {
				if _, ok := at[id]; ok {
					valued = append(valued, id)
				} else {
					nulls = append(nulls, id)
				}
			}
			sign := 1
			if desc {
				sign = -1
			}
			slices.SortFunc(valued, func(a, b uuid.UUID) int {
				if c := at[a].Compare(at[b]); c != 0 {
					return sign * c
				}
				return sign * strings.Compare(a.String(), b.String())
			})
			slices.SortFunc(nulls, func(a, b uuid.UUID) int { return sign * strings.Compare(a.String(), b.String()) })
			var out []string
			for _, id := range append(valued, nulls...) {
				out = append(out, id.String())
			}
			return out
		}
		for _, sort := range []string{"lastFollowUpAt", "-lastFollowUpAt"} {
			for _, limit := range []int{1, 2, 3, 4, 5, 50} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					if pages > 20 {
						t.Fatalf("sort %s limit %d: too many pages", sort, limit)
					}
					q := fmt.Sprintf("/v1/leads?limit=%d&sort=%s", limit, url.QueryEscape(sort))
					if cursor != "" {
						q += "&cursor=" + cursor
					}
					var page struct {
						Items      []map[string]any
						NextCursor *string
					}
					w.repA.Do("GET", q, nil).Expect(200).JSON(&page)
					for _, it := range page.Items {
						got = append(got, it["id"].(string))
					}
					if page.NextCursor == nil {
						break
					}
					cursor = *page.NextCursor
				}
				if exp := want(strings.HasPrefix(sort, "-")); !slices.Equal(got, exp) {
					t.Errorf("sort %s limit %d:\n got %v\nwant %v", sort, limit, got, exp)
				}
			}
		}
		// A cursor from the null tail of one sort is no cursor for another.
		var page struct{ NextCursor *string }
		w.repA.Do("GET", "/v1/leads?limit=8&sort=lastFollowUpAt", nil).Expect(200).JSON(&page)
		w.repA.Do("GET", "/v1/leads?sort=createdAt&cursor="+*page.NextCursor, nil).ExpectProblem(400, "validation_failed")
	})
}
