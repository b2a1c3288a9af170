package org_test

import (
	"errors"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

// anyVersion is If-Match: * (versions are tested over HTTP).
var anyVersion = "*"

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func world(t *testing.T, url string) *testkit.World {
	t.Helper()
	return testkit.New(t, url, app.Config{})
}

// code is the apperr code of err ("" for nil or a plain error); a
// validation error adds its first field's reason: validation_failed/unknown_team.
func code(err error) string {
	var e *apperr.Error
	if !errors.As(err, &e) {
		return ""
	}
	if len(e.Fields) > 0 {
		return e.Code + "/" + e.Fields[0].Code
	}
	return e.Code
}

func TestCreateUserRules(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		svc := w.App.Org
		taken := w.User(auth.RoleRep, nil)
		missing := uuid.Must(uuid.NewV7())
		cases := []struct {
			name string
			in   org.NewUser
			want string
		}{
			{"email taken, other case", org.NewUser{Email: strings.ToUpper(taken.Email), Name: "x", Role: auth.RoleRep, Password: testkit.Password}, "email_taken"},
			{"unknown team", org.NewUser{Email: w.Unique("u") + "@example.com", Name: "x", Role: auth.RoleRep, TeamID: &missing, Password: testkit.Password}, "validation_failed/unknown_team"},
			{"common password", org.NewUser{Email: w.Unique("u") + "@example.com", Name: "x", Role: auth.RoleRep, Password: "password123"}, "weak_password/common"},
			{"password is the email", org.NewUser{Email: "someone.long@example.com", Name: "x", Role: auth.RoleRep, Password: "someone.long@example.com"}, "weak_password/equals_email"},
		}
		for _, c := range cases {
			before, err := w.Store.Client.User.Query().Count(w.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, err = svc.CreateUser(w.Ctx, c.in)
			if got := code(err); got != c.want {
				t.Errorf("%s: got %q (%v), want %q", c.name, got, err, c.want)
			}
			after, err := w.Store.Client.User.Query().Count(w.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			if after != before {
				t.Errorf("%s: a refused create changed the user count %d → %d", c.name, before, after)
			}
		}
	})
}

// TestUserScope checks the directory each role sees, at the service.
func TestUserScope(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		root := w.Team("root", nil)
		east := w.Team("east", &root.ID)
		west := w.Team("west", &root.ID)
		sup, supP := w.Actor(auth.RoleSupervisor, &east.ID)
		rep, repP := w.Actor(auth.RoleRep, &east.ID)
		mate := w.User(auth.RoleRep, &east.ID)
		other := w.User(auth.RoleRep, &west.ID)
		_, rootSupP := w.Actor(auth.RoleSupervisor, &root.ID)
		_, auditorP := w.Actor(auth.RoleAuditor, nil)
		all := []*ent.User{sup, rep, mate, other}
		cases := []struct {
			name string
			p    *auth.Principal
			sees []*ent.User
		}{
			{"rep: himself and his team", repP, []*ent.User{sup, rep, mate}},
			{"supervisor: his subtree", supP, []*ent.User{sup, rep, mate}},
			{"supervisor of the root: everyone below", rootSupP, all},
			{"auditor: everyone", auditorP, all},
		}
		for _, c := range cases {
			for _, u := range all {
				_, err := w.App.Org.GetUser(w.Ctx, c.p, u.ID)
				want := slices.Contains(c.sees, u)
				if got := err == nil; got != want {
					t.Errorf("%s: GetUser(%s) visible=%v (%v), want %v", c.name, u.Name, got, err, want)
				}
				if err != nil && code(err) != "not_found" {
					t.Errorf("%s: hidden user answered %v, want not_found", c.name, err)
				}
			}
			listed, _, err := w.App.Org.ListUsers(w.Ctx, c.p, org.UserFilter{Limit: 500})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range all {
				in := slices.ContainsFunc(listed, func(x *ent.User) bool { return x.ID == u.ID })
				if in != slices.Contains(c.sees, u) {
					t.Errorf("%s: ListUsers has %s = %v", c.name, u.Name, in)
				}
			}
		}
	})
}

