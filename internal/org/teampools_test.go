package org_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func ptr[T any](v T) *T { return &v }

// A team's default pools must be pools of the right kind; null clears them.
func TestTeamDefaultPoolsAreChecked(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		_, admin := w.Actor(auth.RoleAdmin, nil)
		lp, err := w.App.Pools.CreatePool(w.Ctx, admin, pool.PoolInput{Kind: string(kinds.Lead), Name: ptr("华东线索池")})
		if err != nil {
			t.Fatal(err)
		}
		cp, err := w.App.Pools.CreatePool(w.Ctx, admin, pool.PoolInput{Kind: string(kinds.Customer), Name: ptr("华东公海")})
		if err != nil {
			t.Fatal(err)
		}
		missing := uuid.Must(uuid.NewV7())
		for _, c := range []struct {
			name string
			in   org.DefaultPools
			want string
		}{
			{"unknown lead pool", org.DefaultPools{Lead: &missing}, "validation_failed/unknown_pool"},
			{"customer pool as lead default", org.DefaultPools{Lead: &cp.ID}, "validation_failed/wrong_pool_kind"},
			{"lead pool as customer default", org.DefaultPools{Customer: &lp.ID}, "validation_failed/wrong_pool_kind"},
			{"both right", org.DefaultPools{Lead: &lp.ID, Customer: &cp.ID}, ""},
		} {
			tm, err := w.App.Org.CreateTeam(w.Ctx, org.NewTeam{Name: c.name, DefaultPools: c.in})
			if got := code(err); got != c.want {
				t.Fatalf("%s: got %q (%v), want %q", c.name, got, err, c.want)
			}
			if err != nil {
				continue
			}
			if *tm.DefaultLeadPoolID != lp.ID || *tm.DefaultCustomerPoolID != cp.ID {
				t.Fatalf("created %+v", tm)
			}
			_, err = w.App.Org.UpdateTeam(w.Ctx, tm.ID, &anyVersion, org.TeamPatch{DefaultPools: org.DefaultPoolsPatch{Customer: patch.Value(lp.ID)}})
			if got := code(err); got != "validation_failed/wrong_pool_kind" {
				t.Fatalf("update to a lead pool: %q (%v)", got, err)
			}
			tm, err = w.App.Org.UpdateTeam(w.Ctx, tm.ID, &anyVersion, org.TeamPatch{DefaultPools: org.DefaultPoolsPatch{Lead: patch.Null[uuid.UUID]()}})
			if err != nil {
				t.Fatal(err)
			}
			if tm.DefaultLeadPoolID != nil || tm.DefaultCustomerPoolID == nil || *tm.DefaultCustomerPoolID != cp.ID {
				t.Fatalf("after clearing the lead default: %+v", tm)
			}
		}
	})
}

