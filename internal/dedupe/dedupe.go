// Package dedupe normalises customer names, phone numbers and email
// addresses into the keys used for duplicate checks (查重), so that two
// spellings of the same customer compare equal.
//
// All functions are pure and safe for concurrent use.
package dedupe

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
	"golang.org/x/text/width"
)

// Tokens describing what a normalised value matched on, used in API responses.
const (
	MatchedName  = "name"
	MatchedPhone = "phone"
	MatchedEmail = "email"
)

// minPhoneDigits is the shortest normalised phone number worth comparing;
// anything shorter is a typo or a fragment and would match far too much.
const minPhoneDigits = 5

// Name normalises a person or company name for duplicate checks.
//
// Full-width characters are folded to half-width and the result is NFKC
// normalised and lower-cased; whitespace, punctuation, symbols and invisible
// characters are dropped; and trailing legal forms such as 有限公司 or
// "Co., Ltd." are removed, so "ＡＢＣ科技有限公司" and "abc科技" both give
// "abc科技". Name is idempotent: Name(Name(s)) == Name(s).
func Name(s string) string {
	// width.Fold rather than width.Narrow: Narrow also turns ideographic
	// punctuation such as 。 into its half-width form.
	s = width.Fold.String(s)
	// Separators are blanked before NFKC as well as dropped after it: NFKC
	// spells some symbols out in letters ("™" becomes "TM") and breaks some
	// numbers into punctuation ("½" becomes "1⁄2").
	s = strings.Map(blankSeparator, s)
	s = strings.ToLower(norm.NFKC.String(s))
	key, wordStarts := joinWords(s)
	key = trimLegalForms(key, wordStarts)
	// Dropping a separator can leave a base letter next to a combining mark
	// or jamo it now composes with; composing here, rather than on the next
	// call, is what keeps Name idempotent.
	return norm.NFC.String(key)
}

// isSeparator reports whether r carries no identity in a name. Control and
// format characters (zero-width spaces, BOMs, soft hyphens) are included
// because they arrive invisibly through copy and paste.
func isSeparator(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) ||
		unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
}

// blankSeparator maps separators to a space, which keeps the word break
// they made for joinWords to see.
func blankSeparator(r rune) rune {
	if isSeparator(r) {
		return ' '
	}
	return r
}

// joinWords drops the separators from s. It also returns the byte offsets,
// in ascending order, in the result where a word followed a dropped
// separator, because an English legal form only counts when it is a word of
// its own.
func joinWords(s string) (key string, wordStarts []int) {
	var b strings.Builder
	b.Grow(len(s))
	afterSeparator := false
	for _, r := range s {
		if isSeparator(r) {
			afterSeparator = true
			continue
		}
		if afterSeparator {
			wordStarts = append(wordStarts, b.Len())
			afterSeparator = false
		}
		b.WriteRune(r)
	}
	return b.String(), wordStarts
}

// legalForm is a suffix naming a company's legal form rather than the
// company, written as it looks once separators are gone ("Co., Ltd." is
// "coltd").
type legalForm struct {
	text string
	// latin forms must start a word, so that "Zinc" keeps its "inc" and
	// "Unlimited" its "limited". Chinese has no word breaks to go by.
	latin bool
}

// legalForms lists the suffixes trimLegalForms removes. 公司 on its own is
// deliberately absent: it also ends compounds such as 分公司 (branch
// office), and as the shortest and most generic form it is the one most
// likely to be part of the name itself; missing the "XX公司" / "XX有限公司"
// pair is the cheaper mistake than merging two customers.
func legalForms() []legalForm {
	return []legalForm{
		{text: "集团有限公司"},
		{text: "股份有限公司"},
		{text: "有限责任公司"},
		{text: "有限公司"},
		{text: "集团"},
		{text: "companylimited", latin: true},
		{text: "corporation", latin: true},
		{text: "limited", latin: true},
		{text: "coltd", latin: true},
		{text: "corp", latin: true},
		{text: "gmbh", latin: true},
		{text: "inc", latin: true},
		{text: "llc", latin: true},
		{text: "ltd", latin: true},
	}
}

// trimLegalForms repeatedly removes the longest legal form ending key, so
// that stacked forms ("XX集团股份有限公司", "Foo Ltd Inc") all go. When the
// longest form is the whole key it stops instead: a name consisting only of
// a legal form ("有限公司") is still better than an empty key that would
// match every other such name.
func trimLegalForms(key string, wordStarts []int) string {
	for {
		start := legalFormStart(key, wordStarts)
		if start <= 0 {
			return key
		}
		key = key[:start]
	}
}

