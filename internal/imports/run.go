package imports

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/apikey"
	entimport "github.com/shoalcrm/shoal/ent/bulkimport"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/money"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

// errDryRun rolls a dry run's batch back.
var errDryRun = errors.New("dry run: roll the batch back")

// plan is an import's file read and checked once per run of the job.
type plan struct {
	imp      *ent.BulkImport
	actor    *auth.Principal
	kind     kinds.Kind
	cols     *Columns
	table    *Table
	problems [][]schema.ImportProblem
}

// Run works an import to its end, batch by batch (the job's work). It is
// safe to run again and resumes after the last committed batch; an import
// that ended does nothing. A refusal no row can pass (the importer was
// deactivated, the pool is gone or no longer his) fails the import, with
// what earlier batches did, and is not an error: a retry would not help.
func (s *Service) Run(ctx context.Context, id uuid.UUID) error {
	pl, err := s.plan(ctx, id)
	for err == nil && pl != nil {
		var done bool
		if done, err = s.step(ctx, pl); done {
			return err
		}
	}
	var refused refusal
	if errors.As(err, &refused) {
		return s.fail(ctx, id, refused.err)
	}
	return err
}

// refusal is a rule refusal that stops the whole import.
type refusal struct{ err error }

func (r refusal) Error() string { return r.err.Error() }

// plan loads the import, its actor and its file; nil when it has ended.
// Why it cannot run (the importer may no longer act, the file no longer
// reads) is a refusal: the import fails.
func (s *Service) plan(ctx context.Context, id uuid.UUID) (*plan, error) {
	imp, err := s.store.Reader.BulkImport.Get(ctx, id)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load import: %w", err)
	}
	if ended(imp.Status) {
		return nil, nil
	}
	pl := &plan{imp: imp, kind: kinds.Kind(imp.Kind)}
	pl.actor, err = s.actor(ctx, imp)
	if err != nil {
		return nil, err
	}
	if pl.actor == nil {
		return nil, refusal{apperr.New(apperr.Forbidden, "forbidden", "the importer is no longer active")}
	}
	if pl.kind == KindProduct {
		// The importer may have lost the right since he asked.
		if err := s.mayImportProducts(pl.actor); err != nil {
			return nil, refusal{err}
		}
	}
	if pl.table, err = Parse(imp.Content, imp.Encoding); err != nil {
		return nil, refusal{err}
	}
	if pl.cols, err = MapColumns(string(imp.Kind), pl.table.Header, imp.Mapping); err != nil {
		return nil, refusal{err}
	}
	pl.problems = Prepare(string(imp.Kind), pl.cols, pl.table)
	// The content is parsed: do not keep 20 MB alive for the whole run.
	pl.imp.Content = nil
	return pl, nil
}

func ended(st entimport.Status) bool {
	return st == entimport.StatusSucceeded || st == entimport.StatusFailed
}

// actor is the principal rows are created as: the user or API key that
// asked; nil when it may no longer act (deactivated, revoked).
func (s *Service) actor(ctx context.Context, imp *ent.BulkImport) (*auth.Principal, error) {
	if imp.ActorType == entimport.ActorTypeAPIKey {
		k, err := s.store.Reader.APIKey.Query().Where(apikey.ID(imp.ActorID)).Only(ctx)
		if ent.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("load import key: %w", err)
		}
		if k.RevokedAt != nil || (k.ExpiresAt != nil && !s.clock.Now().Before(*k.ExpiresAt)) {
			return nil, nil
		}
		return &auth.Principal{Type: auth.ActorAPIKey, ID: k.ID, Name: k.Name, Scopes: k.Scopes, PoolID: k.PoolID, CreatedBy: k.CreatedBy}, nil
	}
	u, err := s.store.Reader.User.Query().Where(user.ID(imp.ActorID)).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load importer: %w", err)
	}
	if !u.Active {
		return nil, nil
	}
	return auth.UserPrincipal(u), nil
}

// progress is an import's state after a batch.
type progress struct {
	processed int
	counts    schema.ImportCounts
	problems  []schema.ImportProblem
	nproblems int
}

func (g *progress) add(ps ...schema.ImportProblem) {
	for _, p := range ps {
		g.nproblems++
		if len(g.problems) < MaxProblems {
			// A header is the client's text: bounded as the contract
			// bounds it.
			p.Column, p.Message = truncate(p.Column, 200), truncate(p.Message, 500)
			g.problems = append(g.problems, p)
		}
	}
}