// Records a rep creates without naming a pool land in his team's default
// pool of the kind, or the nearest ancestor team's, else the global one:
// owned while he is under his cap, pooled there over it. A record of the
// global default pool he returns goes to that pool too; one of another
// pool goes back to its pool. A rep may create into a pool he is a member
// of (pooled), and not into another.
func TestRecordsLandInTheTeamPool(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		w := world(t, url)
		_, admin := w.Actor(auth.RoleAdmin, nil)
		newPool := func(kind kinds.Kind, name string, members ...uuid.UUID) *ent.Pool {
			in := pool.PoolInput{Kind: string(kind), Name: ptr(name)}
			if len(members) > 0 {
				in.MemberTeamIDs = &members
			}
			pl, err := w.App.Pools.CreatePool(w.Ctx, admin, in)
			if err != nil {
				t.Fatal(err)
			}
			return pl
		}
		region := w.Team("华东大区", nil)
		branch := w.Team("上海分公司", &region.ID) // no defaults of its own
		other := w.Team("华南大区", nil)
		leadPool := newPool(kinds.Lead, "华东线索池", region.ID)
		custPool := newPool(kinds.Customer, "华东公海", region.ID)
		foreign := newPool(kinds.Lead, "华南线索池", other.ID)
		if _, err := w.App.Org.UpdateTeam(w.Ctx, region.ID, &anyVersion, org.TeamPatch{DefaultPools: org.DefaultPoolsPatch{
			Lead: patch.Value(leadPool.ID), Customer: patch.Value(custPool.ID)}}); err != nil {
			t.Fatal(err)
		}
		_, rep := w.Actor(auth.RoleRep, &branch.ID, org.Caps{MaxOwnedLeads: ptr(1)})
		_, loner := w.Actor(auth.RoleRep, nil, org.Caps{MaxOwnedLeads: ptr(0)})
		recs := w.App.Records
		globalLead := pool.DefaultPoolID(kinds.Lead)

		mine, err := recs.CreateLead(w.Ctx, rep, records.LeadInput{Name: ptr("张伟"), Company: ptr("上海云帆科技有限公司")})
		if err != nil {
			t.Fatal(err)
		}
		if mine.Placement != pool.PlacedOwned || mine.PoolID != leadPool.ID || mine.OwnerID == nil {
			t.Fatalf("under cap: placement %s, pool %s (want the team pool %s)", mine.Placement, mine.PoolID, leadPool.ID)
		}
		over, err := recs.CreateLead(w.Ctx, rep, records.LeadInput{Name: ptr("李娜"), Company: ptr("杭州星河贸易有限公司")})
		if err != nil {
			t.Fatal(err)
		}
		if over.Placement != pool.PlacedPooled || over.PoolID != leadPool.ID || over.OwnerID != nil {
			t.Fatalf("over cap: placement %s, pool %s, owner %v (want pooled in the team pool %s)", over.Placement, over.PoolID, over.OwnerID, leadPool.ID)
		}
		lonely, err := recs.CreateLead(w.Ctx, loner, records.LeadInput{Name: ptr("王芳"), Company: ptr("北京万通物流有限公司")})
		if err != nil {
			t.Fatal(err)
		}
		if lonely.Placement != pool.PlacedPooled || lonely.PoolID != globalLead {
			t.Fatalf("no team: placement %s, pool %s (want the global default)", lonely.Placement, lonely.PoolID)
		}
		cust, err := recs.CreateCustomer(w.Ctx, rep, records.CustomerInput{Name: ptr("苏州恒信机械制造有限公司")})
		if err != nil {
			t.Fatal(err)
		}
		if cust.Placement != pool.PlacedOwned || cust.PoolID != custPool.ID {
			t.Fatalf("customer: placement %s, pool %s (want the team customer pool %s)", cust.Placement, cust.PoolID, custPool.ID)
		}

		// Named pools: his (through the region) is fine, pooled; another
		// team's is refused and writes nothing.
		named, err := recs.CreateLead(w.Ctx, rep, records.LeadInput{Name: ptr("赵敏"), Company: ptr("南京金石建材有限公司"), PoolID: &leadPool.ID})
		if err != nil {
			t.Fatal(err)
		}
		if named.Placement != pool.PlacedPooled || named.PoolID != leadPool.ID {
			t.Fatalf("named pool: placement %s, pool %s", named.Placement, named.PoolID)
		}
		_, err = recs.CreateLead(w.Ctx, rep, records.LeadInput{Name: ptr("孙丽"), Company: ptr("广州南粤电子有限公司"), PoolID: &foreign.ID})
		if got := code(err); got != "pool_not_allowed" {
			t.Fatalf("another team's pool: %q (%v)", got, err)
		}

		// Returns: his team-pool lead goes back there.
		if err := w.App.Pools.Return(w.Ctx, rep, kinds.Lead, mine.ID, "客户暂无需求"); err != nil {
			t.Fatal(err)
		}
		if got := leadPoolOf(t, w, mine.ID); got != leadPool.ID {
			t.Fatalf("returned team-pool lead is in %s, want %s", got, leadPool.ID)
		}
		// A lead of the global default pool that he claimed goes to his
		// team's pool when he returns it.
		if _, err := w.App.Pools.Claim(w.Ctx, rep, kinds.Lead, lonely.ID); err != nil {
			t.Fatal(err)
		}
		if err := w.App.Pools.Return(w.Ctx, rep, kinds.Lead, lonely.ID, "不在负责区域"); err != nil {
			t.Fatal(err)
		}
		if got := leadPoolOf(t, w, lonely.ID); got != leadPool.ID {
			t.Fatalf("returned global-pool lead is in %s, want the team pool %s", got, leadPool.ID)
		}
		// A lead of another pool goes back to that pool.
		if _, err := w.App.Pools.Claim(w.Ctx, rep, kinds.Lead, named.ID); err != nil {
			t.Fatal(err)
		}
		if err := w.App.Pools.Return(w.Ctx, rep, kinds.Lead, named.ID, "重复"); err != nil {
			t.Fatal(err)
		}
		if got := leadPoolOf(t, w, named.ID); got != leadPool.ID {
			t.Fatalf("returned named-pool lead is in %s, want %s", got, leadPool.ID)
		}
		// Without team defaults, a return keeps the global pool.
		if _, err := w.App.Org.UpdateTeam(w.Ctx, region.ID, &anyVersion, org.TeamPatch{DefaultPools: org.DefaultPoolsPatch{
			Lead: patch.Null[uuid.UUID]()}}); err != nil {
			t.Fatal(err)
		}
		again, err := recs.CreateLead(w.Ctx, rep, records.LeadInput{Name: ptr("周杰"), Company: ptr("宁波海联进出口有限公司")})
		if err != nil {
			t.Fatal(err)
		}
		if again.PoolID != globalLead || again.Placement != pool.PlacedOwned {
			t.Fatalf("after clearing the default: placement %s, pool %s", again.Placement, again.PoolID)
		}
		if err := w.App.Pools.Return(w.Ctx, rep, kinds.Lead, again.ID, "无效号码"); err != nil {
			t.Fatal(err)
		}
		if got := leadPoolOf(t, w, again.ID); got != globalLead {
			t.Fatalf("returned without team default: in %s, want the global pool", got)
		}
	})
}

func leadPoolOf(t *testing.T, w *testkit.World, id uuid.UUID) uuid.UUID {
	t.Helper()
	l, err := w.Store.Client.Lead.Get(w.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if l.OwnerID != nil {
		t.Fatalf("lead %s still owned", id)
	}
	return l.PoolID
}
