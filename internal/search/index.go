package search

import (
	"context"
	stdsql "database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/contact"
	"github.com/shoalcrm/shoal/ent/customer"
	"github.com/shoalcrm/shoal/ent/lead"
	"github.com/shoalcrm/shoal/ent/searchgram"
	"github.com/shoalcrm/shoal/internal/kinds"
)

// Reindex rewrites, in tx, the grams of the record of kind with id from
// what tx sees of it now. Every write of a searchable field (a lead's or
// customer's name, a lead's company, phone or email, and a customer's
// contacts) calls it in the same transaction, after the write, so the
// index never disagrees with a committed row.
func Reindex(ctx context.Context, tx *ent.Tx, kind kinds.Kind, id uuid.UUID) error {
	if err := reindex(ctx, tx.Client(), kind, []uuid.UUID{id}); err != nil {
		return fmt.Errorf("reindex %s: %w", kind, err)
	}
	return nil
}

// IndexNew indexes, in tx, records of kind just created in it (a batch
// of an import), which have no grams yet: one load, then a multi-row
// INSERT per chunk of grams written as SQL of the dialect (sql.Dialect of
// the store), not through ent: the grams of a batch of 200 leads are some
// 8,000 rows, and ent's bulk create runs its hooks once per row, nested.
// It writes the rows Reindex would.
func IndexNew(ctx context.Context, tx *ent.Tx, dialect string, kind kinds.Kind, ids []uuid.UUID) error {
	if len(ids) == 0 {
		return nil
	}
	docs, err := load(ctx, tx.Client(), kind, ids)
	if err != nil {
		return fmt.Errorf("index %s: %w", kind, err)
	}
	// In chunks: SQLite takes at most 32766 parameters a statement.
	const chunk = 2000
	var ins *sql.InsertBuilder
	n := 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		// DO NOTHING as reindex: a backfill may write the same grams.
		query, args := ins.OnConflict(sql.DoNothing()).Query()
		if _, err := tx.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("index %s: insert grams: %w", kind, err)
		}
		n = 0
		return nil
	}
	for _, id := range ids {
		for _, g := range docs[id].Grams() {
			// The schema's checks, as ent's create runs them.
			if err := searchgram.GramValidator(g); err != nil {
				return fmt.Errorf("index %s: gram %q: %w", kind, g, err)
			}
			if n == 0 {
				ins = sql.Dialect(dialect).Insert(searchgram.Table).
					Columns(searchgram.FieldGram, searchgram.FieldRecordKind, searchgram.FieldRecordID)
			}
			ins.Values(g, string(kind), id)
			if n++; n == chunk {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return flush()
}

// Drop removes, in tx, the grams of records of kind that left circulation
// (merged into another): no search may find them again.
func Drop(ctx context.Context, tx *ent.Tx, kind kinds.Kind, ids ...uuid.UUID) error {
	if _, err := tx.SearchGram.Delete().Where(searchgram.RecordKind(string(kind)), searchgram.RecordIDIn(ids...)).Exec(ctx); err != nil {
		return fmt.Errorf("drop grams of %s: %w", kind, err)
	}
	return nil
}

// reindex rewrites the grams of the records of kind with ids.
func reindex(ctx context.Context, c *ent.Client, kind kinds.Kind, ids []uuid.UUID) error {
	docs, err := load(ctx, c, kind, ids)
	if err != nil {
		return err
	}
	if _, err := c.SearchGram.Delete().Where(searchgram.RecordKind(string(kind)), searchgram.RecordIDIn(ids...)).Exec(ctx); err != nil {
		return fmt.Errorf("delete grams: %w", err)
	}
	var rows []*ent.SearchGramCreate
	for _, id := range ids {
		for _, g := range docs[id].Grams() {
			rows = append(rows, c.SearchGram.Create().SetGram(g).SetRecordKind(string(kind)).SetRecordID(id))
		}
	}
	// In chunks: SQLite takes at most 32766 parameters a statement.
	const chunk = 2000
	for len(rows) > 0 {
		n := min(chunk, len(rows))
		// DO NOTHING: two replicas backfilling at once (see Backfill)
		// write the same grams.
		if err := c.SearchGram.CreateBulk(rows[:n]...).OnConflict(sql.DoNothing()).Exec(ctx); err != nil {
			return fmt.Errorf("insert grams: %w", err)
		}
		rows = rows[n:]
	}
	return nil
}

// load reads the documents of the records of kind with ids (a record
// that no longer exists has none).
func load(ctx context.Context, c *ent.Client, kind kinds.Kind, ids []uuid.UUID) (map[uuid.UUID]Doc, error) {
	docs := make(map[uuid.UUID]Doc, len(ids))
	switch kind {
	case kinds.Lead:
		rows, err := c.Lead.Query().Where(lead.IDIn(ids...)).
			Select(lead.FieldNameNorm, lead.FieldCompanyNorm, lead.FieldPhoneNorm, lead.FieldEmailNorm).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load leads: %w", err)
		}
		for _, l := range rows {
			docs[l.ID] = Doc{Text: []string{l.NameNorm, l.CompanyNorm, l.EmailNorm}, Phones: []string{l.PhoneNorm}}
		}
	case kinds.Customer:
		rows, err := c.Customer.Query().Where(customer.IDIn(ids...)).Select(customer.FieldNameNorm).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load customers: %w", err)
		}
		for _, cu := range rows {
			docs[cu.ID] = Doc{Text: []string{cu.NameNorm}}
		}
		cts, err := c.Contact.Query().Where(contact.CustomerIDIn(ids...)).
			Select(contact.FieldCustomerID, contact.FieldNameNorm, contact.FieldPhoneNorm, contact.FieldEmailNorm).All(ctx)
		if err != nil {
			return nil, fmt.Errorf("load contacts: %w", err)
		}
		for _, ct := range cts {
			d, ok := docs[ct.CustomerID]
			if !ok {
				continue
			}
			d.Text = append(d.Text, ct.NameNorm, ct.EmailNorm)
			d.Phones = append(d.Phones, ct.PhoneNorm)
			docs[ct.CustomerID] = d
		}
	default:
		return nil, fmt.Errorf("%w: %q", kinds.ErrUnknown, kind)
	}
	return docs, nil
}

