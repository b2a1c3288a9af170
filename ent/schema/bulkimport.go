package schema

import (
	"entgo.io/ent"
	"entgo.io/ent/schema/field"
	"entgo.io/ent/schema/index"
	"github.com/google/uuid"
)

// BulkImport is one bulk import of leads, customers or products (导入) from a CSV or XLSX
// file. The file is kept in the row, so that the job working it may run on
// any replica; the job records its progress (processed, the counts, the
// problems found) in the transaction of each batch it imports, so a retried
// job resumes after the last committed row and imports nothing twice.
type BulkImport struct{ ent.Schema }

// Mixin of the BulkImport.
func (BulkImport) Mixin() []ent.Mixin { return []ent.Mixin{IDMixin{}, TimeMixin{}} }

// Fields of the BulkImport.
func (BulkImport) Fields() []ent.Field {
	return []ent.Field{
		field.Enum("kind").Values("lead", "customer", "product").Immutable(),
		field.Enum("status").Values("queued", "running", "succeeded", "failed").Default("queued"),
		field.Bool("dry_run").Default(false).Immutable(),
		field.String("file_name").Default("").MaxLen(chars(255)).Immutable(),
		// Format is csv or xlsx; Encoding the text encoding of a CSV
		// (utf-8 or gb18030), as stated or detected.
		field.String("format").Immutable(),
		field.String("encoding").Default("").Immutable(),
		field.Bytes("content").Immutable(),
		// Mapping is the column header → field mapping the client gave.
		field.JSON("mapping", map[string]string{}).Default(map[string]string{}).Immutable(),
		field.UUID("pool_id", uuid.UUID{}).Optional().Nillable().Immutable(),
		// The actor every row is created as: a user, or an API key.
		field.Enum("actor_type").Values("user", "api_key").Immutable(),
		field.UUID("actor_id", uuid.UUID{}).Immutable(),
		// CreatorTeamPath is the team of the user who asked, for the
		// supervisors who may read the import ("" for API keys).
		field.String("creator_team_path").Default("").Immutable(),
		field.Int("total").Default(0),
		// Processed is the number of data rows handled so far, in file
		// order: the next batch starts after it.
		field.Int("processed").Default(0),
		field.JSON("counts", ImportCounts{}).Default(ImportCounts{}),
		field.JSON("problems", []ImportProblem{}).Default([]ImportProblem{}),
		// ProblemCount counts every problem, stored or not (Problems keeps
		// the first ones).
		field.Int("problem_count").Default(0),
		field.String("error").Default(""),
		field.Time("finished_at").Optional().Nillable(),
	}
}

// ImportCounts is what an import did (or, dry, would do) with its rows.
type ImportCounts struct {
	// Created rows (in a dry run: would be created).
	Created int `json:"created"`
	// Owned, Pooled and AutoAssigned split Created by placement; OverCap
	// counts the pooled rows that went to the pool because the owner was
	// at his cap.
	Owned        int `json:"owned"`
	Pooled       int `json:"pooled"`
	AutoAssigned int `json:"autoAssigned"`
	OverCap      int `json:"overCap"`
	// Invalid rows failed a field rule; Duplicates matched a record in
	// the database or an earlier row of the file. Neither was written.
	Invalid    int `json:"invalid"`
	Duplicates int `json:"duplicates"`
	// OwnedBy counts the rows placed owned per owner (a dry run carries
	// the owners' cap use over from batch to batch with it).
	OwnedBy map[string]int `json:"ownedBy,omitempty"`
}

// ImportProblem is one problem of one row: its row number in the file (the
// header is row 1), the column (its header as in the file) and a stable
// code.
type ImportProblem struct {
	Row     int    `json:"row"`
	Column  string `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Indexes of the BulkImport.
func (BulkImport) Indexes() []ent.Index {
	return []ent.Index{index.Fields("actor_id", "created_at"), index.Fields("created_at")}
}
