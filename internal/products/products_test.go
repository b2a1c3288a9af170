package products_test

import (
	"errors"
	"os"
	"testing"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

func TestCostVisible(t *testing.T) {
	for _, tc := range []struct {
		p    *auth.Principal
		want bool
	}{
		{nil, false},
		{&auth.Principal{Type: auth.ActorUser, Role: auth.RoleRep}, false},
		{&auth.Principal{Type: auth.ActorUser, Role: auth.RoleAuditor}, false},
		{&auth.Principal{Type: auth.ActorUser, Role: auth.RoleSupervisor}, true},
		{&auth.Principal{Type: auth.ActorUser, Role: auth.RoleAdmin}, true},
		{&auth.Principal{Type: auth.ActorAPIKey, Role: auth.RoleAdmin}, false},
	} {
		if got := products.CostVisible(tc.p); got != tc.want {
			t.Errorf("%+v: %t, want %t", tc.p, got, tc.want)
		}
	}
}

func code(err error) string {
	var e *apperr.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// TestProductRules: SKUs are unique without regard to case and spaces,
// on create and on update; amounts may not be negative; a null clears the
// cost; an update that changes nothing makes no new version.
func TestProductRules(t *testing.T) {
	testdb.Each(t, func(t *testing.T, url string) {
		w := testkit.New(t, url, app.Config{})
		_, admin := w.Actor("admin", nil)
		svc := w.App.Products
		cost := money.MustParse("3.33")
		a, err := svc.Create(w.Ctx, admin, products.Input{SKU: " ab-1 ", Name: "A", ListPrice: money.MustParse("10"), InternalCost: &cost})
		if err != nil || a.Sku != "ab-1" || a.SkuNorm != "AB-1" {
			t.Fatalf("create: %v %+v", err, a)
		}
		if _, err := svc.Create(w.Ctx, admin, products.Input{SKU: "AB-1", Name: "B", ListPrice: money.MustParse("1")}); code(err) != "sku_taken" {
			t.Errorf("same SKU in another case: %v", err)
		}
		neg := money.MustParse("-0.01")
		if _, err := svc.Create(w.Ctx, admin, products.Input{SKU: "C", Name: "C", ListPrice: money.MustParse("1"), InternalCost: &neg}); code(err) != "validation_failed" {
			t.Errorf("negative cost: %v", err)
		}
		b, err := svc.Create(w.Ctx, admin, products.Input{SKU: "B-2", Name: "B", ListPrice: money.MustParse("1")})
		if err != nil {
			t.Fatal(err)
		}
		star := "*"
		taken := "ab-1"
		if _, err := svc.Update(w.Ctx, admin, b.ID, &star, products.Patch{SKU: &taken}); code(err) != "sku_taken" {
			t.Errorf("update to a taken SKU: %v", err)
		}
		same, err := svc.Update(w.Ctx, admin, a.ID, &star, products.Patch{Name: &a.Name})
		if err != nil || same.Version != a.Version {
			t.Errorf("a no-op update: %v, version %d → %d", err, a.Version, same.Version)
		}
		cleared, err := svc.Update(w.Ctx, admin, a.ID, &star, products.Patch{InternalCost: patch.Null[money.Money]()})
		if err != nil || cleared.InternalCost != nil || cleared.Version != a.Version+1 {
			t.Errorf("clearing the cost: %v %+v", err, cleared)
		}
		if _, err := svc.Get(w.Ctx, uuid.New()); code(err) != "not_found" {
			t.Errorf("an unknown product: %v", err)
		}
	})
}
