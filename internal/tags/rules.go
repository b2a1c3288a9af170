// Package tags is the organisation's tag vocabulary. Records keep tag
// names in their own tags arrays (so a filter by tag needs no join, and a
// name used on a record need not be registered here); renaming or
// deleting a registered tag rewrites those arrays in the same
// transaction.
package tags

import (
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// MaxName is the longest tag name, the same as a record's tag (the
// contract's Tags schema), so that a rename always fits on a record.
const MaxName = 50

var color = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

// Normalize is the name as stored: trimmed like records' tags are. It is
// Invalid at field when nothing or too much remains.
func Normalize(field, name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" {
		return "", apperr.Invalidf(field, "required", "a tag name cannot be blank")
	}
	if utf8.RuneCountInString(n) > MaxName {
		return "", apperr.Invalidf(field, "maxLength", "a tag name has at most 50 characters")
	}
	return n, nil
}

// CheckColor is Invalid at field unless c is #RRGGBB (the contract says
// so too; this keeps the service honest for other callers).
func CheckColor(field, c string) error {
	if !color.MatchString(c) {
		return apperr.Invalidf(field, "pattern", "a colour is #RRGGBB")
	}
	return nil
}

// renameIn returns tags with from replaced by to, keeping the order and
// dropping the later copy when the record already had to; changed is
// false (and tags returned as is) when from is not among them.
func renameIn(tags []string, from, to string) (out []string, changed bool) {
	if !slices.Contains(tags, from) {
		return tags, false
	}
	out = make([]string, 0, len(tags))
	for _, t := range tags {
		if t == from {
			t = to
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, true
}

// removeFrom returns tags without name, keeping the order; changed is
// false when name is not among them.
func removeFrom(tags []string, name string) (out []string, changed bool) {
	if !slices.Contains(tags, name) {
		return tags, false
	}
	out = make([]string, 0, len(tags)-1)
	for _, t := range tags {
		if t != name {
			out = append(out, t)
		}
	}
	return out, true
}
