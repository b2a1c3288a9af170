// Package demo loads a demo data set that shows every pool rule at work:
// pools with rules (idle and no-deal reclaim, warnings, daily limits,
// cooldowns, caps, masking, a claim-approval pool, a team pool), a few
// hundred pooled records ready to claim, owned records with months of
// follow-ups, some near their reclaim with warnings pending, some overdue
// (the server's first sweep reclaims them), frozen ones, pending claim
// requests, a rep at his daily limit and one at his cap.
//
// Everything goes through the services the API uses, so every rule applies
// to it; the story is told on a scripted clock, moved back and forth over
// the last four months, and the content comes from a seeded random source:
// two loads with the same options and end time write the same data.
package demo

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/app"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/patch"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

// Password is the password of every demo user.
const Password = "shoal-demo-2026"

// Emails of the demo's people.
const (
	AdminEmail = "admin@demo.shoal.dev"
	// LimitRepEmail reached today's claim limit of the 华东 lead pool.
	LimitRepEmail = "rep11@demo.shoal.dev"
	// CapRepEmail owns as many leads as his cap allows.
	CapRepEmail = "rep34@demo.shoal.dev"
	// CooldownRepEmail returned a lead yesterday and may not claim it back
	// for a week.
	CooldownRepEmail = "rep21@demo.shoal.dev"
)

// Names of the demo's own pools (the default pools keep theirs).
const (
	TeamLeadPool  = "华东线索池"
	ApprovalPool  = "重点客户池（领取需审批）"
	teamWithPool  = "华东大区"
	idleDays      = 15
	noDealDays    = 60
	teamDailyCap  = 10
	repLeadCap    = 6
	storyDays     = 120
	ownedLeadsPer = 6
	ownedCustsPer = 4
)

// Options shape a load.
type Options struct {
	// Leads and Customers are the pooled records to create (default 300
	// and 150); owned ones come on top.
	Leads, Customers int
	// Now is the end of the story: the time the data is "as of" (zero:
	// the wall clock). Deadlines and warnings are relative to it.
	Now    time.Time
	Logger *slog.Logger
}

// Summary counts what a load created.
type Summary struct {
	PooledLeads, PooledCustomers, OwnedLeads, OwnedCustomers int
	FollowUps, Frozen, Warnings, Overdue, ClaimRequests      int
}

// scripted is the clock the story is told on.
type scripted struct {
	mu sync.Mutex
	t  time.Time
}

func (c *scripted) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *scripted) set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// ErrNotEmpty is returned for a database that already has users.
var ErrNotEmpty = fmt.Errorf("the database already has users: `shoal seed --demo` loads only into an empty database " +
	"(use a new SQLite file, e.g. --database-url sqlite:./data/demo.db, or an empty PostgreSQL database)")

// Load tells the demo story into st, which must hold no users yet
// (ErrNotEmpty), and reports each step through out.
func Load(ctx context.Context, st *store.Store, o Options, out func(string)) (*Summary, error) {
	if o.Leads <= 0 {
		o.Leads = 300
	}
	if o.Customers <= 0 {
		o.Customers = 150
	}
	end := o.Now
	if end.IsZero() {
		end = time.Now()
	}
	end = end.UTC().Truncate(time.Second)
	n, err := st.Client.User.Query().Count(ctx)
	if err != nil {
		return nil, fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil, ErrNotEmpty
	}
	clk := &scripted{t: end.Add(-storyDays * 24 * time.Hour)}
	a, err := app.New(ctx, st, app.Config{Logger: o.Logger, Clock: clk, Version: "demo"})
	if err != nil {
		return nil, err
	}
	l := &loader{a: a, clk: clk, end: end, nLeads: o.Leads, nCustomers: o.Customers, rng: rand.New(rand.NewPCG(2026, 17)), out: out,
		companies: map[string]bool{}, phones: map[string]bool{}}
	for _, step := range []func(context.Context) error{l.organisation, l.pools, l.pooled, l.owned, l.today, l.sweep, l.overdue} {
		if err := step(ctx); err != nil {
			return nil, err
		}
	}
	return &l.sum, nil
}

type loader struct {
	a   *app.App
	clk *scripted
	end time.Time
	rng *rand.Rand
	out func(string)
	sum Summary

	admin *auth.Principal
	// reps by email, and in creation order.
	reps     map[string]*auth.Principal
	repOrder []*auth.Principal
	teams    map[string]*ent.Team
	sups     []uuid.UUID

	leadPool, custPool, teamPool, approvalPool *ent.Pool

	nLeads, nCustomers int
	companies, phones  map[string]bool
	seq                int
	// mine are records owned by each rep (for today's events).
	mineLeads map[uuid.UUID][]uuid.UUID
}

