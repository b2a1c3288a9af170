package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// TestPoolReplicas runs two app instances on one PostgreSQL database, as
// two replicas behind a load balancer would, spreads the mixed load and the
// races over both, and checks the same invariants: nothing in the engine
// may rely on state held in one process.
func TestPoolReplicas(t *testing.T) {
	t.Parallel()
	databaseURL := testdb.Postgres(t)
	first := apitest.New(t, databaseURL)
	// The second replica starts on the already migrated database, with the
	// default pools and signing keys the first one made.
	second := apitest.New(t, databaseURL)
	envs := []*apitest.Env{first, second}
	o := newPWOrg(t, envs, 10, 3, 1)

	// A token issued by one replica is honoured by the other, and both see
	// the same records.
	lead := o.createPooled(t, 1)[0]
	for s := range envs {
		res, err := o.call(s, o.reps[0], "GET", "/v1/leads/"+lead, nil)
		if err != nil || res.status != http.StatusOK {
			t.Fatalf("replica %d: %v %d %s", s, err, res.status, res.body)
		}
	}
	loginOn := second.Login(o.reps[0].Email, apitest.Password)
	first.Anonymous().Do("GET", "/v1/me", nil, "Authorization", "Bearer "+loginOn.Bearer).Expect(http.StatusOK)

	t.Run("mixed load", func(t *testing.T) { pwMixedLoad(t, o, 64, 30) })
	o.releaseAll(t)
	o.races(t)
	o.check(t, o.historyCount(t))
}
