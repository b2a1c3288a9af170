package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// The declared filters of listUsers and listTeams narrow the list, and
// paging a filtered list one row at a time lists each match once.
func TestUserAndTeamListFilters(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		env := apitest.New(t, databaseURL)
		_, adminC := env.User(auth.RoleAdmin, nil)
		root := env.Team(env.Unique("root"), nil)
		child := env.Team(env.Unique("child"), &root.ID)
		var inTeam []string
		for range 3 {
			u, _ := env.User(auth.RoleRep, &child.ID)
			inTeam = append(inTeam, u.ID.String())
		}
		sup, _ := env.User(auth.RoleSupervisor, &child.ID)
		type item struct {
			ID       string `json:"id"`
			Role     string `json:"role"`
			ParentID *string
		}
		list := func(path string) []item {
			var all []item
			cursor := ""
			for pages := 0; ; pages++ {
				if pages > 20 {
					t.Fatalf("%s: paging does not end", path)
				}
				q := url.Values{"limit": {"1"}}
				if cursor != "" {
					q.Set("cursor", cursor)
				}
				var page struct {
					Items      []item
					NextCursor *string
				}
				adminC.Do("GET", path+"&"+q.Encode(), nil).Expect(http.StatusOK).JSON(&page)
				all = append(all, page.Items...)
				if page.NextCursor == nil {
					return all
				}
				cursor = *page.NextCursor
			}
		}
		ids := func(items []item) []string {
			var out []string
			for _, it := range items {
				out = append(out, it.ID)
			}
			slices.Sort(out)
			return out
		}
		slices.Sort(inTeam)
		if got := ids(list(fmt.Sprintf("/v1/users?teamId=%s&role=rep", child.ID))); !slices.Equal(got, inTeam) {
			t.Fatalf("reps of the team: %v, want %v", got, inTeam)
		}
		if got := ids(list(fmt.Sprintf("/v1/users?teamId=%s&role=supervisor&active=true", child.ID))); !slices.Equal(got, []string{sup.ID.String()}) {
			t.Fatalf("supervisors of the team: %v", got)
		}
		if got := list(fmt.Sprintf("/v1/users?teamId=%s&active=false", child.ID)); len(got) != 0 {
			t.Fatalf("inactive users of the team: %v", got)
		}
		if got := ids(list("/v1/teams?parentId=" + root.ID.String())); !slices.Equal(got, []string{child.ID.String()}) {
			t.Fatalf("children of root: %v", got)
		}
		if got := list("/v1/teams?parentId=" + uuid.NewString()); len(got) != 0 {
			t.Fatalf("children of no team: %v", got)
		}
	})
}
