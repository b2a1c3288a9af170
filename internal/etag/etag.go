// Package etag is the one place that turns a resource's version
// (ent/schema VersionMixin) into an entity tag and checks a client's
// If-Match against it. Every mutable resource uses it, so the format and
// the 428/412 answers are the same everywhere.
package etag

import (
	"strconv"
	"strings"

	"github.com/shoalcrm/shoal/internal/apperr"
)

var (
	// ErrRequired is the answer to a change without If-Match: a client
	// that never read the resource must not overwrite it blindly.
	ErrRequired = apperr.New(apperr.PreconditionRequired, "precondition_required", "If-Match with the resource's ETag is required")
	// ErrStale is the answer to an If-Match naming another version: the
	// resource changed since the client read it, and nothing is changed.
	ErrStale = apperr.New(apperr.PreconditionFailed, "precondition_failed", "the resource has changed since you read it")
)

// Of is the entity tag of a version: a strong tag, quoted as RFC 9110
// wants it.
func Of(version int) string { return `"v` + strconv.Itoa(version) + `"` }

// Ptr is Of for the generated response headers, which are pointers.
func Ptr(version int) *string {
	t := Of(version)
	return &t
}

// Check enforces If-Match against the version read in the change's
// transaction: absent or blank is ErrRequired; a list that neither
// contains "*" nor the current tag (weak or strong) is ErrStale.
func Check(ifMatch *string, version int) error {
	if ifMatch == nil || strings.TrimSpace(*ifMatch) == "" {
		return ErrRequired
	}
	want := Of(version)
	for _, tag := range strings.Split(*ifMatch, ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == want {
			return nil
		}
	}
	return ErrStale
}

// CheckIfGiven is Check for the few changes where If-Match is optional
// (a status that is set, not merged): absent passes, given is checked.
func CheckIfGiven(ifMatch *string, version int) error {
	if ifMatch == nil {
		return nil
	}
	return Check(ifMatch, version)
}