func (l *loader) at(daysBeforeEnd float64) {
	l.clk.set(l.end.Add(-time.Duration(daysBeforeEnd * float64(24*time.Hour))))
}

func (l *loader) organisation(ctx context.Context) error {
	a := l.a
	l.at(storyDays)
	created, err := a.Org.EnsureAdmin(ctx, AdminEmail, Password)
	if err != nil {
		return err
	}
	if !created {
		return ErrNotEmpty
	}
	admin, err := a.Store.Reader.User.Query().Only(ctx)
	if err != nil {
		return fmt.Errorf("load admin: %w", err)
	}
	l.admin = auth.UserPrincipal(admin)
	l.reps, l.teams, l.mineLeads = map[string]*auth.Principal{}, map[string]*ent.Team{}, map[uuid.UUID][]uuid.UUID{}
	hq, err := a.Org.CreateTeam(ctx, org.NewTeam{Name: "销售总部"})
	if err != nil {
		return err
	}
	for i, name := range []string{teamWithPool, "华南大区", "西南大区"} {
		in := org.NewTeam{Name: name, ParentID: &hq.ID}
		if i == 2 {
			cap := 25 // a team cap between the global one and a rep's own
			in.MaxOwnedLeads = &cap
		}
		t, err := a.Org.CreateTeam(ctx, in)
		if err != nil {
			return err
		}
		l.teams[name] = t
		sup, err := a.Org.CreateUser(ctx, org.NewUser{Email: fmt.Sprintf("supervisor%d@demo.shoal.dev", i+1),
			Name: l.person() + "（主管）", Role: auth.RoleSupervisor, TeamID: &t.ID, Password: Password})
		if err != nil {
			return err
		}
		l.sups = append(l.sups, sup.ID)
		for j := range 4 {
			in := org.NewUser{Email: fmt.Sprintf("rep%d%d@demo.shoal.dev", i+1, j+1), Name: l.person(), Role: auth.RoleRep,
				TeamID: &t.ID, Password: Password}
			if in.Email == CapRepEmail {
				in.MaxOwnedLeads = ptr(repLeadCap)
			}
			u, err := a.Org.CreateUser(ctx, in)
			if err != nil {
				return err
			}
			p := auth.UserPrincipal(u)
			l.reps[u.Email] = p
			l.repOrder = append(l.repOrder, p)
		}
	}
	if _, err := a.Org.CreateUser(ctx, org.NewUser{Email: "auditor@demo.shoal.dev", Name: l.person() + "（稽核）",
		Role: auth.RoleAuditor, Password: Password}); err != nil {
		return err
	}
	if _, err := a.Pools.UpdateSettings(ctx, ptr("*"), pool.SettingsPatch{MaxOwnedLeads: patch.Value(40),
		MaxOwnedCustomers: patch.Value(30), MaxFrozen: patch.Value(3)}); err != nil {
		return err
	}
	l.out(fmt.Sprintf("users: %s, supervisor1..3@, rep11..rep34@, auditor@demo.shoal.dev (password %s)", AdminEmail, Password))
	l.out("caps: 40 leads, 30 customers, 3 frozen per rep; 西南大区 25 leads; " + CapRepEmail + " 6 leads")
	return nil
}

func (l *loader) pools(ctx context.Context) error {
	a, admin := l.a, l.admin
	var err error
	rules := func(in pool.PoolInput, notify, cooldown, daily int, visible ...string) pool.PoolInput {
		in.IdleDays, in.NotifyDaysBefore = patch.Value(idleDays), patch.Value(notify)
		in.ClaimCooldownDays, in.DailyClaimLimit = patch.Value(cooldown), patch.Value(daily)
		in.FreezeMaxDays, in.VisibleFields = patch.Value(30), patch.Value(visible)
		return in
	}
	if l.leadPool, err = a.Pools.UpdatePool(ctx, admin, pool.DefaultPoolID(kinds.Lead), ptr("*"),
		rules(pool.PoolInput{}, 3, 7, 30, "company", "region", "industry", "source")); err != nil {
		return err
	}
	cust := rules(pool.PoolInput{}, 5, 7, 20, "name", "region", "industry")
	cust.NoDealDays = patch.Value(noDealDays)
	cust.ByGrade = &map[string]schema.GradeRule{"A": {IdleDays: ptr(30)}}
	if l.custPool, err = a.Pools.UpdatePool(ctx, admin, pool.DefaultPoolID(kinds.Customer), ptr("*"), cust); err != nil {
		return err
	}
	east := l.teams[teamWithPool]
	team := rules(pool.PoolInput{Kind: string(kinds.Lead), Name: ptr(TeamLeadPool), MemberTeamIDs: &[]uuid.UUID{east.ID},
		ManagerIDs: &[]uuid.UUID{l.sups[0]}}, 3, 3, teamDailyCap, "company", "region", "industry")
	if l.teamPool, err = a.Pools.CreatePool(ctx, admin, team); err != nil {
		return err
	}
	if _, err := a.Org.UpdateTeam(ctx, east.ID, ptr("*"), org.TeamPatch{DefaultPools: org.DefaultPoolsPatch{Lead: patch.Value(l.teamPool.ID)}}); err != nil {
		return err
	}
	appr := rules(pool.PoolInput{Kind: string(kinds.Customer), Name: ptr(ApprovalPool), ManagerIDs: &l.sups,
		ClaimRequiresApproval: ptr(true)}, 5, 7, 5, "name", "region", "industry")
	appr.NoDealDays = patch.Value(noDealDays)
	if l.approvalPool, err = a.Pools.CreatePool(ctx, admin, appr); err != nil {
		return err
	}
	l.out(fmt.Sprintf("pools: %s and %s (idle %d days, no deal %d, warnings, daily limits, cooldowns, masking), %s (华东大区's default lead pool, limit %d a day), %s",
		l.leadPool.Name, l.custPool.Name, idleDays, noDealDays, TeamLeadPool, teamDailyCap, ApprovalPool))
	return nil
}

