package authz_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/predicate"
	entuser "github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// scopeSeeds are the worlds the property test builds; a failure names its
// seed, and the same seed builds the same world again.
var scopeSeeds = []uint64{1, 20261207, 0x5eed}

// maskFields are the fields whose masking the test compares.
var maskFields = []string{"name", "phone", "email", "tags", records.FieldFollowUps}

// TestScopeSQLAgreesWithMemory builds worlds of teams several levels deep,
// users of every role, pools with and without member teams, managers and
// visibleFields, API keys bound to each pool and to none, and leads,
// customers and contacts owned by anyone, pooled in any pool, frozen or
// invalid. For every principal and record it asserts that the SQL
// predicate and the in-memory answer agree on whether he sees the record
// and on every field he sees masked, and that the one-pool scopes the
// pool operations and edit checks build answer as the full one.
func TestScopeSQLAgreesWithMemory(t *testing.T) {
	for _, seed := range scopeSeeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, url string) {
				ctx := context.Background()
				st, err := store.Open(ctx, url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = st.Close() })
				if err := st.Migrate(ctx); err != nil {
					t.Fatal(err)
				}
				t.Logf("seed %d", seed)
				w := buildWorld(t, ctx, st.Client, rand.New(rand.NewPCG(seed, seed)))
				pools := pool.NewService(st, clock.Real{}, nil)
				for _, pl := range w.pools {
					sp := pool.ScopePool(pl)
					members, err := st.Client.User.Query().Where(predicate.User(authz.Members(sp))).IDs(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, u := range w.users {
						if in := slices.Contains(members, u.ID); in != authz.IsMember(auth.UserPrincipal(u), sp) {
							t.Errorf("user %s (team path %q), pool %q members %v: SQL member = %v, IsMember = %v",
								u.ID, u.TeamPath, pl.Name, pl.MemberTeamIds, in, !in)
						}
					}
				}
				// The directory: the users each principal may look up.
				for _, p := range w.principals {
					reach := authz.UserReach(p)
					listed, err := st.Client.User.Query().Where(predicate.User(reach.Users())).IDs(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, u := range w.users {
						if in := slices.Contains(listed, u.ID); in != reach.Admits(u.ID, u.TeamID, u.TeamPath) {
							t.Errorf("%s, user %s (team path %q): SQL lists = %v, Admits = %v", describe(p), u.ID, u.TeamPath, in, !in)
						}
					}
				}
				pairs := 0
				for _, p := range w.principals {
					for _, kind := range []string{"lead", "customer"} {
						sc, err := pools.Scope(ctx, p, kind)
						if err != nil {
							t.Fatal(err)
						}
						pairs += w.check(t, ctx, st.Client, p, kind, sc)
					}
				}
				t.Logf("%d principals, %d (principal, record) pairs, %v", len(w.principals), pairs, w.cases)
				// A world that never exercised a case proves nothing of it.
				for _, c := range []string{"owned, seen by another", "owned, unseen", "pooled, seen", "pooled, unseen", "masked", "editable", "supervised"} {
					if w.cases[c] == 0 {
						t.Errorf("no pair was %s", c)
					}
				}
			})
		})
	}
}

// world is what one seed built.
type world struct {
	users      map[uuid.UUID]*ent.User
	pools      map[uuid.UUID]*ent.Pool
	principals []*auth.Principal
	leads      []*ent.Lead
	customers  []*ent.Customer
	contacts   []*ent.Contact
	// cases counts the pairs of each kind the checks met.
	cases map[string]int
}

