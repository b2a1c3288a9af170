// Package imports is bulk import (导入): a CSV or XLSX file of leads or
// customers (with a first contact) becomes records through the same rule
// set as createLead and createCustomer; a file of products becomes
// catalogue entries through createProduct's (internal/products), for
// those who may createProduct, without pools or owners.
//
// An import is a row (ent BulkImport) that holds the file, created
// together with the job that works it (internal/jobs) in one transaction.
// The file is parsed and its header mapped when the import is created, so
// an unreadable file or one without a name column is refused at once. The
// job checks every row (field rules, then duplicates within the file: a
// row whose company/name, phone or email an earlier good row has), and
// writes the good rows in batches: each batch is one transaction, each row
// in a savepoint of its own, so a row refused by a rule (a duplicate of a
// record in the database above all) is rolled back whole and reported,
// and the others commit. The batch records the import's progress (the rows
// processed, the counts, the problems) in the same transaction, so a
// retried job resumes after the last committed row.
//
// A dry run works the same batches and rolls each one back, recording only
// the progress: it reports what a real run would (caps included: the
// owners' cap use of earlier batches is carried into the next).
//
// Re-running a file creates nothing new: every row it created holds its
// duplicate keys, so the second run finds each one a duplicate. A lead
// needs a company, phone or email for that (missing_key otherwise).
package imports

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"entgo.io/ent/dialect/sql"
	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	entimport "github.com/shoalcrm/shoal/ent/bulkimport"
	"github.com/shoalcrm/shoal/ent/predicate"
	"github.com/shoalcrm/shoal/ent/schema"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
	"github.com/shoalcrm/shoal/internal/clock"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/kinds"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/pool"
	"github.com/shoalcrm/shoal/internal/products"
	"github.com/shoalcrm/shoal/internal/records"
	"github.com/shoalcrm/shoal/internal/store"
)

// KindProduct is the kind of a products import. It is no record kind of
// the pool engine (kinds.All): nothing of kinds.Desc applies to it.
const KindProduct kinds.Kind = "product"

// parseKind reads an import's kind: a record kind, or product.
func parseKind(s string) (kinds.Kind, error) {
	if s == string(KindProduct) {
		return KindProduct, nil
	}
	return kinds.Parse(s)
}

// Allower answers whether a principal may call an operation (the casbin
// enforcer, internal/authz).
type Allower interface {
	Allowed(p *auth.Principal, op string) bool
}

// Defaults.
const (
	// DefaultBatch is how many rows one transaction writes.
	DefaultBatch = 200
	// MaxProblems is how many problems an import keeps (it counts all).
	MaxProblems = 1000
	// MaxFileSize is the largest file taken (the HTTP body limit of
	// createImport is a little above it).
	MaxFileSize = 20 << 20
)

// The statuses of an import.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// Queue enqueues the job that works an import, in the transaction that
// creates it (internal/jobs).
type Queue interface {
	EnqueueImport(ctx context.Context, tx *ent.Tx, id uuid.UUID) error
}

// Service runs bulk imports.
type Service struct {
	store   *store.Store
	records *records.Service
	pools   *pool.Service
	clock   clock.Clock
	queue   Queue
	batch   int
	// products creates a products import's rows; allow says who may
	// (whoever may createProduct).
	products *products.Service
	allow    Allower
	// beforeBatch, when set (tests), runs in a batch's transaction
	// between its duplicate look-up and its multi-row insert: where a
	// concurrent writer may claim a key.
	beforeBatch func(context.Context, *ent.Tx)
}

// NewService returns the import service; SetQueue must be called before
// an import is created.
func NewService(st *store.Store, recs *records.Service, pools *pool.Service, clk clock.Clock) *Service {
	return &Service{store: st, records: recs, pools: pools, clock: clk, batch: DefaultBatch}
}

// SetProducts sets the catalogue a products import writes to, and the
// authorisation that says who may import products (those allowed
// createProduct). Without it a products import is refused.
func (s *Service) SetProducts(prods *products.Service, allow Allower) {
	s.products, s.allow = prods, allow
}

// mayImportProducts refuses (403) a principal who may not createProduct.
func (s *Service) mayImportProducts(p *auth.Principal) error {
	if s.products == nil || s.allow == nil || !s.allow.Allowed(p, "createProduct") {
		return apperr.New(apperr.Forbidden, "forbidden", "importing products takes the right to createProduct (supervisors and admins)")
	}
	return nil
}

// errProductPool refuses a poolId on a products import.
var errProductPool = &apperr.Error{Kind: apperr.Unprocessable, Code: "not_applicable",
	Message: "poolId does not apply to a products import: products have no pool and no owner",
	Fields:  []apperr.FieldError{{Field: "body/poolId", Code: "not_applicable", Message: "products have no pool and no owner"}}}

// SetQueue sets the job queue imports are enqueued on.
func (s *Service) SetQueue(q Queue) { s.queue = q }

