package httpapi_test

import (
	"testing"

	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestSmokeIdentity(t *testing.T) {
	env := apitest.New(t, testdb.SQLite(t))
	_, admin := env.User("admin", nil)
	me := admin.Do("GET", "/v1/me", nil).Expect(200).Map()
	t.Log(me)
	team := admin.Do("POST", "/v1/teams", map[string]any{"name": "East"}).Expect(201).Map()
	u := admin.Do("POST", "/v1/users", map[string]any{"email": "Rep1@Example.com", "name": "Rep One", "role": "rep", "password": "password123", "teamId": team["id"]}).Expect(201).Map()
	t.Log(u)
	bad := admin.Do("POST", "/v1/users", map[string]any{"email": "nope", "name": "", "role": "king", "password": "x", "createdAt": "2020-01-01T00:00:00Z"})
	t.Log(bad.Status, string(bad.Body))
	rep := env.Login("rep1@example.com", "password123")
	rep.Do("POST", "/v1/teams", map[string]any{"name": "X"}).ExpectProblem(403, "forbidden")
	t.Log(string(rep.Do("GET", "/v1/users", nil).Body))
	k := admin.Do("POST", "/v1/api-keys", map[string]any{"name": "Partner", "scopes": []string{"leads:write"}}).Expect(201).Map()
	t.Log(k)
	t.Log(string(admin.Do("GET", "/v1/audit-events", nil).Body))
	t.Log(string(env.Anonymous().Do("GET", "/.well-known/jwks.json", nil).Body))
	r := env.Anonymous().Do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": rep.Refresh}).Expect(200)
	t.Log(string(r.Body))
	env.Anonymous().Do("POST", "/v1/auth/refresh", map[string]any{"refreshToken": rep.Refresh}).ExpectProblem(401, "refresh_token_reused")
}