func buildWorld(t *testing.T, ctx context.Context, c *ent.Client, rng *rand.Rand) *world {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	w := &world{users: map[uuid.UUID]*ent.User{}, pools: map[uuid.UUID]*ent.Pool{}, cases: map[string]int{}}

	// Teams: a root, two children, a grandchild and a great-grandchild.
	var teams []*ent.Team
	newTeam := func(name string, parent *ent.Team) *ent.Team {
		id := newID(rng)
		path := "/" + id.String() + "/"
		q := c.Team.Create().SetID(id).SetName(name)
		if parent != nil {
			path = parent.Path + id.String() + "/"
			q.SetParentID(parent.ID)
		}
		tm, err := q.SetPath(path).Save(ctx)
		must(err)
		teams = append(teams, tm)
		return tm
	}
	root := newTeam("root", nil)
	a := newTeam("a", root)
	newTeam("b", root)
	a1 := newTeam("a1", a)
	newTeam("a1x", a1)

	n := 0
	newUser := func(role string, tm *ent.Team) {
		n++
		q := c.User.Create().SetID(newID(rng)).SetEmail(fmt.Sprintf("u%d@example.com", n)).
			SetName(fmt.Sprintf("%s %d", role, n)).SetRole(entuser.Role(role)).SetPasswordHash("x")
		if tm != nil {
			q.SetTeamID(tm.ID).SetTeamPath(tm.Path)
		}
		u, err := q.Save(ctx)
		must(err)
		w.users[u.ID] = u
		w.principals = append(w.principals, auth.UserPrincipal(u))
	}
	for _, tm := range teams {
		newUser(auth.RoleRep, tm)
		newUser(auth.RoleSupervisor, tm)
	}
	newUser(auth.RoleAdmin, nil)
	newUser(auth.RoleAuditor, a)
	newUser(auth.RoleRep, nil)
	newUser(auth.RoleSupervisor, nil)
	var userIDs []uuid.UUID
	for _, p := range w.principals {
		userIDs = append(userIDs, p.ID)
	}

	// Pools: per kind an open default one, and three with random member
	// teams, managers and visible fields.
	visibleChoices := [][]string{nil, {}, {"name", "phone"}, {"email", records.FieldFollowUps, "tags"}}
	poolsOf := map[string][]uuid.UUID{}
	for _, kind := range []string{"lead", "customer"} {
		for i := range 4 {
			q := c.Pool.Create().SetID(newID(rng)).SetKind(entpool.Kind(kind)).SetName(fmt.Sprintf("%s %d", kind, i))
			if i > 0 {
				var members, managers []uuid.UUID
				for _, tm := range pick(rng, teams, rng.IntN(3)) {
					members = append(members, tm.ID)
				}
				managers = append(managers, pick(rng, userIDs, rng.IntN(3))...)
				q.SetMemberTeamIds(members).SetManagerIds(managers)
				if v := visibleChoices[rng.IntN(len(visibleChoices))]; v != nil {
					q.SetVisibleFields(v)
				}
			}
			pl, err := q.Save(ctx)
			must(err)
			w.pools[pl.ID] = pl
			poolsOf[kind] = append(poolsOf[kind], pl.ID)
			w.principals = append(w.principals, &auth.Principal{Type: auth.ActorAPIKey, ID: newID(rng), Scopes: auth.Scopes, PoolID: &pl.ID})
		}
	}
	w.principals = append(w.principals,
		&auth.Principal{Type: auth.ActorAPIKey, ID: newID(rng), Scopes: auth.Scopes},
		&auth.Principal{Type: auth.ActorSystem, Role: auth.RoleAdmin},
		nil)

	// Records: owned by anyone (or pooled), in any pool of their kind,
	// some frozen, some invalid; a contact on most customers.
	state := func() (owner *uuid.UUID, frozen *time.Time, invalid bool) {
		if rng.IntN(5) >= 2 {
			id := userIDs[rng.IntN(len(userIDs))]
			owner = &id
			if rng.IntN(5) == 0 {
				f := time.Now().Add(time.Duration(1+rng.IntN(72)) * time.Hour)
				frozen = &f
			}
		}
		return owner, frozen, rng.IntN(5) == 0
	}
	leadPools, customerPools := poolsOf["lead"], poolsOf["customer"]
	for i := range 40 {
		owner, frozen, invalid := state()
		q := c.Lead.Create().SetID(newID(rng)).SetName(fmt.Sprintf("lead %d", i)).SetPoolID(leadPools[rng.IntN(len(leadPools))]).
			SetNillableOwnerID(owner).SetNillableFrozenUntil(frozen)
		if invalid {
			q.SetStatus("invalid")
		}
		must(q.Exec(ctx))
	}
	for i := range 40 {
		owner, frozen, invalid := state()
		q := c.Customer.Create().SetID(newID(rng)).SetName(fmt.Sprintf("customer %d", i)).SetPoolID(customerPools[rng.IntN(len(customerPools))]).
			SetNillableOwnerID(owner).SetNillableFrozenUntil(frozen)
		if invalid {
			q.SetStatus("invalid")
		}
		cu, err := q.Save(ctx)
		must(err)
		if rng.IntN(4) > 0 {
			must(c.Contact.Create().SetID(newID(rng)).SetCustomerID(cu.ID).SetName(fmt.Sprintf("contact %d", i)).Exec(ctx))
		}
	}

	// The in-memory answers are computed from the rows as loaded.
	var err error
	w.leads, err = c.Lead.Query().All(ctx)
	must(err)
	w.customers, err = c.Customer.Query().All(ctx)
	must(err)
	w.contacts, err = c.Contact.Query().All(ctx)
	must(err)
	return w
}