// TestMoveTeamReroots moves a subtree and checks every path below it, of
// teams and of their members.
func TestMoveTeamReroots(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		a := w.Team("a", nil)
		b := w.Team("b", nil)
		a1 := w.Team("a1", &a.ID)
		a11 := w.Team("a11", &a1.ID)
		u := w.User(auth.RoleRep, &a11.ID)
		if _, err := w.App.Org.UpdateTeam(w.Ctx, a1.ID, &anyVersion, org.TeamPatch{ParentID: patch.Value(b.ID)}); err != nil {
			t.Fatal(err)
		}
		wantA1 := b.Path + a1.ID.String() + "/"
		for id, want := range map[uuid.UUID]string{a1.ID: wantA1, a11.ID: wantA1 + a11.ID.String() + "/"} {
			got, err := w.App.Org.GetTeam(w.Ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got.Path != want {
				t.Errorf("team %s path %q, want %q", got.Name, got.Path, want)
			}
		}
		got, err := w.Store.Client.User.Get(w.Ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if want := wantA1 + a11.ID.String() + "/"; got.TeamPath != want {
			t.Errorf("member path %q, want %q", got.TeamPath, want)
		}
		// Under its own descendant: refused, nothing moves.
		_, err = w.App.Org.UpdateTeam(w.Ctx, a1.ID, &anyVersion, org.TeamPatch{ParentID: patch.Value(a11.ID)})
		if code(err) != "team_cycle" {
			t.Fatalf("move under a descendant: %v, want team_cycle", err)
		}
		// To the root.
		if _, err := w.App.Org.UpdateTeam(w.Ctx, a1.ID, &anyVersion, org.TeamPatch{ParentID: patch.Null[uuid.UUID]()}); err != nil {
			t.Fatal(err)
		}
		moved, err := w.App.Org.GetTeam(w.Ctx, a1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if moved.Path != "/"+a1.ID.String()+"/" || moved.ParentID != nil {
			t.Errorf("moved to the root: path %q parent %v", moved.Path, moved.ParentID)
		}
	})
}

// TestConcurrentMovesMakeNoCycle moves two teams under each other at once,
// many times: at most one move of each pair wins and the tree stays a tree
// (every path is its parent's path plus its id).
func TestConcurrentMovesMakeNoCycle(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		for range 8 {
			x := w.Team("x", nil)
			y := w.Team("y", nil)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, move := range [][2]uuid.UUID{{x.ID, y.ID}, {y.ID, x.ID}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = w.App.Org.UpdateTeam(w.Ctx, move[0], &anyVersion, org.TeamPatch{ParentID: patch.Value(move[1])})
				}()
			}
			wg.Wait()
			wins := 0
			for _, err := range errs {
				switch {
				case err == nil:
					wins++
				case code(err) != "team_cycle":
					t.Fatalf("concurrent move: %v", err)
				}
			}
			if wins != 1 {
				t.Fatalf("%d of two opposite moves won, want exactly 1", wins)
			}
		}
		teams, err := w.Store.Client.Team.Query().All(w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		byID := map[uuid.UUID]*ent.Team{}
		for _, tm := range teams {
			byID[tm.ID] = tm
		}
		for _, tm := range teams {
			want := "/" + tm.ID.String() + "/"
			if tm.ParentID != nil {
				want = byID[*tm.ParentID].Path + tm.ID.String() + "/"
			}
			if tm.Path != want {
				t.Errorf("team %s: path %q, want %q", tm.ID, tm.Path, want)
			}
		}
	})
}

// TestLastAdminSurvivesConcurrentDemotions has two admins demote each
// other at once: one demotion must fail with last_admin.
func TestLastAdminSurvivesConcurrentDemotions(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		for range 4 {
			// Leave exactly two active admins.
			if _, err := w.Store.Client.User.Update().Where(user.RoleEQ(user.RoleAdmin)).SetActive(false).Save(w.Ctx); err != nil {
				t.Fatal(err)
			}
			a, aP := w.Actor(auth.RoleAdmin, nil)
			b, bP := w.Actor(auth.RoleAdmin, nil)
			rep := auth.RoleRep
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, pair := range []struct {
				p      *auth.Principal
				target uuid.UUID
			}{{aP, b.ID}, {bP, a.ID}} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, errs[i] = w.App.Org.UpdateUser(w.Ctx, pair.p, pair.target, &anyVersion, org.UserPatch{Role: &rep})
				}()
			}
			wg.Wait()
			n, err := w.Store.Client.User.Query().Where(user.RoleEQ(user.RoleAdmin), user.Active(true)).Count(w.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n < 1 {
				t.Fatalf("no active admin left (errors %v)", errs)
			}
			refused := 0
			for _, err := range errs {
				if code(err) == "last_admin" {
					refused++
				} else if err != nil {
					t.Fatalf("demotion: %v", err)
				}
			}
			if refused != 1 {
				t.Fatalf("%d demotions refused, want 1 (errors %v)", refused, errs)
			}
		}
	})
}
