package convert

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/dedupekey"
	entuser "github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

type world struct {
	store     *store.Store
	records   *records.Service
	convert   *Service
	rep, rep2 *auth.Principal
}

func newWorld(t *testing.T, url string) *world {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	pools := pool.NewService(st, clock.Real{}, nil)
	if err := pools.EnsureDefaults(ctx); err != nil {
		t.Fatal(err)
	}
	user := func(email string) *auth.Principal {
		u, err := st.Client.User.Create().SetEmail(email).SetName(email).SetRole(entuser.RoleRep).SetPasswordHash("x").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return &auth.Principal{Type: auth.ActorUser, ID: u.ID, Name: u.Name, Role: auth.RoleRep}
	}
	recs := records.NewService(st, pools)
	return &world{store: st, records: recs, convert: New(st, pools, recs), rep: user("rep@example.com"), rep2: user("rep2@example.com")}
}

func strp(s string) *string { return &s }

func (w *world) lead(t *testing.T) *records.LeadView {
	t.Helper()
	v, err := w.records.CreateLead(context.Background(), w.rep, records.LeadInput{Name: strp("Wang Wei"), Company: strp("Acme Trading"),
		Phone: strp("138 0013 8000"), Email: strp("wang@acme.example"), Region: strp("Shanghai"), Tags: &[]string{"vip"}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (w *world) counters(t *testing.T) (leads, customers int) {
	t.Helper()
	u, err := w.store.Client.User.Get(context.Background(), w.rep.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u.OwnedLeads, u.OwnedCustomers
}

// A converted lead becomes a customer of the same rep, named after its
// company, with a primary contact holding the lead's person, phone and
// email; the lead's keys move over (the name key to the customer, phone
// and email to the contact), the counters follow, and the lead is marked
// converted, all in one transaction.
func TestConvertWritesCustomerThroughRecords(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		w := newWorld(t, url)
		l := w.lead(t)
		id, err := w.convert.Convert(ctx, w.rep, l.ID, "  ")
		if err != nil {
			t.Fatalf("convert: %v", err)
		}
		cu, err := w.records.GetCustomer(ctx, w.rep, id)
		if err != nil {
			t.Fatalf("get customer: %v", err)
		}
		if cu.Name != "Acme Trading" || cu.Region != "Shanghai" || cu.OwnerID == nil || *cu.OwnerID != w.rep.ID ||
			cu.PoolID != pool.DefaultPoolID("customer") || len(cu.Tags) != 1 {
			t.Fatalf("customer %+v", cu.Customer)
		}
		if n, c := w.counters(t); n != 0 || c != 1 {
			t.Fatalf("counters leads %d customers %d, want 0 and 1", n, c)
		}
		after, err := w.store.Client.Lead.Get(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if after.Status != "converted" || after.ConvertedCustomerID == nil || *after.ConvertedCustomerID != id {
			t.Fatalf("lead after: status %s converted to %v", after.Status, after.ConvertedCustomerID)
		}
		ct, err := w.store.Client.Contact.Query().Where(contact.CustomerID(id)).Only(ctx)
		if err != nil {
			t.Fatalf("contact: %v", err)
		}
		if ct.Name != "Wang Wei" || ct.Phone != "138 0013 8000" || ct.Email != "wang@acme.example" || !ct.IsPrimary {
			t.Fatalf("contact %+v", ct)
		}
		keys, err := w.store.Client.DedupeKey.Query().Where(dedupekey.Or(dedupekey.RecordID(id), dedupekey.RecordID(ct.ID), dedupekey.RecordID(l.ID))).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		byType := map[dedupekey.KeyType]*ent.DedupeKey{}
		for _, k := range keys {
			byType[k.KeyType] = k
		}
		if k := byType[dedupekey.KeyTypeName]; len(keys) != 3 || k == nil || k.RecordID != id || k.RecordKind != dedupekey.RecordKindCustomer {
			t.Fatalf("keys %+v: want the name key on the customer", keys)
		}
		for _, typ := range []dedupekey.KeyType{dedupekey.KeyTypePhone, dedupekey.KeyTypeEmail} {
			if k := byType[typ]; k == nil || k.RecordID != ct.ID || k.CustomerID == nil || *k.CustomerID != id {
				t.Fatalf("%s key %+v: want it on the contact", typ, k)
			}
		}
		// The company is still one company: a new lead of it is a duplicate.
		_, err = w.records.CreateLead(ctx, w.rep2, records.LeadInput{Name: strp("Li"), Company: strp("ACME trading")})
		var ae *apperr.Error
		if !errors.As(err, &ae) || ae.Code != "duplicate" {
			t.Fatalf("lead of the converted company: %v, want duplicate", err)
		}
	})
}

// A refused conversion writes nothing: not another rep's lead, not past
// the owner's customer cap.
func TestConvertRefusedWritesNothing(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, w *world)
		by    func(w *world) *auth.Principal
		code  string
	}{
		{"another rep", func(*testing.T, *world) {}, func(w *world) *auth.Principal { return w.rep2 }, "not_found"},
		{"at customer cap", func(t *testing.T, w *world) {
			if err := w.store.Client.User.UpdateOneID(w.rep.ID).SetMaxOwnedCustomers(0).Exec(context.Background()); err != nil {
				t.Fatal(err)
			}
		}, func(w *world) *auth.Principal { return w.rep }, "cap_exceeded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, url string) {
				ctx := context.Background()
				w := newWorld(t, url)
				l := w.lead(t)
				tc.setup(t, w)
				_, err := w.convert.Convert(ctx, tc.by(w), l.ID, "New Name")
				var ae *apperr.Error
				if !errors.As(err, &ae) || ae.Code != tc.code {
					t.Fatalf("convert: %v, want %s", err, tc.code)
				}
				if n, err := w.store.Client.Customer.Query().Count(ctx); err != nil || n != 0 {
					t.Fatalf("customers written: %d, %v", n, err)
				}
				if n, c := w.counters(t); n != 1 || c != 0 {
					t.Fatalf("counters leads %d customers %d, want 1 and 0", n, c)
				}
				after, err := w.store.Client.Lead.Get(ctx, l.ID)
				if err != nil || after.Status != "active" || after.ConvertedCustomerID != nil {
					t.Fatalf("lead after: %+v, %v", after, err)
				}
			})
		})
	}
}

// A name typed on convert that another record already holds names the
// customer all the same; the name key stays with the record that held it
// (the lead's company key is dropped).
func TestConvertToNameHeldElsewhere(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		w := newWorld(t, url)
		other, err := w.records.CreateCustomer(ctx, w.rep2, records.CustomerInput{Name: strp("Other Co")})
		if err != nil {
			t.Fatal(err)
		}
		l := w.lead(t)
		id, err := w.convert.Convert(ctx, w.rep, l.ID, "Other Co")
		if err != nil {
			t.Fatalf("convert: %v", err)
		}
		keys, err := w.store.Client.DedupeKey.Query().Where(dedupekey.KeyTypeEQ(dedupekey.KeyTypeName)).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 1 || keys[0].RecordID != other.ID {
			t.Fatalf("name keys %+v: want only the other customer's", keys)
		}
		cu, err := w.records.GetCustomer(ctx, w.rep, id)
		if err != nil || cu.Name != "Other Co" {
			t.Fatalf("customer %+v, %v", cu, err)
		}
	})
}