// pooled creates the pooled records, spread over the story's months.
func (l *loader) pooled(ctx context.Context) error {
	for i := range l.nLeads {
		l.at(storyDays - 1 - float64(i)*(storyDays-2)/float64(l.nLeads))
		target := l.leadPool.ID
		if i%10 < 3 {
			target = l.teamPool.ID
		}
		if _, err := l.a.Records.CreateLead(ctx, l.admin, l.lead(&target)); err != nil {
			return fmt.Errorf("pooled lead: %w", err)
		}
		l.sum.PooledLeads++
	}
	for i := range l.nCustomers {
		l.at(storyDays - 1 - float64(i)*(storyDays-2)/float64(l.nCustomers))
		target := l.custPool.ID
		if i%10 == 0 {
			target = l.approvalPool.ID
		}
		if _, err := l.a.Records.CreateCustomer(ctx, l.admin, l.customer(&target)); err != nil {
			return fmt.Errorf("pooled customer: %w", err)
		}
		l.sum.PooledCustomers++
	}
	l.out(fmt.Sprintf("leads: %d pooled", l.sum.PooledLeads))
	l.out(fmt.Sprintf("customers: %d pooled", l.sum.PooledCustomers))
	return nil
}

// owned gives every rep records of his own with months of follow-ups:
// most are healthy, some are near their idle or no-deal deadline (warned
// at the end), some are frozen.
func (l *loader) owned(ctx context.Context) error {
	for r, rep := range l.repOrder {
		nLeads := ownedLeadsPer
		if l.isCapRep(rep) {
			nLeads = repLeadCap // exactly at his cap
		}
		for j := range nLeads {
			start := 20 + l.rng.Float64()*80
			last := 1 + l.rng.Float64()*8 // healthy: followed up within the last days
			if j == 0 {
				last = 12.3 + l.rng.Float64()*2.4 // due in under 3 days: warned
			}
			l.at(start)
			v, err := l.a.Records.CreateLead(ctx, rep, l.lead(nil))
			if err != nil {
				return fmt.Errorf("owned lead: %w", err)
			}
			if v.OwnerID == nil {
				return fmt.Errorf("demo lead of %s was not his (placement %s)", rep.Name, v.Placement)
			}
			l.sum.OwnedLeads++
			l.mineLeads[rep.ID] = append(l.mineLeads[rep.ID], v.ID)
			if err := l.followUps(ctx, rep, kinds.Lead, v.ID, start, last); err != nil {
				return err
			}
			if j == 1 && r%3 == 0 { // a frozen one: the rep is on it, the pool must wait
				l.at(3)
				if _, err := l.a.Pools.Freeze(ctx, rep, kinds.Lead, v.ID, ptr(l.end.Add(20*24*time.Hour))); err != nil {
					return fmt.Errorf("freeze: %w", err)
				}
				l.sum.Frozen++
			}
		}
		for j := range ownedCustsPer {
			start := 10 + l.rng.Float64()*45
			last := 1 + l.rng.Float64()*8
			if j == 0 {
				start = noDealDays - 2.5 - l.rng.Float64()*2 // no deal in under 5 days: warned
			}
			l.at(start)
			v, err := l.a.Records.CreateCustomer(ctx, rep, l.customer(nil))
			if err != nil {
				return fmt.Errorf("owned customer: %w", err)
			}
			l.sum.OwnedCustomers++
			if err := l.followUps(ctx, rep, kinds.Customer, v.ID, start, last); err != nil {
				return err
			}
		}
	}
	l.out(fmt.Sprintf("owned: %d leads, %d customers with %d follow-ups over the last months; %d frozen",
		l.sum.OwnedLeads, l.sum.OwnedCustomers, l.sum.FollowUps, l.sum.Frozen))
	return nil
}