// step works the next batch: one transaction that writes its good rows
// (each in a savepoint) and records the progress; a dry run's batch is
// rolled back and its progress recorded in a transaction of its own. It
// reports whether the import has ended.
func (s *Service) step(ctx context.Context, pl *plan) (bool, error) {
	var next progress
	done, dry, start := false, false, 0
	err := s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		imp, err := s.lockImport(ctx, tx, pl.imp.ID)
		if err != nil {
			return err
		}
		if ended(imp.Status) {
			done = true
			return nil
		}
		dry, start = imp.DryRun, imp.Processed
		next = progress{processed: imp.Processed, counts: imp.Counts, problems: append([]schema.ImportProblem(nil), imp.Problems...),
			nproblems: imp.ProblemCount}
		if next.counts.OwnedBy == nil {
			next.counts.OwnedBy = map[string]int{}
		}
		if dry {
			if err := s.carryCaps(ctx, tx, pl.kind, next.counts.OwnedBy); err != nil {
				return err
			}
		}
		if err := s.batch1(ctx, tx, pl, &next); err != nil {
			return err
		}
		done = next.processed >= len(pl.table.Rows)
		if dry {
			return errDryRun
		}
		return s.record(ctx, tx, pl, imp, next, done)
	})
	if !errors.Is(err, errDryRun) {
		return done, err
	}
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		imp, err := s.lockImport(ctx, tx, pl.imp.ID)
		if err != nil {
			return err
		}
		if ended(imp.Status) || imp.Processed != start {
			// Another run of the job recorded this batch meanwhile (a
			// rescued job): keep its record.
			done = ended(imp.Status)
			return nil
		}
		return s.record(ctx, tx, pl, imp, next, done)
	})
	return done, err
}

// lockImport loads the import (without its file) locked in tx.
func (s *Service) lockImport(ctx context.Context, tx *ent.Tx, id uuid.UUID) (*ent.BulkImport, error) {
	imp, err := store.ForUpdate(s.store, tx.BulkImport.Query().Where(entimport.ID(id))).Select(listColumns...).Only(ctx)
	if err != nil {
		return nil, fmt.Errorf("load import: %w", err)
	}
	return imp, nil
}

// batchLen is how many rows the batch starting after processed holds.
func (s *Service) batchLen(processed, total int) int {
	return min(s.batch, total-processed)
}

// batch1 writes (or, dry, tries) the rows of the next batch in tx and
// adds what it did to g, in the order of the rows.
func (s *Service) batch1(ctx context.Context, tx *ent.Tx, pl *plan, g *progress) error {
	if g.processed == 0 {
		for _, i := range pl.cols.Unknown {
			g.add(schema.ImportProblem{Row: 1, Column: strings.TrimSpace(pl.cols.Header[i]), Code: CodeUnknownColumn,
				Message: "no field has this header: the column is ignored (give a mapping to import it)"})
		}
	}
	start := g.processed
	end := start + s.batchLen(start, len(pl.table.Rows))
	outs := make([]outcome, end-start)
	var todo []Row
	var at []int
	for i := start; i < end; i++ {
		if ps := pl.problems[i]; len(ps) > 0 {
			outs[i-start] = outcome{problems: ps, dup: ps[0].Code == CodeDuplicateInFile}
			continue
		}
		r := pl.cols.RowOf(i, pl.table.Rows[i])
		if len(r.Values) == 0 {
			continue
		}
		todo, at = append(todo, r), append(at, i-start)
	}
	done, err := s.createRows(ctx, tx, pl, todo)
	if err != nil {
		return err
	}
	for j, o := range done {
		outs[at[j]] = o
	}
	for _, o := range outs {
		s.tally(pl, g, o)
	}
	g.processed = end
	return nil
}

// outcome is what became of one row of a batch.
type outcome struct {
	row      int // its number in the file
	created  bool
	how      string     // created: its placement
	owner    *uuid.UUID // created and owned: its owner
	problems []schema.ImportProblem
	dup      bool // not created: a duplicate, else invalid
}