// SetBatch sets how many rows one transaction writes (tests use small
// batches to see progress between them).
func (s *Service) SetBatch(n int) {
	if n > 0 {
		s.batch = n
	}
}

// Request is a new import.
type Request struct {
	Kind     string
	File     []byte
	FileName string
	// Encoding of a CSV file: utf-8, gbk or gb18030; "" detects it.
	Encoding string
	// Mapping maps column headers to fields ("" ignores a column), where
	// the headers do not map by themselves.
	Mapping map[string]string
	DryRun  bool
	// PoolID puts every row into this pool (pooled, as createLead with
	// poolId); nil places rows as createLead does (the importer's own,
	// up to his cap, else his landing pool). A products import refuses
	// it (422 not_applicable).
	PoolID *uuid.UUID
}

var errNoFile = apperr.Invalidf("body/file", "required", "give the file to import")

// Create checks the request and the file (readable, a name column), and
// queues the import. It returns the import, queued; its job works it
// after the commit.
func (s *Service) Create(ctx context.Context, p *auth.Principal, in Request) (*ent.BulkImport, error) {
	kind, err := parseKind(in.Kind)
	if err != nil {
		return nil, apperr.Invalidf("body/kind", "invalid", "kind must be lead, customer or product")
	}
	if kind == KindProduct {
		if err := s.mayImportProducts(p); err != nil {
			return nil, err
		}
		if in.PoolID != nil {
			return nil, errProductPool
		}
	} else if err := keyMay(p, kind); err != nil {
		return nil, err
	}
	if len(in.File) == 0 {
		return nil, errNoFile
	}
	if len(in.File) > MaxFileSize {
		return nil, apperr.New(apperr.TooLarge, "payload_too_large", fmt.Sprintf("the file is larger than %d MB", MaxFileSize>>20))
	}
	enc, ok := NormalizeEncoding(in.Encoding)
	if !ok {
		return nil, apperr.Invalidf("body/encoding", "invalid", "encoding must be utf-8, gbk or gb18030")
	}
	t, err := Parse(in.File, enc)
	if err != nil {
		return nil, apperr.Invalidf("body/file", "unreadable", strings.TrimPrefix(err.Error(), errUnreadable.Error()+": "))
	}
	if _, err := MapColumns(string(kind), t.Header, in.Mapping); err != nil {
		var m errMapping
		if errors.As(err, &m) {
			return nil, apperr.Invalidf("body/"+m.field, m.code, m.msg)
		}
		return nil, err
	}
	actorType, teamPath := entimport.ActorTypeUser, p.TeamPath
	if p.Type == auth.ActorAPIKey {
		actorType, teamPath = entimport.ActorTypeAPIKey, ""
	} else if p.Type != auth.ActorUser {
		return nil, apperr.New(apperr.Forbidden, "forbidden", "only users and API keys import")
	}
	mapping := in.Mapping
	if mapping == nil {
		mapping = map[string]string{}
	}
	var imp *ent.BulkImport
	err = s.store.WithRetryTx(ctx, func(tx *ent.Tx) error {
		// Where the rows would go is checked once here, by the engine's
		// own placement (then undone): an unknown pool, one of another
		// kind, or one the caller may not create in refuses the import.
		if kind != KindProduct {
			if err := s.probe(ctx, tx, p, kind, in.PoolID); err != nil {
				return err
			}
		}
		now := s.now()
		imp, err = tx.BulkImport.Create().
			SetKind(entimport.Kind(kind)).
			SetDryRun(in.DryRun).
			SetFileName(truncate(in.FileName, 255)).
			SetFormat(t.Format).
			SetEncoding(t.Encoding).
			SetContent(in.File).
			SetMapping(mapping).
			SetNillablePoolID(in.PoolID).
			SetActorType(actorType).
			SetActorID(p.ID).
			SetCreatorTeamPath(teamPath).
			SetTotal(len(t.Rows)).
			SetCounts(schema.ImportCounts{}).
			SetProblems([]schema.ImportProblem{}).
			SetCreatedAt(now).
			SetUpdatedAt(now).
			Save(ctx)
		if err != nil {
			return fmt.Errorf("create import: %w", err)
		}
		if err := events.Emit(ctx, tx, events.Event{Type: events.ImportCreated, SubjectKind: events.KindImport, SubjectID: imp.ID,
			Actor: p.EventActor(), OccurredAt: now, Data: payload(imp)}); err != nil {
			return err
		}
		if s.queue == nil {
			return errors.New("imports: no job queue")
		}
		return s.queue.EnqueueImport(ctx, tx, imp.ID)
	})
	if err != nil {
		return nil, err
	}
	return imp, nil
}