func (l *loader) isCapRep(p *auth.Principal) bool { return l.reps[CapRepEmail] == p }

// followUps logs follow-ups from start (days before the end) to last,
// every few days, as the owner.
func (l *loader) followUps(ctx context.Context, rep *auth.Principal, kind kinds.Kind, id uuid.UUID, start, last float64) error {
	for d := start - 1 - l.rng.Float64()*3; ; d -= 4 + l.rng.Float64()*8 {
		if d < last {
			d = last
		}
		l.at(d)
		if _, err := l.a.Records.CreateFollowUp(ctx, rep, records.FollowUpInput{SubjectType: string(kind), SubjectID: id,
			Channel: channels[l.rng.IntN(len(channels))], Content: l.note(), OccurredAt: l.clk.Now().Add(-time.Duration(l.rng.IntN(120)) * time.Minute)}); err != nil {
			return fmt.Errorf("follow-up: %w", err)
		}
		l.sum.FollowUps++
		if d == last {
			return nil
		}
	}
}

// today: a rep uses up his daily limit in the team pool, one returns a
// lead (and cools down on it), two file claims in the approval pool.
func (l *loader) today(ctx context.Context) error {
	a := l.a
	// At the end itself, so that the claims fall on the end's day, the
	// "today" of daily limits.
	l.at(0)
	limited := l.reps[LimitRepEmail]
	pooled, err := a.Store.Reader.Lead.Query().Where(lead.PoolID(l.teamPool.ID), lead.OwnerIDIsNil()).Order(ent.Asc(lead.FieldCreatedAt)).Limit(teamDailyCap).IDs(ctx)
	if err != nil {
		return fmt.Errorf("team pool leads: %w", err)
	}
	for _, id := range pooled {
		if _, err := a.Pools.Claim(ctx, limited, kinds.Lead, id); err != nil {
			return fmt.Errorf("claim for the daily limit: %w", err)
		}
	}
	l.at(1)
	cool := l.reps[CooldownRepEmail]
	mine := l.mineLeads[cool.ID]
	if err := a.Pools.Return(ctx, cool, kinds.Lead, mine[len(mine)-1], "客户已选择其他供应商，暂无合作可能"); err != nil {
		return fmt.Errorf("return: %w", err)
	}
	l.at(0)
	waiting, err := a.Store.Reader.Customer.Query().Where(customer.PoolID(l.approvalPool.ID), customer.OwnerIDIsNil()).Order(ent.Asc(customer.FieldCreatedAt)).Limit(2).IDs(ctx)
	if err != nil {
		return fmt.Errorf("approval pool customers: %w", err)
	}
	for i, id := range waiting {
		res, err := a.Pools.Claim(ctx, l.repOrder[4+i], kinds.Customer, id)
		if err != nil {
			return fmt.Errorf("claim request: %w", err)
		}
		if res.Request != nil {
			l.sum.ClaimRequests++
		}
	}
	l.out(fmt.Sprintf("today: %s claimed %d from %s (its daily limit); %s returned a lead (cooldown 7 days); %d claim requests wait for approval",
		LimitRepEmail, len(pooled), TeamLeadPool, CooldownRepEmail, l.sum.ClaimRequests))
	return nil
}

// sweep runs the sweep as of the end: it warns the owners of records due
// within their pool's notice.
func (l *loader) sweep(ctx context.Context) error {
	l.at(0)
	res, err := l.a.Pools.Sweep(ctx, nil, false)
	if err != nil {
		return fmt.Errorf("sweep: %w", err)
	}
	l.sum.Warnings = len(res.Warned)
	l.out(fmt.Sprintf("warnings: %d owners warned of a reclaim within days", l.sum.Warnings))
	return nil
}

// overdue gives three reps a lead left idle past its deadline: the
// server's first sweep (a minute after start) reclaims them.
func (l *loader) overdue(ctx context.Context) error {
	for _, rep := range l.repOrder[1:4] {
		l.at(idleDays + 0.5 + l.rng.Float64())
		if _, err := l.a.Records.CreateLead(ctx, rep, l.lead(nil)); err != nil {
			return fmt.Errorf("overdue lead: %w", err)
		}
		l.sum.Overdue++
	}
	l.at(0)
	l.out(fmt.Sprintf("overdue: %d idle leads that the server's first sweep reclaims", l.sum.Overdue))
	return nil
}

func ptr[T any](v T) *T { return &v }
