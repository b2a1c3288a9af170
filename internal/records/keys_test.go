package records

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/etag"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// An API key changes the records it sees (its pool's, or all when bound
// to none), and a follow-up's subject kind must match its scopes: 404
// for a kind it holds no scope of, 403 insufficient_scope when it only
// reads that kind.
func TestKeyWritesWhatItSees(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := newWorld(t, url)
		ctx := context.Background()
		leadPool, custPool := pool.DefaultPoolID("lead"), pool.DefaultPoolID("customer")
		l, err := w.svc.CreateLead(ctx, w.admin, LeadInput{Name: strp("pooled lead"), PoolID: &leadPool})
		if err != nil {
			t.Fatal(err)
		}
		c, err := w.svc.CreateCustomer(ctx, w.admin, CustomerInput{Name: strp("pooled customer"), PoolID: &custPool})
		if err != nil {
			t.Fatal(err)
		}
		elsewhere := uuid.New()
		bound := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"leads:write"}, PoolID: &leadPool}
		other := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"leads:write"}, PoolID: &elsewhere}
		reader := &auth.Principal{Type: auth.ActorAPIKey, ID: uuid.New(), Scopes: []string{"leads:write", "customers:read"}}
		code := func(err error) string {
			if e, ok := apperr.As(err); ok {
				return e.Code
			}
			return ""
		}
		followUp := func(p *auth.Principal, kind kinds.Kind, id uuid.UUID) error {
			_, err := w.svc.CreateFollowUp(ctx, p, FollowUpInput{SubjectType: string(kind), SubjectID: id, Channel: "call",
				Content: "partner called", OccurredAt: time.Now().Add(-time.Hour)})
			return err
		}

		v, err := w.svc.UpdateLead(ctx, bound, l.ID, strp(etag.Of(l.Version)), LeadInput{Company: strp("Partner Co")})
		if err != nil || v.Company != "Partner Co" {
			t.Fatalf("bound key updates its pool's lead: %v", err)
		}
		if _, err := w.svc.UpdateLead(ctx, other, l.ID, strp("*"), LeadInput{Company: strp("x")}); code(err) != "not_found" {
			t.Errorf("key of another pool updates: %v, want not_found", err)
		}
		if err := followUp(bound, kinds.Lead, l.ID); err != nil {
			t.Errorf("bound key logs a follow-up on its lead: %v", err)
		}
		if err := followUp(bound, kinds.Customer, c.ID); code(err) != "not_found" {
			t.Errorf("leads:write key on a customer: %v, want not_found", err)
		}
		if err := followUp(reader, kinds.Customer, c.ID); code(err) != "insufficient_scope" {
			t.Errorf("customers:read key writes on a customer: %v, want insufficient_scope", err)
		}
		if err := followUp(reader, kinds.Lead, l.ID); err != nil {
			t.Errorf("unbound leads:write key on a lead: %v", err)
		}
	})
}
