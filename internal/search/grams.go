// Package search is the substring search of leads and customers: the
// grams a record is indexed under (the search_grams table), the grams a
// query looks up, and the upkeep of the index in the writing transaction.
//
// The index only narrows a search to candidates. What matches is decided
// by the list query on each candidate's own normalised columns, field by
// field and under the caller's masking (internal/records), so the index
// can hold more than a field shows without anything leaking through it.
//
// Grams, identical on SQLite and PostgreSQL:
//
//   - text (names, companies, contact names, email addresses, each in its
//     normalised form): every two consecutive characters. Two, because
//     most Chinese company keywords are two characters (恒达, 华信), and a
//     query needs at least one whole gram to use the index;
//   - phone numbers (their digits): every four consecutive digits, since
//     a phone search needs four digits at least, and two-digit grams
//     would each hold a tenth of all records.
//
// A record matching a query of n characters holds all n-1 of its text
// grams (or its phone grams). Which of them a search reads depends on how
// many records hold each (see Choose): the rarest one, the two rarest
// intersected, or none, walking the list instead.
package search

import (
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/width"

	"github.com/shoalcrm/shoal/internal/dedupe"
)

const (
	// TextGram is the length, in characters, of a text gram.
	TextGram = 2
	// PhoneGram is the length, in digits, of a phone gram, and the
	// fewest digits a phone search takes.
	PhoneGram = 4
)

// Doc is what one record is indexed under: normalised text values (as
// stored in the …_norm columns) and normalised phone numbers.
type Doc struct {
	Text   []string
	Phones []string
}

// Grams returns the distinct grams of d, sorted.
func (d Doc) Grams() []string {
	seen := map[string]bool{}
	for _, t := range d.Text {
		for _, g := range grams(t, TextGram) {
			seen[g] = true
		}
	}
	for _, p := range d.Phones {
		for _, g := range grams(digits(p), PhoneGram) {
			seen[g] = true
		}
	}
	out := make([]string, 0, len(seen))
	for g := range seen {
		out = append(out, g)
	}
	slices.Sort(out)
	return out
}

// grams returns the substrings of n characters of s, in order, repeats
// included; none when s is shorter than n.
func grams(s string, n int) []string {
	r := []rune(s)
	if len(r) < n {
		return nil
	}
	out := make([]string, 0, len(r)-n+1)
	for i := 0; i+n <= len(r); i++ {
		out = append(out, string(r[i:i+n]))
	}
	return out
}

// digits keeps the ASCII digits of s.
func digits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// Query is a search string read three ways. A field is compared with the
// reading of its own kind: names and companies with Text, email
// addresses with Email, phones with Phone. An empty reading searches no
// field of its kind.
type Query struct {
	// Text is the query as names are normalised (dedupe.Name).
	Text string
	// Email is the query as email addresses are normalised: trimmed,
	// width-folded, lower-cased.
	Email string
	// Phone is the query's digits, when the query is a phone number or
	// a part of one (no letters, PhoneGram digits at least).
	Phone string
}

// Parse reads a search string. A query that is only digits and
// separators searches phones alone: as text its two-digit grams would
// look up half the records for nothing.
func Parse(q string) Query {
	q = strings.TrimSpace(q)
	if phoneLike(q) {
		p := dedupe.Phone(q) // the national form: +86 and 0086 go
		if p == "" {
			p = digits(width.Fold.String(q))
		}
		return Query{Phone: p}
	}
	return Query{Text: dedupe.Name(q), Email: strings.ToLower(width.Fold.String(q))}
}

// phoneLike reports whether q has no letters and PhoneGram digits at
// least.
func phoneLike(q string) bool {
	n := 0
	for _, r := range width.Fold.String(q) {
		switch {
		case unicode.IsLetter(r):
			return false
		case r >= '0' && r <= '9':
			n++
		}
	}
	return n >= PhoneGram
}

// Indexed reports whether the index can answer some reading of the query:
// a text or email reading of TextGram characters, or a phone reading.
// A shorter query (one character) cannot use the index.
func (q Query) Indexed() bool {
	return q.TextIndexed() || q.EmailIndexed() || q.Phone != ""
}

// TextIndexed reports whether the Text reading is long enough for the
// index.
func (q Query) TextIndexed() bool { return runes(q.Text) >= TextGram }

// EmailIndexed reports whether the Email reading is long enough for the
// index.
func (q Query) EmailIndexed() bool { return runes(q.Email) >= TextGram }

func runes(s string) int { return len([]rune(s)) }

// GramSets returns, for each indexed reading of q, the distinct grams a
// record must all hold to match that reading; readings with the same
// grams are given once. A record is a candidate when it holds every gram
// of at least one set.
func (q Query) GramSets() [][]string {
	var sets [][]string
	add := func(gs []string) {
		gs = distinctSorted(gs)
		if len(gs) == 0 {
			return
		}
		for _, s := range sets {
			if slices.Equal(s, gs) {
				return
			}
		}
		sets = append(sets, gs)
	}
	if q.TextIndexed() {
		add(grams(q.Text, TextGram))
	}
	if q.EmailIndexed() {
		add(grams(q.Email, TextGram))
	}
	if q.Phone != "" {
		add(grams(q.Phone, PhoneGram))
	}
	return sets
}

func distinctSorted(gs []string) []string {
	out := slices.Clone(gs)
	slices.Sort(out)
	return slices.Compact(out)
}

// NormName is a name as search compares it: a contact's name_norm (leads
// and customers keep theirs for duplicate checks, with the same rule).
func NormName(s string) string { return dedupe.Name(s) }