// backfillMarker is the setting that says the index holds every record
// written before it existed.
const backfillMarker = "search_index_backfilled"

// backfillBatch is how many records one backfill transaction indexes.
const backfillBatch = 500

// Backfill indexes, once, the leads and customers of a database that
// had records before the index existed (an upgrade creates search_grams
// empty), and whose contacts have no normalised name yet. It runs at
// migration, before the server takes requests. Each batch is its own
// transaction and is idempotent, so an interrupted backfill simply runs
// again at the next start; the marker is written last.
func Backfill(ctx context.Context, c *ent.Client) error {
	if _, err := c.Setting.Get(ctx, backfillMarker); err == nil {
		return nil
	} else if !ent.IsNotFound(err) {
		return fmt.Errorf("read %s: %w", backfillMarker, err)
	}
	n := 0
	// Contacts first: the customers' grams are made of their names.
	if err := eachBatch(ctx, c, func(ctx context.Context, tx *ent.Tx, after uuid.UUID) (uuid.UUID, int, error) {
		rows, err := tx.Contact.Query().Where(contact.IDGT(after)).Order(ent.Asc(contact.FieldID)).Limit(backfillBatch).
			Select(contact.FieldName).All(ctx)
		if err != nil || len(rows) == 0 {
			return after, 0, err
		}
		for _, ct := range rows {
			if err := tx.Contact.UpdateOneID(ct.ID).SetNameNorm(NormName(ct.Name)).Exec(ctx); err != nil {
				return after, 0, err
			}
		}
		return rows[len(rows)-1].ID, len(rows), nil
	}); err != nil {
		return fmt.Errorf("backfill contact names: %w", err)
	}
	for _, k := range []kinds.Kind{kinds.Lead, kinds.Customer} {
		if err := eachBatch(ctx, c, func(ctx context.Context, tx *ent.Tx, after uuid.UUID) (uuid.UUID, int, error) {
			ids, err := recordIDs(ctx, tx.Client(), k, after)
			if err != nil || len(ids) == 0 {
				return after, 0, err
			}
			n += len(ids)
			return ids[len(ids)-1], len(ids), reindex(ctx, tx.Client(), k, ids)
		}); err != nil {
			return fmt.Errorf("backfill %s grams: %w", k, err)
		}
	}
	if n > 0 {
		slog.InfoContext(ctx, "search index backfilled", "records", n)
	}
	err := c.Setting.Create().SetID(backfillMarker).SetValue(map[string]any{"records": n}).
		OnConflict(sql.DoNothing()).Exec(ctx)
	if err != nil && !errors.Is(err, stdsql.ErrNoRows) {
		return fmt.Errorf("write %s: %w", backfillMarker, err)
	}
	return nil
}

