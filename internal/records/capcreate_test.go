package records_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

// Creates by one user do not queue on his counter row for a whole
// transaction (Place reads it, Created takes the slot at the end), and his
// cap stays exact: 64 concurrent creates by a rep ten below his cap leave
// exactly ten owned and the rest pooled, with his counter at the cap.
func TestConcurrentCreatesByOneUserKeepTheCap(t *testing.T) {
	t.Parallel()
	const limit, before, concurrent = 30, 20, 64
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		for _, kind := range kinds.All {
			t.Run(string(kind), func(t *testing.T) {
				w := testkit.New(t, url, app.Config{})
				cap := limit
				caps := org.Caps{MaxOwnedLeads: &cap, MaxOwnedCustomers: &cap}
				u, rep := w.Actor("rep", nil, caps)
				create := func(i int) (string, error) {
					name := fmt.Sprintf("并发公司%s-%03d", kind, i)
					phone := fmt.Sprintf("1390000%04d", i)
					switch kind {
					case kinds.Lead:
						v, err := w.App.Records.CreateLead(w.Ctx, rep, records.LeadInput{Name: &name, Company: &name, Phone: &phone})
						if err != nil {
							return "", err
						}
						return v.Placement, nil
					case kinds.Customer:
						v, err := w.App.Records.CreateCustomer(w.Ctx, rep, records.CustomerInput{Name: &name})
						if err != nil {
							return "", err
						}
						return v.Placement, nil
					}
					return "", fmt.Errorf("kind %s", kind)
				}
				for i := range before {
					if how, err := create(i); err != nil || how != pool.PlacedOwned {
						t.Fatalf("create %d: %q %v", i, how, err)
					}
				}
				var mu sync.Mutex
				placed := map[string]int{}
				var wg sync.WaitGroup
				for i := range concurrent {
					wg.Add(1)
					go func() {
						defer wg.Done()
						how, err := create(before + i)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							t.Errorf("concurrent create %d: %v", i, err)
							return
						}
						placed[how]++
					}()
				}
				wg.Wait()
				if placed[pool.PlacedOwned] != limit-before || placed[pool.PlacedPooled] != concurrent-(limit-before) {
					t.Errorf("placements %v; want %d owned and %d pooled", placed, limit-before, concurrent-(limit-before))
				}
				got, err := w.Store.Client.User.Get(w.Ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				var owned int
				switch kind {
				case kinds.Lead:
					owned, err = w.Store.Client.Lead.Query().Where(lead.OwnerID(u.ID)).Count(w.Ctx)
				case kinds.Customer:
					owned, err = w.Store.Client.Customer.Query().Where(customer.OwnerID(u.ID)).Count(w.Ctx)
				}
				if err != nil {
					t.Fatal(err)
				}
				if c := kind.Desc().Owned(got); c != limit || owned != limit {
					t.Errorf("counter %d, owned rows %d; want both %d", c, owned, limit)
				}
			})
		}
	})
}
