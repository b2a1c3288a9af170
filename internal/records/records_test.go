package records

import (
	"context"
	"errors"
	"github.com/shoalcrm/shoal/internal/etag"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entuser "github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/store"
	"github.com/shoalcrm/shoal/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }

// world is a migrated database with default pools, an admin and two reps.
type world struct {
	store            *store.Store
	svc              *Service
	admin, rep, rep2 *auth.Principal
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
	user := func(email, role string) *auth.Principal {
		u, err := st.Client.User.Create().SetEmail(email).SetName(email).SetRole(entuser.Role(role)).SetPasswordHash("x").Save(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return &auth.Principal{Type: auth.ActorUser, ID: u.ID, Name: u.Name, Role: role}
	}
	return &world{store: st, svc: NewService(st, pools),
		admin: user("admin@example.com", auth.RoleAdmin), rep: user("rep@example.com", auth.RoleRep),
		rep2: user("rep2@example.com", auth.RoleRep)}
}

// ownedCase drives one kind through the generic owned-record code.
type ownedCase[R, In any] struct {
	k *ownedKind[R, In]
	// input is a create/update input with the given name, region and
	// key value (company for leads, name for customers), each set when
	// not empty, and into the given pool.
	input func(name, region string, poolID *uuid.UUID) In
	name  func(R) string
	// region reads the region field, masked in pooled records.
	region func(R) string
}

func strp(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

var leadCase = ownedCase[*ent.Lead, LeadInput]{
	k: leads,
	input: func(name, region string, poolID *uuid.UUID) LeadInput {
		return LeadInput{Name: strp(name), Company: strp(name), Region: strp(region), PoolID: poolID}
	},
	name:   func(l *ent.Lead) string { return l.Name },
	region: func(l *ent.Lead) string { return l.Region },
}

var customerCase = ownedCase[*ent.Customer, CustomerInput]{
	k: customers,
	input: func(name, region string, poolID *uuid.UUID) CustomerInput {
		return CustomerInput{Name: strp(name), Region: strp(region), PoolID: poolID}
	},
	name:   func(c *ent.Customer) string { return c.Name },
	region: func(c *ent.Customer) string { return c.Region },
}

func hasCode(err error, code string) bool {
	var ae *apperr.Error
	return errors.As(err, &ae) && ae.Code == code
}

// A record created by a rep is his (placed owned, his counter up by one);
// he reads it back, lists it and updates it under its ETag; a stale ETag
// and a duplicate key are refused; a second rep does not see it.
func exerciseOwned[R, In any](t *testing.T, w *world, c ownedCase[R, In]) {
	ctx := context.Background()
	s := w.svc
	v, err := c.k.create(ctx, s, w.rep, c.input("Acme Trading", "Shanghai", nil), nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	m := c.k.meta(v.Row)
	if v.Placement != pool.PlacedOwned || m.OwnerID == nil || *m.OwnerID != w.rep.ID || v.OwnerName == nil {
		t.Fatalf("create: placement %q owner %v name %v; want owned by the rep", v.Placement, m.OwnerID, v.OwnerName)
	}
	u, err := w.store.Client.User.Get(ctx, w.rep.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.k.kind.Desc().Owned(u); got != 1 {
		t.Fatalf("owned counter %d, want 1", got)
	}

	got, err := c.k.view(ctx, s, w.store.Reader, w.rep, m.ID)
	if err != nil || c.name(got.Row) != "Acme Trading" || got.Masked {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if _, err := c.k.view(ctx, s, w.store.Reader, w.rep2, m.ID); !hasCode(err, "not_found") {
		t.Fatalf("get by another rep: %v, want not_found", err)
	}

	if _, err := c.k.create(ctx, s, w.rep2, c.input("ACME trading", "", nil), nil); !hasCode(err, "duplicate") {
		t.Fatalf("duplicate create: %v, want duplicate", err)
	}

	stale := etag.Of(m.Version + 1)
	if _, err := c.k.updateFields(ctx, s, w.rep, m.ID, &stale, c.input("Acme Ltd", "", nil)); !hasCode(err, "precondition_failed") {
		t.Fatalf("stale update: %v, want precondition_failed", err)
	}
	if _, err := c.k.updateFields(ctx, s, w.rep2, m.ID, strp(etag.Of(m.Version)), c.input("Acme Ltd", "", nil)); !hasCode(err, "not_found") {
		t.Fatalf("update by another rep: %v, want not_found", err)
	}
	upd, err := c.k.updateFields(ctx, s, w.rep, m.ID, strp(etag.Of(m.Version)), c.input("Acme Ltd", "", nil))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if um := c.k.meta(upd.Row); um.Version != m.Version+1 || c.name(upd.Row) != "Acme Ltd" || c.region(upd.Row) != "Shanghai" {
		t.Fatalf("update: version %d name %q region %q", um.Version, c.name(upd.Row), c.region(upd.Row))
	}
	// The old key is released with the rename, the new one taken.
	if _, err := c.k.create(ctx, s, w.rep2, c.input("Acme Trading", "", nil), nil); err != nil {
		t.Fatalf("create under the released key: %v", err)
	}
	if _, err := c.k.create(ctx, s, w.rep2, c.input("acme ltd", "", nil), nil); !hasCode(err, "duplicate") {
		t.Fatalf("create under the new key: %v, want duplicate", err)
	}

	list, total, _, err := c.k.list(ctx, s, w.rep, Filter{Limit: 10, IncludeTotal: true})
	if err != nil || total == nil || *total != 1 || len(list) != 1 || c.k.meta(list[0].Row).ID != m.ID {
		t.Fatalf("list: %d items, total %v, %v; want the rep's one record", len(list), total, err)
	}
}

// A pooled record shows a member of an open pool the fields the pool's
// visibleFields lists, and the others masked.
func exerciseMasked[R, In any](t *testing.T, w *world, c ownedCase[R, In]) {
	ctx := context.Background()
	s := w.svc
	poolID := pool.DefaultPoolID(c.k.kind)
	if err := w.store.Client.Pool.UpdateOneID(poolID).SetVisibleFields([]string{"name"}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := c.k.create(ctx, s, w.admin, c.input("Pooled Co", "Hangzhou", &poolID), &poolID)
	if err != nil {
		t.Fatalf("create pooled: %v", err)
	}
	if v.Placement != pool.PlacedPooled {
		t.Fatalf("placement %q, want pooled", v.Placement)
	}
	id := c.k.meta(v.Row).ID
	seen, err := c.k.view(ctx, s, w.store.Reader, w.rep, id)
	if err != nil {
		t.Fatalf("rep views pooled: %v", err)
	}
	if !seen.Masked || c.name(seen.Row) != "Pooled Co" || c.region(seen.Row) != maskText("Hangzhou") {
		t.Fatalf("rep sees masked %v name %q region %q", seen.Masked, c.name(seen.Row), c.region(seen.Row))
	}
	// Masking copies: the admin's view of the same row is whole.
	whole, err := c.k.view(ctx, s, w.store.Reader, w.admin, id)
	if err != nil || whole.Masked || c.region(whole.Row) != "Hangzhou" {
		t.Fatalf("admin view: %+v, %v", whole, err)
	}
}

// Both kinds go through the same generic code: a record's life cycle
// (create, get, duplicate, update, list) and the masking of pooled ones.
func TestOwnedRecordService(t *testing.T) {
	cases := []struct {
		kind kinds.Kind
		what string
		run  func(t *testing.T, w *world)
	}{
		{kinds.Lead, "lifecycle", func(t *testing.T, w *world) { exerciseOwned(t, w, leadCase) }},
		{kinds.Customer, "lifecycle", func(t *testing.T, w *world) { exerciseOwned(t, w, customerCase) }},
		{kinds.Lead, "masking", func(t *testing.T, w *world) { exerciseMasked(t, w, leadCase) }},
		{kinds.Customer, "masking", func(t *testing.T, w *world) { exerciseMasked(t, w, customerCase) }},
	}
	for _, tc := range cases {
		t.Run(string(tc.kind)+"/"+tc.what, func(t *testing.T) {
			testdb.Each(t, func(t *testing.T, url string) { tc.run(t, newWorld(t, url)) })
		})
	}
}

// Every kind the registry declares has a generic owned-record part, and
// the part's masked fields line up with the registry's.
func TestEveryKindHasOwnedPart(t *testing.T) {
	lead := &ent.Lead{}
	if f, _ := leads.masked(lead); len(f) != len(kinds.Lead.Desc().Masked) {
		t.Fatalf("lead: %d masked fields, registry declares %d", len(f), len(kinds.Lead.Desc().Masked))
	}
	cu := &ent.Customer{}
	if f, _ := customers.masked(cu); len(f) != len(kinds.Customer.Desc().Masked) {
		t.Fatalf("customer: %d masked fields, registry declares %d", len(f), len(kinds.Customer.Desc().Masked))
	}
	if leads.kind != kinds.Lead || customers.kind != kinds.Customer {
		t.Fatal("owned parts name the wrong kinds")
	}
	for _, k := range kinds.All {
		if got, err := kinds.Parse(string(k)); err != nil || got != k {
			t.Fatalf("Parse(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := kinds.Parse("contact"); !errors.Is(err, kinds.ErrUnknown) {
		t.Fatalf("Parse(contact): %v, want ErrUnknown", err)
	}
}