// eachBatch runs step in its own transactions, from the smallest id on,
// until a step does nothing.
func eachBatch(ctx context.Context, c *ent.Client, step func(ctx context.Context, tx *ent.Tx, after uuid.UUID) (uuid.UUID, int, error)) error {
	after := uuid.Nil
	for {
		tx, err := c.Tx(ctx)
		if err != nil {
			return err
		}
		next, n, err := step(ctx, tx, after)
		if err != nil {
			return errors.Join(err, tx.Rollback())
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		after = next
	}
}

// recordIDs returns the next backfillBatch ids of kind after after.
func recordIDs(ctx context.Context, c *ent.Client, kind kinds.Kind, after uuid.UUID) ([]uuid.UUID, error) {
	switch kind {
	case kinds.Lead:
		return c.Lead.Query().Where(lead.IDGT(after)).Order(ent.Asc(lead.FieldID)).Limit(backfillBatch).IDs(ctx)
	case kinds.Customer:
		return c.Customer.Query().Where(customer.IDGT(after)).Order(ent.Asc(customer.FieldID)).Limit(backfillBatch).IDs(ctx)
	}
	return nil, fmt.Errorf("%w: %q", kinds.ErrUnknown, kind)
}

// Contains is col LIKE '%v%' with v's wildcards escaped, on both engines
// (ent's own helper leaves out the ESCAPE clause SQLite needs).
func Contains(col, v string) *sql.Predicate {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return sql.P(func(b *sql.Builder) {
		b.WriteString(col).WriteOp(sql.OpLike).Arg("%" + r.Replace(v) + "%").WriteString(` ESCAPE '\'`)
	})
}

// RareBelow is the number of records of a kind holding a gram under which
// the gram is rare: a search drives from its postings (at most that many
// rows to fetch and sort). Where the two plans cost the same, about
// sqrt(page × rows) postings, a walk of the list is the cheaper per row
// (it reads rows in index order rather than one random look-up each),
// hence a threshold below that.
const RareBelow = 2000

// PairBelow bounds the postings of the two grams a search intersects when
// none of a reading's grams is rare: reading two lists of up to this many
// index entries is cheap, and their intersection is what a query of two
// common grams that rarely meet (恒达 and 机械 in 恒达机械) needs, since a
// walk would read hundreds of rows per match.
const PairBelow = 10 * RareBelow

// rareBelow is RareBelow unless a test or benchmark set it (SetRareBelow).
var rareBelow atomic.Int64

func init() { rareBelow.Store(RareBelow) }

// RareBelowNow is the threshold Choose uses now.
func RareBelowNow() int { return int(rareBelow.Load()) }

// SetRareBelow sets the threshold Choose uses (and ten times it for
// pairs) and returns a function that puts the previous one back. It is
// for tests and benchmarks, to make each plan run on a small data set;
// every plan finds the same records, so a search running meanwhile
// answers the same.
func SetRareBelow(n int) (restore func()) {
	old := rareBelow.Swap(int64(n))
	return func() { rareBelow.Store(old) }
}

// Plan is how a search uses the index: Drivers holds, per reading of the
// query, the grams whose postings name the candidates (one rare gram, or
// the two rarest, intersected). Walk says some reading has only common
// grams: the list is walked in its own order and every row compared,
// and since each of its grams is then held by many records the walk
// meets matches soon.
type Plan struct {
	Walk    bool
	Drivers [][]string
}

// Choose reads how many records of kind hold each gram of the query's
// readings (at most ten times RareBelow index entries per gram) and
// chooses the plan.
func Choose(ctx context.Context, c *ent.Client, kind kinds.Kind, sets [][]string) (Plan, error) {
	rare := RareBelowNow()
	pair := rare * (PairBelow / RareBelow)
	held := map[string]int{}
	var plan Plan
	for _, set := range sets {
		for _, g := range set {
			if _, ok := held[g]; ok {
				continue
			}
			n, err := postings(ctx, c, kind, g, pair)
			if err != nil {
				return Plan{}, err
			}
			held[g] = n
		}
		byCount := slices.Clone(set)
		slices.SortStableFunc(byCount, func(a, b string) int { return held[a] - held[b] })
		switch {
		case held[byCount[0]] < rare:
			plan.Drivers = append(plan.Drivers, byCount[:1])
		case len(byCount) >= 2 && held[byCount[1]] < pair:
			plan.Drivers = append(plan.Drivers, byCount[:2])
		default:
			return Plan{Walk: true}, nil
		}
	}
	return plan, nil
}

// postings counts the records of kind holding gram, up to limit.
func postings(ctx context.Context, c *ent.Client, kind kinds.Kind, gram string, limit int) (int, error) {
	var out []struct {
		N int `json:"n"`
	}
	err := c.SearchGram.Query().Modify(func(s *sql.Selector) {
		t := sql.Table(searchgram.Table)
		sub := sql.Dialect(s.Dialect()).Select(t.C(searchgram.FieldRecordID)).From(t).
			Where(sql.And(sql.EQ(t.C(searchgram.FieldGram), gram), sql.EQ(t.C(searchgram.FieldRecordKind), string(kind)))).
			Limit(limit)
		s.From(sub.As("held")).Select(sql.As(sql.Count("*"), "n"))
	}).Scan(ctx, &out)
	if err != nil {
		return 0, fmt.Errorf("count postings: %w", err)
	}
	if len(out) != 1 {
		return 0, fmt.Errorf("count postings: %d rows", len(out))
	}
	return out[0].N, nil
}

// Candidates is the predicate "the row is a record of kind holding every
// gram of one of the plan's driver sets" on s, a selector of the kind's
// table with the id column idCol. It only narrows: the caller ANDs it with
// the comparison of the row's own fields.
func (p Plan) Candidates(s *sql.Selector, idCol string, kind kinds.Kind) *sql.Predicate {
	b := sql.Dialect(s.Dialect())
	var union *sql.Selector
	for _, set := range p.Drivers {
		t := sql.Table(searchgram.Table)
		grams := make([]any, len(set))
		for i, g := range set {
			grams[i] = g
		}
		sub := b.Select(t.C(searchgram.FieldRecordID)).From(t).
			Where(sql.And(sql.EQ(t.C(searchgram.FieldRecordKind), string(kind)), sql.In(t.C(searchgram.FieldGram), grams...)))
		if len(set) > 1 {
			// (gram, kind, record) is unique, so a record holding
			// every gram of the set has one row per gram.
			sub.GroupBy(t.C(searchgram.FieldRecordID)).
				Having(sql.P(func(b *sql.Builder) { b.WriteString("COUNT(*) = ").Arg(len(set)) }))
		}
		if union == nil {
			union = sub
		} else {
			union.Union(sub)
		}
	}
	if union == nil {
		return sql.False()
	}
	return sql.In(s.C(idCol), union)
}
