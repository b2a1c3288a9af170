package personaldata

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/width"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/dedupe"
)

// Anonymous is the name an erased person's record keeps: name is a
// required field, and a fixed word makes an erased record plain to see.
const Anonymous = "已删除"

// Marker replaces each occurrence of a person's value in free text.
const Marker = "[已删除]"

// Key types: what a request identifies the person by.
const (
	ByPhone = dedupe.MatchedPhone
	ByEmail = dedupe.MatchedEmail
	ByName  = dedupe.MatchedName
)

// Query names the person: exactly one of the three.
type Query struct {
	Phone, Email, Name *string
}

// Key is a validated query: its type, the value as given (trimmed) and
// its normalised form (dedupe's, as the records' …_norm columns hold it).
type Key struct {
	Type, Raw, Norm string
}

// minTextRunes is the shortest name or other text value redacted in free
// text: a one-character name (王) would blank out every word holding it.
const minTextRunes = 2

// KeyOf validates q: exactly one value, not empty once normalised (a
// phone needs five digits, an email an "@").
func KeyOf(q Query) (Key, error) {
	var k Key
	n := 0
	for _, c := range []struct {
		typ string
		v   *string
		fn  func(string) string
	}{{ByPhone, q.Phone, dedupe.Phone}, {ByEmail, q.Email, dedupe.Email}, {ByName, q.Name, dedupe.Name}} {
		if c.v == nil {
			continue
		}
		n++
		k = Key{Type: c.typ, Raw: strings.TrimSpace(*c.v), Norm: c.fn(*c.v)}
	}
	if n != 1 {
		return Key{}, apperr.Invalidf("body", "oneOf", "give exactly one of phone, email and name")
	}
	if k.Norm == "" {
		return Key{}, apperr.Invalidf("body/"+k.Type, "format", "the "+k.Type+" is empty once normalised (a phone needs five digits, an email an @)")
	}
	return k, nil
}

// Values are one person's values found on the matched records: what the
// erasure redacts wherever free text holds them.
type Values struct {
	// Texts are names, email addresses and other identifiers, compared
	// folded (full width to half width, lower case).
	Texts []string
	// Phones are normalised phone numbers (dedupe.Phone), found in text
	// in any spelling that normalises to them.
	Phones []string
}

// Add records a name or another identifier (a WeChat id), both as given
// and normalised (dedupe.Name drops spaces: "王 伟" is also written 王伟).
func (v *Values) Add(s string) {
	v.addText(s)
	v.addText(dedupe.Name(s))
}

func (v *Values) addText(s string) {
	t := fold(strings.TrimSpace(s))
	if utf8.RuneCountInString(t) >= minTextRunes && !contains(v.Texts, t) {
		v.Texts = append(v.Texts, t)
	}
}

// AddPhone records a phone number in any spelling.
func (v *Values) AddPhone(s string) {
	if p := dedupe.Phone(s); p != "" && !contains(v.Phones, p) {
		v.Phones = append(v.Phones, p)
	}
}

// AddEmail records an email address.
func (v *Values) AddEmail(s string) {
	v.addText(dedupe.Email(s))
}

// Empty reports whether there is nothing to redact.
func (v Values) Empty() bool { return len(v.Texts) == 0 && len(v.Phones) == 0 }

