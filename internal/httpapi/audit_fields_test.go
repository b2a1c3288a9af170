package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/auditevent"
	"github.com/shoalcrm/shoal/internal/apitest"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// Audit rows carry the target's type and, for an update, the names of the
// fields it changed (sorted), never their values; a password change names
// "password" and nothing of the hash. Writes without an {id} in their path
// name their target type too.
func TestAuditRowsNameTargetTypeAndChangedFields(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		env := apitest.New(t, url)
		_, admin := env.User(auth.RoleAdmin, nil)
		u, rep := env.User(auth.RoleRep, nil)
		lead := rep.Do("POST", "/v1/leads", map[string]any{"name": "张伟", "phone": "13800138000", "company": "上海云帆科技有限公司"}).
			Expect(http.StatusCreated).Map()
		id := lead["id"].(string)
		rep.Do("PATCH", "/v1/leads/"+id, map[string]any{"name": "张伟强", "phone": "13900139000", "company": "上海云帆科技有限公司"},
			"If-Match", "*", "X-Request-ID", "audit-update-lead").Expect(http.StatusOK)
		admin.Do("PATCH", "/v1/users/"+u.ID.String(), map[string]any{"password": "a brand new passphrase 9"},
			"If-Match", "*", "X-Request-ID", "audit-update-user").Expect(http.StatusOK)
		admin.Do("PATCH", "/v1/settings", map[string]any{"maxOwnedLeads": 50}, "If-Match", "*", "X-Request-ID", "audit-settings").
			Expect(http.StatusOK)

		row := func(reqID string) *ent.AuditEvent {
			t.Helper()
			e, err := env.App.Store.Reader.AuditEvent.Query().Where(auditevent.RequestID(reqID)).Only(context.Background())
			if err != nil {
				t.Fatalf("audit row of %s: %v", reqID, err)
			}
			return e
		}
		e := row("audit-update-lead")
		if e.Operation != "updateLead" || e.TargetType != "lead" || e.TargetID != id || e.Detail != "fields=name,phone" {
			t.Errorf("updateLead audit row: %+v, want target lead %s and detail fields=name,phone", e, id)
		}
		for _, v := range []string{"张伟", "1380", "1390"} {
			if strings.Contains(e.Detail, v) {
				t.Errorf("the audit row holds the value %q: %q", v, e.Detail)
			}
		}
		e = row("audit-update-user")
		if e.TargetType != "user" || e.TargetID != u.ID.String() || e.Detail != "fields=password" {
			t.Errorf("updateUser audit row: %+v, want target user and detail fields=password", e)
		}
		e = row("audit-settings")
		if e.TargetType != "settings" || !strings.Contains(e.Detail, "maxOwnedLeads") || strings.Contains(e.Detail, "50") {
			t.Errorf("updateSettings audit row: %+v, want target settings naming maxOwnedLeads", e)
		}
	})
}
