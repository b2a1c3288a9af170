package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestTeamPoolsOverHTTP: an admin gives a team its default pools; a rep of
// a sub-team who is at his cap creates a lead, and it lands pooled in his
// team's pool; he may create into that pool by name but not into another
// team's; a team's default pool of the wrong kind is refused.
func TestTeamPoolsOverHTTP(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		_, admin := env.User(auth.RoleAdmin, nil)
		id := func(res *apitest.Response) string { return res.Map()["id"].(string) }

		region := id(admin.Do("POST", "/v1/teams", map[string]any{"name": "华东大区"}).Expect(http.StatusCreated))
		south := id(admin.Do("POST", "/v1/teams", map[string]any{"name": "华南大区"}).Expect(http.StatusCreated))
		leadPool := id(admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": "华东线索池", "memberTeamIds": []string{region}}).Expect(http.StatusCreated))
		custPool := id(admin.Do("POST", "/v1/pools", map[string]any{"kind": "customer", "name": "华东公海", "memberTeamIds": []string{region}}).Expect(http.StatusCreated))
		southPool := id(admin.Do("POST", "/v1/pools", map[string]any{"kind": "lead", "name": "华南线索池", "memberTeamIds": []string{south}}).Expect(http.StatusCreated))

		// Wrong kind and unknown pools are 400s naming the field.
		p := admin.Do("POST", "/v1/teams", map[string]any{"name": "x", "defaultLeadPoolId": custPool}).ExpectProblem(http.StatusBadRequest, "validation_failed")
		if len(p.Errors) != 1 || p.Errors[0].Code != "wrong_pool_kind" {
			t.Fatalf("wrong kind: %+v", p)
		}
		p = admin.Do("PATCH", "/v1/teams/"+region, map[string]any{"defaultCustomerPoolId": "0190f1c8-0000-7000-8000-000000000000"}, "If-Match", "*").
			ExpectProblem(http.StatusBadRequest, "validation_failed")
		if len(p.Errors) != 1 || p.Errors[0].Code != "unknown_pool" {
			t.Fatalf("unknown pool: %+v", p)
		}

		team := admin.Do("PATCH", "/v1/teams/"+region, map[string]any{"defaultLeadPoolId": leadPool, "defaultCustomerPoolId": custPool}, "If-Match", "*").
			Expect(http.StatusOK).Map()
		if team["defaultLeadPoolId"] != leadPool || team["defaultCustomerPoolId"] != custPool {
			t.Fatalf("team after patch: %v", team)
		}
		branch := admin.Do("POST", "/v1/teams", map[string]any{"name": "上海分公司", "parentId": region}).Expect(http.StatusCreated).Map()
		if branch["defaultLeadPoolId"] != nil {
			t.Fatalf("a team without defaults answers %v", branch["defaultLeadPoolId"])
		}
		branchID := uuid.MustParse(branch["id"].(string))
		zero := 0
		_, rep := env.User(auth.RoleRep, &branchID, org.Caps{MaxOwnedLeads: &zero})

		// At his cap (0): pooled, in his region's pool.
		l := rep.Do("POST", "/v1/leads", map[string]any{"name": "张伟", "company": "上海云帆科技有限公司"}).Expect(http.StatusCreated).Map()
		if l["placement"] != "pooled" || l["poolId"] != leadPool || l["ownerId"] != nil {
			t.Fatalf("over-cap lead: placement %v, pool %v (want %s), owner %v", l["placement"], l["poolId"], leadPool, l["ownerId"])
		}
		// He sees it there and may claim from it (his team is a member);
		// the cap still holds.
		rep.Do("GET", "/v1/leads/"+l["id"].(string), nil).Expect(http.StatusOK)
		rep.Do("POST", "/v1/leads/"+l["id"].(string)+"/claim", nil).ExpectProblem(http.StatusConflict, "cap_exceeded")

		// Under his customer cap: his, in the region's customer pool.
		c := rep.Do("POST", "/v1/customers", map[string]any{"name": "苏州恒信机械制造有限公司"}).Expect(http.StatusCreated).Map()
		if c["placement"] != "owned" || c["poolId"] != custPool {
			t.Fatalf("customer: placement %v, pool %v (want %s)", c["placement"], c["poolId"], custPool)
		}

		// Named pools: his own, pooled; another team's, 403.
		named := rep.Do("POST", "/v1/leads", map[string]any{"name": "赵敏", "company": "南京金石建材有限公司", "poolId": leadPool}).Expect(http.StatusCreated).Map()
		if named["placement"] != "pooled" || named["poolId"] != leadPool {
			t.Fatalf("named pool: %v", named)
		}
		rep.Do("POST", "/v1/leads", map[string]any{"name": "孙丽", "company": "广州南粤电子有限公司", "poolId": southPool}).
			ExpectProblem(http.StatusForbidden, "pool_not_allowed")
	})
}