// row is a record as authz sees it, with its owner's team path.
func (w *world) row(owner *uuid.UUID, poolID uuid.UUID) authz.Row {
	r := authz.Row{OwnerID: owner, PoolID: poolID}
	if owner != nil {
		r.OwnerTeamPath = w.users[*owner].TeamPath
	}
	return r
}

// check compares p's SQL and in-memory answers on every record of kind
// (and, for customers, every contact); it returns the pairs compared.
func (w *world) check(t *testing.T, ctx context.Context, c *ent.Client, p *auth.Principal, kind string, sc authz.Scope) int {
	t.Helper()
	cols := records.LeadColumns
	type rec struct {
		id  uuid.UUID
		row authz.Row
	}
	var recs []rec
	if kind == "lead" {
		for _, l := range w.leads {
			recs = append(recs, rec{l.ID, w.row(l.OwnerID, l.PoolID)})
		}
	} else {
		cols = records.CustomerColumns
		for _, cu := range w.customers {
			recs = append(recs, rec{cu.ID, w.row(cu.OwnerID, cu.PoolID)})
		}
	}
	// ids runs one query per principal and question: the records the
	// predicate admits.
	ids := func(cols authz.Columns, where func(*sql.Selector)) map[uuid.UUID]bool {
		t.Helper()
		var got []uuid.UUID
		var err error
		switch {
		case cols.Parent != nil:
			got, err = c.Contact.Query().Where(predicate.Contact(where)).IDs(ctx)
		case kind == "lead":
			got, err = c.Lead.Query().Where(predicate.Lead(where)).IDs(ctx)
		default:
			got, err = c.Customer.Query().Where(predicate.Customer(where)).IDs(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		set := map[uuid.UUID]bool{}
		for _, id := range got {
			set[id] = true
		}
		return set
	}
	unmasked := func(cols authz.Columns, field string) func(*sql.Selector) {
		return func(sel *sql.Selector) {
			sc.Predicate(cols)(sel)
			if u := sc.Unmasked(sel, cols, field); u != nil {
				sel.Where(u)
			}
		}
	}
	who := describe(p)

	visible := ids(cols, sc.Predicate(cols))
	for _, r := range recs {
		if got := sc.Sees(r.row); got != visible[r.id] {
			t.Errorf("%s, %s %s: Sees = %v, SQL = %v", who, kind, w.describeRow(r.row), got, visible[r.id])
		}
	}
	// An owned-only entity (no pool column, as reclaim warnings): the
	// leads table read through its owner column alone.
	if kind == "lead" {
		ownedOnly := authz.Columns{Owner: cols.Owner}
		seen := ids(cols, sc.Predicate(ownedOnly))
		for _, r := range recs {
			row := authz.Row{OwnerID: r.row.OwnerID, OwnerTeamPath: r.row.OwnerTeamPath}
			if got := sc.Sees(row); got != seen[r.id] {
				t.Errorf("%s, owned-only row %s: Sees = %v, SQL = %v", who, w.describeRow(r.row), got, seen[r.id])
			}
		}
	}
	for _, field := range maskFields {
		shown := ids(cols, unmasked(cols, field))
		hidden := ids(cols, func(sel *sql.Selector) {
			sc.Predicate(cols)(sel)
			if m := sc.Masked(sel, cols, field); m != nil {
				sel.Where(m)
			} else {
				sel.Where(sql.False())
			}
		})
		for _, r := range recs {
			want := sc.Sees(r.row) && !sc.Masks(field, r.row)
			if shown[r.id] != want || shown[r.id] == hidden[r.id] && visible[r.id] {
				t.Errorf("%s, %s %s: %s unmasked in SQL = %v, masked in SQL = %v, unmasked in memory = %v", who, kind, w.describeRow(r.row), field, shown[r.id], hidden[r.id], want)
			}
			// What the views apply to a pooled row (its pool's masking)
			// is what the scope answers.
			if sc.Sees(r.row) && r.row.OwnerID == nil {
				if view := authz.MaskingFor(p, pool.ScopePool(w.pools[r.row.PoolID])).Hides(field); view != sc.Masks(field, r.row) {
					t.Errorf("%s, %s %s: view masks %s = %v, scope = %v", who, kind, w.describeRow(r.row), field, view, !view)
				}
			}
		}
	}
	for _, r := range recs {
		w.count(sc, r.row)
		// The pool operations and edit checks build a scope over the
		// record's pool alone: it must answer as the full one.
		one := authz.NewScope(p, []authz.Pool{pool.ScopePool(w.pools[r.row.PoolID])})
		if one.Sees(r.row) != sc.Sees(r.row) || one.CanEdit(r.row) != sc.CanEdit(r.row) {
			t.Errorf("%s, %s %s: one-pool scope sees %v edits %v, full scope sees %v edits %v", who, kind, w.describeRow(r.row),
				one.Sees(r.row), one.CanEdit(r.row), sc.Sees(r.row), sc.CanEdit(r.row))
		}
		// Whoever may edit, manage or claim a record may see it.
		if sc.CanEdit(r.row) && !sc.Sees(r.row) {
			t.Errorf("%s, %s %s: may edit but not see", who, kind, w.describeRow(r.row))
		}
		if r.row.OwnerID == nil && (sc.MayClaim(r.row.PoolID) || sc.ManagesPool(r.row.PoolID)) && !sc.Sees(r.row) {
			t.Errorf("%s, %s %s: may claim or manage but not see", who, kind, w.describeRow(r.row))
		}
	}
	pairs := len(recs)
	if kind != "customer" {
		return pairs
	}

	// Contacts inherit their customer's scope and masking.
	parent := map[uuid.UUID]authz.Row{}
	for _, r := range recs {
		parent[r.id] = r.row
	}
	contacts := records.ContactColumns
	visible = ids(contacts, sc.Predicate(contacts))
	shown := ids(contacts, unmasked(contacts, "phone"))
	for _, ct := range w.contacts {
		row := parent[ct.CustomerID]
		if sc.Sees(row) != visible[ct.ID] {
			t.Errorf("%s, contact of customer %s: Sees = %v, SQL = %v", who, w.describeRow(row), sc.Sees(row), visible[ct.ID])
		}
		if want := sc.Sees(row) && !sc.Masks("phone", row); shown[ct.ID] != want {
			t.Errorf("%s, contact of customer %s: phone unmasked in SQL = %v, in memory = %v", who, w.describeRow(row), shown[ct.ID], want)
		}
	}
	return pairs + len(w.contacts)
}

// count records which case a pair is.
func (w *world) count(sc authz.Scope, r authz.Row) {
	sees := sc.Sees(r)
	switch {
	case r.OwnerID != nil && sees && !sc.Owns(r):
		w.cases["owned, seen by another"]++
	case r.OwnerID != nil && !sees:
		w.cases["owned, unseen"]++
	case r.OwnerID == nil && sees:
		w.cases["pooled, seen"]++
	case r.OwnerID == nil:
		w.cases["pooled, unseen"]++
	}
	if sc.Masking(r).On() {
		w.cases["masked"]++
	}
	if sc.CanEdit(r) {
		w.cases["editable"]++
	}
	if sc.ManagesOwner(r) && !sc.All() && !sc.Owns(r) {
		w.cases["supervised"]++
	}
}

func describe(p *auth.Principal) string {
	switch {
	case p == nil:
		return "no principal"
	case p.Type == auth.ActorAPIKey && p.PoolID != nil:
		return "API key bound to pool " + p.PoolID.String()
	case p.Type == auth.ActorAPIKey:
		return "unbound API key"
	case p.Type != auth.ActorUser:
		return string(p.Type)
	}
	return fmt.Sprintf("%s %s (team path %q)", p.Role, p.ID, p.TeamPath)
}

func (w *world) describeRow(r authz.Row) string {
	pl := w.pools[r.PoolID]
	pool := fmt.Sprintf("pool %q members %v managers %v visible %v", pl.Name, pl.MemberTeamIds, pl.ManagerIds, pl.VisibleFields)
	if r.OwnerID == nil {
		return "pooled in " + pool
	}
	u := w.users[*r.OwnerID]
	return fmt.Sprintf("owned by %s %s (team path %q) in %s", u.Role, u.ID, u.TeamPath, pool)
}

// pick returns up to n distinct elements of xs.
func pick[T any](rng *rand.Rand, xs []T, n int) []T {
	idx := rng.Perm(len(xs))
	out := make([]T, 0, n)
	for _, i := range idx[:min(n, len(xs))] {
		out = append(out, xs[i])
	}
	return out
}

// newID draws a version 4 UUID from rng, so that one seed always builds
// the same world.
func newID(rng *rand.Rand) uuid.UUID {
	var id uuid.UUID
	for i := range id {
		id[i] = byte(rng.UintN(256))
	}
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	return id
}