// legalFormStart returns the byte offset where the longest legal form
// ending key begins, or -1 if there is none.
func legalFormStart(key string, wordStarts []int) int {
	best := -1
	for _, f := range legalForms() {
		if !strings.HasSuffix(key, f.text) {
			continue
		}
		start := len(key) - len(f.text)
		if f.latin && !startsWord(key, start, wordStarts) {
			continue
		}
		if best < 0 || start < best {
			best = start
		}
	}
	return best
}

// startsWord reports whether a word begins at byte offset i of key: at the
// start, after a dropped separator, or where Latin text meets another
// script ("科技Ltd"). Combining marks belong to the letter before them.
func startsWord(key string, i int, wordStarts []int) bool {
	if _, found := slices.BinarySearch(wordStarts, i); i == 0 || found {
		return true
	}
	for prefix := key[:i]; prefix != ""; {
		r, size := utf8.DecodeLastRuneInString(prefix)
		if unicode.Is(unicode.M, r) {
			prefix = prefix[:len(prefix)-size]
			continue
		}
		return !unicode.Is(unicode.Latin, r) && !unicode.IsDigit(r)
	}
	return true
}

// Phone normalises a phone number: digits only, +86/0086 country prefix dropped.
//
// Chinese numbers come out in national form: mobiles as their 11 digits and
// landlines with the trunk 0 ("+86 10 8888 6666" gives "01088886666").
// Other numbers written with "+" come out as dialled from China ("+1 415…"
// gives "001415…"), so they match the same number written with "00" and
// cannot collide with a domestic one. Anything after an extension marker
// (转, 分机, ext, x) is ignored, and results shorter than five digits are
// returned as "" because they cannot identify anyone.
func Phone(s string) string {
	digits, plus := phoneDigits(strings.ToLower(width.Fold.String(s)))
	if plus && !strings.HasPrefix(digits, "00") {
		digits = "00" + digits
	}

	national := digits
	switch {
	case strings.HasPrefix(digits, "0086"):
		national = chineseNational(digits)
	case strings.HasPrefix(digits, "86") && isChineseMobile(digits[2:]):
		// Without "+" or "00" a leading 86 may be part of a local number
		// (Beijing numbers start with 8), so it is only dropped when what
		// follows is unmistakably a mobile number.
		national = digits[2:]
	}
	if len(national) < minPhoneDigits {
		return ""
	}
	return national
}

// phoneDigits returns the ASCII digits of s up to any extension marker, and
// whether a "+" came before the first digit. Markers only count once a
// digit has been seen, so the x in a "Fax:" label does not end the number.
func phoneDigits(s string) (digits string, plus bool) {
	var b strings.Builder
	for i, r := range s {
		switch {
		case '0' <= r && r <= '9':
			b.WriteRune(r)
		case b.Len() == 0:
			plus = plus || r == '+'
		case startsExtension(s[i:]):
			return b.String(), plus
		}
	}
	return b.String(), plus
}

// startsExtension reports whether s, already lower-cased, begins with an
// extension marker.
func startsExtension(s string) bool {
	for _, marker := range []string{"转", "分机", "ext", "x"} {
		if strings.HasPrefix(s, marker) {
			return true
		}
	}
	return false
}

// chineseNational turns a number in 0086 international form into national
// form. The prefix is stripped repeatedly because pasted numbers sometimes
// carry it twice, and stripping it only once would leave a result that a
// second call changes again.
func chineseNational(digits string) string {
	for strings.HasPrefix(digits, "0086") {
		digits = digits[len("0086"):]
	}
	if isChineseMobile(digits) || digits == "" || digits[0] == '0' {
		return digits
	}
	// International form omits the landline trunk prefix; restore it so
	// the number matches how it is written at home.
	return "0" + digits
}

// isChineseMobile reports whether digits look like a mainland mobile
// number: 11 digits starting with 1.
func isChineseMobile(digits string) bool {
	return len(digits) == 11 && digits[0] == '1'
}

// Email normalises an email: trimmed and lower-cased.
//
// Full-width characters are folded first, because a Chinese input method
// readily produces "ｆｏｏ＠ｅｘａｍｐｌｅ．ｃｏｍ". A string with no "@"
// is not an address and gives "".
func Email(s string) string {
	s = strings.TrimFunc(width.Fold.String(s), unicode.IsSpace)
	if !strings.Contains(s, "@") {
		return ""
	}
	return strings.ToLower(s)
}
