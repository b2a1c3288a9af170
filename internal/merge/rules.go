// Package merge merges duplicate leads or customers (合并): the survivor
// keeps its id and takes, field by field, the value of the record the
// caller names (its own by default); the children of the merged records
// (contacts, follow-ups, ownership history) move to it; the merged records
// become status merged with a pointer to the survivor, leave their owners'
// caps, and their ids answer merged_into from then on. One transaction.
package merge

import (
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/kinds"
)

// MaxMerged is how many records one merge may fold into the survivor.
const MaxMerged = 50

// Input is a merge request.
type Input struct {
	Survivor uuid.UUID
	Merged   []uuid.UUID
	// Fields names, for each field the caller chooses, the record (the
	// survivor or one of Merged) whose value the survivor takes. The
	// names are the API's (camelCase).
	Fields map[string]uuid.UUID
	// IfMatch, when given, must match the survivor's ETag.
	IfMatch *string
}

// mergeable are the business fields a merge may take from another record,
// per kind, in the API's spelling. Ownership, pool and status are not
// fields: they are the survivor's, and the merged records' leave with them.
var mergeable = map[kinds.Kind][]string{
	kinds.Lead:     {"name", "company", "phone", "email", "source", "region", "industry", "notes", "tags"},
	kinds.Customer: {"name", "industry", "region", "address", "website", "grade", "creditLevel", "creditLimit", "source", "tags"},
}

// errConverted refuses a converted lead on either side of a merge: its
// customer and contacts already hold its keys and its history, so the
// customers are what to merge.
var errConverted = apperr.New(apperr.Conflict, "merge_converted",
	"a converted lead can be neither merged nor survive a merge; merge the customers instead")

// check validates a request against what the contract cannot say: the
// survivor is not among the merged, every field named is mergeable for the
// kind and takes its value from a record of the merge. It returns the ids
// of the merge in lock order (sorted), the survivor included.
func (in Input) check(kind kinds.Kind) ([]uuid.UUID, error) {
	if len(in.Merged) == 0 || len(in.Merged) > MaxMerged {
		return nil, apperr.Invalidf("body/mergedIds", "size", fmt.Sprintf("mergedIds must hold 1 to %d ids", MaxMerged))
	}
	ids := append([]uuid.UUID{in.Survivor}, in.Merged...)
	seen := make(map[uuid.UUID]bool, len(ids))
	for i, id := range ids {
		if seen[id] {
			if i > 0 && id == in.Survivor {
				return nil, apperr.Invalidf("body/mergedIds", "survivor", "mergedIds must not contain the survivor")
			}
			return nil, apperr.Invalidf("body/mergedIds", "unique", "mergedIds must be distinct")
		}
		seen[id] = true
	}
	for name, from := range in.Fields {
		if !slices.Contains(mergeable[kind], name) {
			return nil, apperr.Invalidf("body/fields/"+name, "unknown", "not a field a merge can choose")
		}
		if !seen[from] {
			return nil, apperr.Invalidf("body/fields/"+name, "not_in_merge", "the record named is neither the survivor nor one of mergedIds")
		}
	}
	// Locking in one order everywhere makes two merges over common
	// records wait for each other instead of deadlocking.
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	return ids, nil
}