// Patterns are the LIKE patterns (lower case, to be compared with
// LOWER(column)) a text holding one of the values must match: each text
// value, and the last four digits of each phone, half and full width,
// since a number's last group is written together in every usual spelling.
// They only narrow the rows Redact then reads.
func (v Values) Patterns() []string {
	var out []string
	for _, t := range v.Texts {
		out = append(out, t)
	}
	for _, p := range v.Phones {
		tail := p[len(p)-4:]
		out = append(out, tail, width.Widen.String(tail))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// foldRune is r as the comparison sees it: half width, lower case.
// Only the full-width forms of ASCII (and the ideographic space) are
// folded: those are what input methods produce, and a table look-up per
// rune keeps the erasure's scan of every text cheap.
func foldRune(r rune) rune {
	switch {
	case r < utf8.RuneSelf:
		if 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		return r
	case 0xFF01 <= r && r <= 0xFF5E:
		return foldRune(r - 0xFEE0)
	case r == 0x3000:
		return ' '
	}
	return unicode.ToLower(r)
}

func fold(s string) string {
	return strings.Map(foldRune, s)
}

// ShortMarker replaces each occurrence instead of Marker where Marker
// would make a text longer than its field allows: it is shorter than any
// value it replaces, so the text only shrinks.
const ShortMarker = "*"

// RedactWithin is Redact for a field of at most max characters (0: no
// limit).
func (v Values) RedactWithin(s string, max int) (string, bool) {
	out, hit := v.redact(s, Marker)
	if hit && max > 0 && utf8.RuneCountInString(out) > max {
		out, hit = v.redact(s, ShortMarker)
	}
	return out, hit
}

// Redact replaces every occurrence of the values in s with Marker and
// reports whether it changed anything. Text values match folded; phones
// match any run of digits and separators (spaces, dashes, dots,
// brackets, a leading +) that dedupe.Phone normalises to one of them,
// and a bare digit run that holds one.
func (v Values) Redact(s string) (string, bool) { return v.redact(s, Marker) }

func (v Values) redact(s, marker string) (string, bool) {
	if s == "" || v.Empty() {
		return s, false
	}
	orig := []rune(s)
	folded := make([]rune, len(orig))
	for i, r := range orig {
		folded[i] = foldRune(r)
	}
	hit := make([]bool, len(orig))
	any := false
	mark := func(from, to int) {
		for i := from; i < to; i++ {
			hit[i] = true
		}
		any = true
	}
	for _, t := range v.Texts {
		needle := []rune(t)
		for i := 0; i+len(needle) <= len(folded); i++ {
			if equalRunes(folded[i:i+len(needle)], needle) {
				mark(i, i+len(needle))
			}
		}
	}
	if len(v.Phones) > 0 {
		for _, r := range phoneRanges(folded, v.Phones) {
			mark(r[0], r[1])
		}
	}
	if !any {
		return s, false
	}
	var b strings.Builder
	for i := 0; i < len(orig); i++ {
		if !hit[i] {
			b.WriteRune(orig[i])
			continue
		}
		b.WriteString(marker)
		for i+1 < len(orig) && hit[i+1] {
			i++
		}
	}
	return b.String(), true
}

func equalRunes(a, b []rune) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func isDigit(r rune) bool { return '0' <= r && r <= '9' }

// isPhoneSep reports whether r may sit between the digit groups of a
// written phone number.
func isPhoneSep(r rune) bool {
	return r == ' ' || r == '-' || r == '.' || r == '(' || r == ')' || r == '+' || r == '\u00a0'
}

// maxGroups bounds how many digit groups one written number spans, so a
// long list of numbers costs linear time.
const maxGroups = 6

// phoneRanges returns the rune ranges of text (folded) that spell one of
// phones.
func phoneRanges(text []rune, phones []string) [][2]int {
	var out [][2]int
	// groups: [start, end) of each maximal digit run.
	var groups [][2]int
	for i := 0; i < len(text); {
		if !isDigit(text[i]) {
			i++
			continue
		}
		j := i
		for j < len(text) && isDigit(text[j]) {
			j++
		}
		groups = append(groups, [2]int{i, j})
		i = j
	}
	// onlySeps reports whether text[a:b] is separators only.
	onlySeps := func(a, b int) bool {
		for _, r := range text[a:b] {
			if !isPhoneSep(r) {
				return false
			}
		}
		return true
	}
	for i := 0; i < len(groups); {
		start := groups[i][0]
		if start > 0 && text[start-1] == '+' {
			start--
		}
		found := -1
		// The longest spelling first, so "+86 138 0013 8000" goes whole.
		last := i
		for j := i + 1; j < len(groups) && j-i < maxGroups && onlySeps(groups[j-1][1], groups[j][0]); j++ {
			last = j
		}
		for j := last; j >= i && found < 0; j-- {
			if contains(phones, dedupe.Phone(string(text[start:groups[j][1]]))) {
				found = j
			}
		}
		if found >= 0 {
			out = append(out, [2]int{start, groups[found][1]})
			i = found + 1
			continue
		}
		// A number run into other digits ("No.13800138000123").
		g := string(text[groups[i][0]:groups[i][1]])
		for _, p := range phones {
			if k := strings.Index(g, p); k >= 0 {
				out = append(out, [2]int{groups[i][0] + k, groups[i][0] + k + len(p)})
			}
		}
		i++
	}
	return out
}
