package demo_test

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/claimrequest"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/followup"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/ownershipchange"
	entpool "github.com/shoalcrm/shoal/ent/pool"
	"github.com/shoalcrm/shoal/ent/reclaimwarning"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/demo"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/testdb"
	"github.com/shoalcrm/shoal/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Main(m)) }

// fixed is a clock standing at one instant: the demo's end.
type fixed time.Time

func (f fixed) Now() time.Time { return time.Time(f) }

// TestDemoShowsEveryRule loads the demo and checks, through the services a
// client reaches, every promise of `shoal seed --demo`: pools with rules,
// a few hundred claimable records, masking, warnings pending, frozen
// records, a claim-approval pool with requests waiting, follow-ups over
// months, a rep at his daily limit, one at his cap, one in cooldown,
// overdue records the next sweep reclaims, and a rep who can claim.
func TestDemoShowsEveryRule(t *testing.T) {
	t.Parallel()
	testdb.Each(t, func(t *testing.T, url string) {
		t.Parallel()
		end := time.Now().UTC().Truncate(time.Second)
		w := testkit.New(t, url, app.Config{Clock: fixed(end)})
		db := w.Store.Reader
		ctx := w.Ctx
		sum, err := demo.Load(ctx, w.Store, demo.Options{Leads: 240, Customers: 60, Now: end}, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := demo.Load(ctx, w.Store, demo.Options{Now: end}, func(string) {}); !errors.Is(err, demo.ErrNotEmpty) {
			t.Fatalf("a second load: %v, want ErrNotEmpty", err)
		}
		count := func(n int, err error) int {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
		rep := func(email string) *auth.Principal {
			t.Helper()
			u, err := db.User.Query().Where(user.Email(email)).Only(ctx)
			if err != nil {
				t.Fatalf("user %s: %v", email, err)
			}
			return auth.UserPrincipal(u)
		}
		code := func(err error) string {
			var e *apperr.Error
			if errors.As(err, &e) {
				return e.Code
			}
			return ""
		}

		// Pools and their rules.
		lp, err := db.Pool.Get(ctx, pool.DefaultPoolID(kinds.Lead))
		if err != nil {
			t.Fatal(err)
		}
		cp, err := db.Pool.Get(ctx, pool.DefaultPoolID(kinds.Customer))
		if err != nil {
			t.Fatal(err)
		}
		if lp.IdleDays == nil || *lp.IdleDays != 15 || lp.DailyClaimLimit == nil || lp.ClaimCooldownDays == nil ||
			lp.NotifyDaysBefore == nil || len(lp.VisibleFields) == 0 {
			t.Errorf("default lead pool rules: %+v", lp)
		}
		if cp.NoDealDays == nil || *cp.NoDealDays != 60 || cp.IdleDays == nil || len(cp.VisibleFields) == 0 {
			t.Errorf("default customer pool rules: %+v", cp)
		}
		appr, err := db.Pool.Query().Where(entpool.ClaimRequiresApproval(true)).Only(ctx)
		if err != nil {
			t.Fatalf("the claim-approval pool: %v", err)
		}
		team, err := db.Pool.Query().Where(entpool.Name(demo.TeamLeadPool)).Only(ctx)
		if err != nil {
			t.Fatal(err)
		}

		// A few hundred pooled, active records in pools reps claim from
		// without approval.
		claimable := count(db.Lead.Query().Where(lead.OwnerIDIsNil(), lead.StatusEQ(lead.StatusActive), lead.PoolIDIn(lp.ID, team.ID)).Count(ctx)) +
			count(db.Customer.Query().Where(customer.OwnerIDIsNil(), customer.StatusEQ(customer.StatusActive), customer.PoolID(cp.ID)).Count(ctx))
		if claimable <= 200 {
			t.Errorf("%d claimable pooled records, want more than 200", claimable)
		}
		if n := count(db.Customer.Query().Where(customer.OwnerIDIsNil(), customer.PoolID(appr.ID)).Count(ctx)); n == 0 {
			t.Error("the claim-approval pool holds no customers")
		}
		if n := count(db.ClaimRequest.Query().Where(claimrequest.StatusEQ(claimrequest.StatusPending)).Count(ctx)); n != 2 || sum.ClaimRequests != 2 {
			t.Errorf("%d pending claim requests (summary %d), want 2", n, sum.ClaimRequests)
		}

		// Frozen records, warnings pending, overdue records.
		if n := count(db.Lead.Query().Where(lead.FrozenUntilGT(end), lead.OwnerIDNotNil()).Count(ctx)); n < 3 {
			t.Errorf("%d frozen leads", n)
		}
		warnings, err := db.ReclaimWarning.Query().Where(reclaimwarning.ReclaimAtGT(end)).All(ctx)
		if err != nil {
			t.Fatal(err)
		}
		reasons := map[string]int{}
		for _, wr := range warnings {
			reasons[wr.Reason]++
		}
		if reasons["idle"] == 0 || reasons["no_deal"] == 0 {
			t.Errorf("pending warnings by reason: %v, want idle and no_deal ones", reasons)
		}
		// Follow-ups in Chinese, over months, the latest recent.
		oldest, err := db.FollowUp.Query().Order(ent.Asc(followup.FieldOccurredAt)).First(ctx)
		if err != nil {
			t.Fatal(err)
		}
		newest, err := db.FollowUp.Query().Order(ent.Desc(followup.FieldOccurredAt)).First(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if end.Sub(oldest.OccurredAt) < 60*24*time.Hour || end.Sub(newest.OccurredAt) > 10*24*time.Hour || !strings.ContainsAny(oldest.Content, "客户的了") {
			t.Errorf("follow-ups from %v to %v (end %v): %q", oldest.OccurredAt, newest.OccurredAt, end, oldest.Content)
		}

		// Masking: a rep sees a pooled lead of the default pool masked.
		pooled, err := db.Lead.Query().Where(lead.OwnerIDIsNil(), lead.PoolID(lp.ID)).Order(ent.Asc(lead.FieldCreatedAt)).Limit(3).All(ctx)
		if err != nil || len(pooled) < 3 {
			t.Fatalf("pooled leads: %v", err)
		}
		claimer := rep("rep22@demo.shoal.dev")
		v, err := w.App.Records.GetLead(ctx, claimer, pooled[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if !v.Masked || !strings.Contains(v.Phone, "*") {
			t.Errorf("a rep sees a pooled lead unmasked: masked %v, phone %v", v.Masked, v.Phone)
		}
		// A rep claims from the demo pool.
		res, err := w.App.Pools.Claim(ctx, claimer, kinds.Lead, pooled[0].ID)
		if err != nil || res.After == nil || res.After.Lead.OwnerID == nil || *res.After.Lead.OwnerID != claimer.ID {
			t.Fatalf("claim from the demo pool: %+v, %v", res, err)
		}
		// The daily limit, the cap and the cooldown are reached.
		if _, err := w.App.Pools.Claim(ctx, rep(demo.LimitRepEmail), kinds.Lead, teamPooled(t, w, team.ID)); code(err) != "daily_limit_reached" {
			t.Errorf("a claim past the daily limit: %v", err)
		}
		if _, err := w.App.Pools.Claim(ctx, rep(demo.CapRepEmail), kinds.Lead, pooled[1].ID); code(err) != "cap_exceeded" {
			t.Errorf("a claim past the cap: %v", err)
		}
		cool := rep(demo.CooldownRepEmail)
		returned, err := db.OwnershipChange.Query().Where(ownershipchange.OperationEQ(ownershipchange.OperationReturn),
			ownershipchange.FromOwnerID(cool.ID)).Only(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.App.Pools.Claim(ctx, cool, kinds.Lead, returned.RecordID); code(err) != "claim_cooldown" {
			t.Errorf("claiming back a lead returned yesterday: %v", err)
		}
		// The overdue leads go at the next sweep.
		swept, err := w.App.Pools.Sweep(ctx, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(swept.Reclaimed) != sum.Overdue || sum.Overdue == 0 {
			t.Errorf("the sweep reclaimed %d, want the %d overdue leads", len(swept.Reclaimed), sum.Overdue)
		}
	})
}

// teamPooled is a pooled lead of the team pool.
func teamPooled(t *testing.T, w *testkit.World, poolID uuid.UUID) uuid.UUID {
	t.Helper()
	id, err := w.Store.Reader.Lead.Query().Where(lead.OwnerIDIsNil(), lead.PoolID(poolID)).FirstID(w.Ctx)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Two loads with the same options and end write the same content.
func TestDemoIsDeterministic(t *testing.T) {
	t.Parallel()
	end := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	content := func() []string {
		w := testkit.New(t, testdb.SQLite(t), app.Config{Clock: fixed(end)})
		if _, err := demo.Load(w.Ctx, w.Store, demo.Options{Leads: 20, Customers: 10, Now: end}, func(string) {}); err != nil {
			t.Fatal(err)
		}
		var out []string
		leads, err := w.Store.Reader.Lead.Query().Order(ent.Asc(lead.FieldCompany)).All(w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range leads {
			out = append(out, l.Company+" "+l.Phone+" "+l.CreatedAt.UTC().String())
		}
		fus, err := w.Store.Reader.FollowUp.Query().Order(ent.Asc(followup.FieldOccurredAt)).All(w.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fus {
			out = append(out, f.OccurredAt.UTC().String()+" "+f.Content)
		}
		return out
	}
	a, b := content(), content()
	if strings.Join(a, "\n") != strings.Join(b, "\n") || len(a) < 100 {
		t.Fatalf("two loads differ (%d and %d lines)", len(a), len(b))
	}
}