// probe runs the pool engine's placement of a record of kind by p in a
// savepoint and undoes it: the refusals it answers are the import's.
func (s *Service) probe(ctx context.Context, tx *ent.Tx, p *auth.Principal, kind kinds.Kind, poolID *uuid.UUID) error {
	return inSavepoint(ctx, tx, "import_probe", true, func() error {
		_, err := s.pools.Place(ctx, tx, p, kind, poolID)
		return err
	})
}

// inSavepoint runs fn in a savepoint of tx, rolled back when fn fails or
// when undo is set.
func inSavepoint(ctx context.Context, tx *ent.Tx, name string, undo bool, fn func() error) error {
	if _, err := tx.ExecContext(ctx, "SAVEPOINT "+name); err != nil {
		return fmt.Errorf("savepoint: %w", err)
	}
	ferr := fn()
	if ferr != nil || undo {
		if _, err := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT "+name); err != nil {
			return errors.Join(ferr, fmt.Errorf("rollback to savepoint: %w", err))
		}
	}
	if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT "+name); err != nil {
		return errors.Join(ferr, fmt.Errorf("release savepoint: %w", err))
	}
	return ferr
}

// keyMay checks an API key's scopes against the kind imported: casbin let
// it call createImport for some kind (leads:write or customers:write),
// this checks it is this one.
func keyMay(p *auth.Principal, kind kinds.Kind) error {
	if p == nil || p.Type != auth.ActorAPIKey {
		return nil
	}
	need := authz.RecordScope(kind, "write")
	if p.HasScope(need) {
		return nil
	}
	return &apperr.Error{Kind: apperr.Forbidden, Code: "insufficient_scope",
		Message: "this API key lacks a scope the operation needs: " + need,
		Extra:   map[string]any{"scopes": []string{need}}}
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) > n {
		return string(r[:n])
	}
	return s
}

// payload is the import's event payload.
func payload(imp *ent.BulkImport) events.Import {
	out := events.Import{Kind: string(imp.Kind), DryRun: imp.DryRun, Status: string(imp.Status), Total: imp.Total}
	if imp.Status == entimport.StatusSucceeded || imp.Status == entimport.StatusFailed {
		c := imp.Counts
		out.Created, out.Invalid, out.Duplicates = &c.Created, &c.Invalid, &c.Duplicates
	}
	return out
}

// Get returns an import p may see: its creator's, and admins, auditors and
// the creator's supervisors (NotFound otherwise).
func (s *Service) Get(ctx context.Context, p *auth.Principal, id uuid.UUID) (*ent.BulkImport, error) {
	imp, err := s.store.Reader.BulkImport.Query().Where(entimport.ID(id), visible(p)).
		Select(listColumns...).Only(ctx)
	if ent.IsNotFound(err) {
		return nil, apperr.NotFoundf("import")
	}
	if err != nil {
		return nil, fmt.Errorf("get import: %w", err)
	}
	return imp, nil
}

// listColumns are every column but the file's content.
var listColumns = func() []string {
	var out []string
	for _, c := range entimport.Columns {
		if c != entimport.FieldContent {
			out = append(out, c)
		}
	}
	return out
}()

// visible limits imports to those p may see.
func visible(p *auth.Principal) predicate.BulkImport {
	if p.Type == auth.ActorAPIKey {
		return entimport.ActorID(p.ID)
	}
	r := authz.RecordReach(p)
	if r.All {
		return func(*sql.Selector) {}
	}
	preds := []predicate.BulkImport{entimport.ActorID(p.ID)}
	if r.TeamPathPrefix != "" {
		preds = append(preds, entimport.CreatorTeamPathHasPrefix(r.TeamPathPrefix))
	}
	return entimport.Or(preds...)
}

var list = listing.New(entimport.FieldID, func(b *ent.BulkImport) uuid.UUID { return b.ID }, "-createdAt",
	map[string]listing.Key[*ent.BulkImport]{
		"createdAt": {Column: entimport.FieldCreatedAt, Value: func(b *ent.BulkImport) *time.Time { return &b.CreatedAt }},
	})

// List returns a page of the imports p may see, newest first.
func (s *Service) List(ctx context.Context, p *auth.Principal, cursor *listing.Cursor, limit int) ([]*ent.BulkImport, *listing.Cursor, error) {
	pg, err := list.Page("", cursor, limit)
	if err != nil {
		return nil, nil, err
	}
	rows, err := s.store.Reader.BulkImport.Query().Where(visible(p), predicate.BulkImport(pg.Apply)).
		Select(listColumns...).Limit(pg.Limit).All(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list imports: %w", err)
	}
	return rows, pg.Next(rows), nil
}

func (s *Service) now() time.Time { return s.clock.Now().UTC().Truncate(time.Microsecond) }

// MappingOf parses a mapping form field: a JSON object of header → field.
func MappingOf(raw string) (map[string]string, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		return nil, apperr.Invalidf("body/mapping", "invalid", "mapping must be a JSON object of column header to field name")
	}
	return m, nil
}