// tally adds a row's outcome to g.
func (s *Service) tally(pl *plan, g *progress, o outcome) {
	if !o.created {
		if len(o.problems) == 0 {
			return // an empty row
		}
		g.add(o.problems...)
		if o.dup {
			g.counts.Duplicates++
		} else {
			g.counts.Invalid++
		}
		return
	}
	g.counts.Created++
	if pl.kind == KindProduct {
		return // no placement: products have no owner and no pool
	}
	switch o.how {
	case pool.PlacedOwned:
		g.counts.Owned++
		if o.owner != nil {
			g.counts.OwnedBy[o.owner.String()]++
		}
	case pool.PlacedAutoAssigned:
		g.counts.AutoAssigned++
	default:
		g.counts.Pooled++
		if pl.imp.PoolID == nil && pl.actor.Type == auth.ActorUser && pl.actor.PoolID == nil {
			// Created into no pool by a person, it went to the
			// pool because he is at his cap (createLead's rule).
			g.counts.OverCap++
			g.add(schema.ImportProblem{Row: o.row, Code: CodeOverCap,
				Message: "created in the pool, not owned: the importer is at his cap"})
		}
	}
}

// createRows creates the batch's rows that passed the file's checks, in
// tx, and returns their outcomes. Leads go together: one duplicate
// look-up for the batch, then the rows no record's key stops through
// records.CreateLeadsIn (a multi-row insert per table) in a savepoint;
// then the rows the look-up stopped go one by one, each in a savepoint of
// its own, to be reported as createLead reports them. Should the batch
// fail (a concurrent writer claimed one of its keys after the look-up, a
// rule refused it), the savepoint undoes it and all the rows go one by
// one, in the file's order, as before batches, which finds the row at
// fault. Customers go one by one.
func (s *Service) createRows(ctx context.Context, tx *ent.Tx, pl *plan, rows []Row) ([]outcome, error) {
	outs := make([]outcome, len(rows))
	oneByOne := func(idx []int) error {
		for _, j := range idx {
			o, err := s.oneRow(ctx, tx, pl, rows[j])
			if err != nil {
				return err
			}
			outs[j] = o
		}
		return nil
	}
	all := make([]int, len(rows))
	for j := range all {
		all[j] = j
	}
	if pl.kind != kinds.Lead || len(rows) == 0 {
		return outs, oneByOne(all)
	}
	ins := make([]records.LeadInput, len(rows))
	for j, r := range rows {
		ins[j] = leadInput(pl, r)
	}
	dup, err := s.records.LeadDuplicates(ctx, tx, ins)
	if err != nil {
		return nil, err
	}
	var single, batch []int
	for j := range rows {
		if dup[j] {
			single = append(single, j)
		} else {
			batch = append(batch, j)
		}
	}
	if len(batch) == 0 {
		return outs, oneByOne(single)
	}
	bins := make([]records.LeadInput, len(batch))
	for k, j := range batch {
		bins[k] = ins[j]
	}
	var hows []string
	if s.beforeBatch != nil {
		s.beforeBatch(ctx, tx)
	}
	err = inSavepoint(ctx, tx, "import_batch", false, func() error {
		var err error
		_, hows, err = s.records.CreateLeadsIn(ctx, tx, pl.actor, bins, pl.imp.PoolID)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// All of them in the file's order, as before batches.
		return outs, oneByOne(all)
	}
	for k, j := range batch {
		o := outcome{row: rows[j].Num, created: true, how: hows[k]}
		if o.how == pool.PlacedOwned {
			id := pl.actor.ID
			o.owner = &id
		}
		outs[j] = o
	}
	// After the batch: a row that repeats a key of one of its rows is
	// that row's duplicate, as it would have been one by one.
	return outs, oneByOne(single)
}

// oneRow creates one row in a savepoint of its own: a row a rule refuses
// (a duplicate above all) is rolled back and reported; a refusal no row
// could pass stops the import (refusal).
func (s *Service) oneRow(ctx context.Context, tx *ent.Tx, pl *plan, r Row) (outcome, error) {
	var how string
	var owner *uuid.UUID
	err := inSavepoint(ctx, tx, "import_row", false, func() error {
		var err error
		how, owner, err = s.createRow(ctx, tx, pl, r)
		return err
	})
	if err != nil {
		if p, ok := s.rowProblem(pl, r, err); ok {
			return outcome{row: r.Num, problems: p, dup: p[0].Code == CodeDuplicate}, nil
		}
		if e, ok := apperr.As(err); ok && e.Kind != apperr.Internal {
			return outcome{}, refusal{err}
		}
		return outcome{}, err
	}
	return outcome{row: r.Num, created: true, how: how, owner: owner}, nil
}

// leadInput is a row of a lead file as createLead's input.
func leadInput(pl *plan, r Row) records.LeadInput {
	v := rowValue(r)
	var tags *[]string
	if t, ok := r.Values["tags"]; ok {
		tt := splitTags(t)
		tags = &tt
	}
	return records.LeadInput{Name: v("name"), Company: v("company"), Phone: v("phone"), Email: v("email"), Source: v("source"),
		Region: v("region"), Industry: v("industry"), Notes: v("notes"), Tags: tags, PoolID: pl.imp.PoolID}
}

// rowValue reads a row's fields: nil when the row has none.
func rowValue(r Row) func(f string) *string {
	return func(f string) *string {
		if x, ok := r.Values[f]; ok {
			return &x
		}
		return nil
	}
}

// productInput is a row of a products file as createProduct's input (its
// fields passed Check).
func productInput(r Row) (products.Input, error) {
	v := rowValue(r)
	in := products.Input{SKU: r.Values["sku"], Name: r.Values["name"], Category: v("category"), Unit: v("unit"),
		Specification: v("specification")}
	var err error
	if in.ListPrice, err = products.ParseAmount("listPrice", r.Values["listPrice"]); err != nil {
		return in, err
	}
	if c, ok := r.Values["internalCost"]; ok {
		var cost money.Money
		if cost, err = products.ParseAmount("internalCost", c); err != nil {
			return in, err
		}
		in.InternalCost = &cost
	}
	if a, ok := r.Values["active"]; ok {
		if on, ok := parseActive(a); ok {
			in.Active = &on
		}
	}
	return in, nil
}

// createRow creates one row's record through the records service and
// returns its placement and, when owned, its owner.
func (s *Service) createRow(ctx context.Context, tx *ent.Tx, pl *plan, r Row) (string, *uuid.UUID, error) {
	v := rowValue(r)
	var tags *[]string
	if t, ok := r.Values["tags"]; ok {
		tt := splitTags(t)
		tags = &tt
	}
	var how string
	var err error
	switch pl.kind {
	case kinds.Lead:
		_, how, err = s.records.CreateLeadIn(ctx, tx, pl.actor, leadInput(pl, r))
	case kinds.Customer:
		in := records.CustomerInput{Name: v("name"), Industry: v("industry"), Region: v("region"), Address: v("address"),
			Website: v("website"), CreditLevel: v("creditLevel"), Source: v("source"), Tags: tags, PoolID: pl.imp.PoolID}
		if g := v("grade"); g != nil {
			in.Grade.Set, in.Grade.Value = true, g
		}
		var first *records.ContactInput
		if v("contactName") != nil || v("contactPhone") != nil || v("contactEmail") != nil {
			name := v("contactName")
			if name == nil {
				name = v("name") // a contact without a name is called after its company
			}
			first = &records.ContactInput{Name: name, Title: v("contactTitle"), Phone: v("contactPhone"), Email: v("contactEmail")}
		}
		_, how, err = s.records.CreateCustomerIn(ctx, tx, pl.actor, in, first)
	case KindProduct:
		var in products.Input
		if in, err = productInput(r); err == nil {
			_, err = s.products.CreateIn(ctx, tx, pl.actor, in)
		}
	default:
		err = fmt.Errorf("import: unknown kind %q", pl.kind)
	}
	if err != nil {
		return "", nil, err
	}
	var owner *uuid.UUID
	if how == pool.PlacedOwned {
		id := pl.actor.ID
		owner = &id
	}
	return how, owner, nil
}

// rowProblem turns a row's refusal into its problems; false for an error
// that is no row's (an internal one, or a refusal every row would meet).
func (s *Service) rowProblem(pl *plan, r Row, err error) ([]schema.ImportProblem, bool) {
	if products.IsSKUTaken(err) {
		return []schema.ImportProblem{{Row: r.Num, Column: pl.cols.column("sku"), Field: "sku", Code: CodeDuplicate,
			Message: "a product with the same sku already exists"}}, true
	}
	if m, ok := records.DuplicateOn(err); ok {
		var out []schema.ImportProblem
		seen := map[string]bool{}
		for _, x := range m {
			f := fieldOfMatch(string(pl.kind), x.MatchedOn)
			if seen[f] {
				continue
			}
			seen[f] = true
			what := x.Kind
			if what == "" {
				what = "record"
			}
			out = append(out, schema.ImportProblem{Row: r.Num, Column: pl.cols.column(f), Field: f, Code: CodeDuplicate,
				Message: fmt.Sprintf("a %s with the same %s already exists", what, x.MatchedOn)})
		}
		if len(out) == 0 {
			out = append(out, schema.ImportProblem{Row: r.Num, Code: CodeDuplicate, Message: "a record with the same name, phone or email already exists"})
		}
		return out, true
	}
	e, ok := apperr.As(err)
	if !ok || e.Kind == apperr.Internal {
		return nil, false
	}
	// A refusal about where rows go (the pool) or who creates them is no
	// row's: it stops the import.
	if e.Kind == apperr.Forbidden || e.Kind == apperr.NotFound {
		return nil, false
	}
	for _, f := range e.Fields {
		if strings.HasPrefix(f.Field, "body/poolId") {
			return nil, false
		}
	}
	return []schema.ImportProblem{{Row: r.Num, Code: CodeRefused, Message: e.Code + ": " + e.Message}}, true
}

// carryCaps adds, in a dry run's batch (rolled back), the records earlier
// batches would have given each owner to his counter, so that the batch
// meets the caps a real run would.
func (s *Service) carryCaps(ctx context.Context, tx *ent.Tx, kind kinds.Kind, ownedBy map[string]int) error {
	for id, n := range ownedBy {
		uid, err := uuid.Parse(id)
		if err != nil || n == 0 {
			continue
		}
		upd := tx.User.Update().Where(user.ID(uid))
		if err := upd.Mutation().AddField(kind.Desc().OwnedCounter, n); err != nil {
			return fmt.Errorf("carry caps: %w", err)
		}
		if err := upd.Exec(ctx); err != nil {
			return fmt.Errorf("carry caps: %w", err)
		}
	}
	return nil
}

// record writes the progress g into the import, in tx; done ends it.
func (s *Service) record(ctx context.Context, tx *ent.Tx, pl *plan, imp *ent.BulkImport, g progress, done bool) error {
	now := s.now()
	upd := tx.BulkImport.UpdateOneID(imp.ID).SetProcessed(g.processed).SetCounts(g.counts).SetProblems(g.problems).
		SetProblemCount(g.nproblems).SetUpdatedAt(now)
	imp.Processed, imp.Counts, imp.Problems, imp.ProblemCount = g.processed, g.counts, g.problems, g.nproblems
	if done {
		upd.SetStatus(entimport.StatusSucceeded).SetFinishedAt(now)
		imp.Status, imp.FinishedAt = entimport.StatusSucceeded, &now
	} else {
		upd.SetStatus(entimport.StatusRunning)
	}
	if err := upd.Exec(ctx); err != nil {
		return fmt.Errorf("record import progress: %w", err)
	}
	if done {
		return s.emitFinished(ctx, tx, pl.actor, imp)
	}
	return nil
}

// fail marks the import failed with why, in a transaction of its own.
func (s *Service) fail(ctx context.Context, id uuid.UUID, why error) error {
	msg := why.Error()
	if e, ok := apperr.As(why); ok {
		msg = e.Code + ": " + e.Message
	}
	msg = truncate(msg, 500)
	return s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		imp, err := s.lockImport(ctx, tx, id)
		if err != nil {
			return err
		}
		if ended(imp.Status) {
			return nil
		}
		now := s.now()
		imp.Status, imp.FinishedAt = entimport.StatusFailed, &now
		if err := tx.BulkImport.UpdateOneID(id).SetStatus(entimport.StatusFailed).SetError(msg).SetFinishedAt(now).
			SetUpdatedAt(now).Exec(ctx); err != nil {
			return fmt.Errorf("fail import: %w", err)
		}
		return s.emitFinished(ctx, tx, nil, imp)
	})
}

// emitFinished writes import.finished as the importer (a failure found
// before the importer was loaded names him by the import's actor).
func (s *Service) emitFinished(ctx context.Context, tx *ent.Tx, actor *auth.Principal, imp *ent.BulkImport) error {
	ev := events.Event{Type: events.ImportFinished, SubjectKind: events.KindImport, SubjectID: imp.ID, Data: payload(imp)}
	if actor != nil {
		ev.Actor = actor.EventActor()
	} else {
		typ := string(auth.ActorUser)
		if imp.ActorType == entimport.ActorTypeAPIKey {
			typ = string(auth.ActorAPIKey)
		}
		ev.Actor = events.Actor{Type: typ, ID: &imp.ActorID}
	}
	ev.OccurredAt = *imp.FinishedAt
	return events.Emit(ctx, tx, ev)
}
