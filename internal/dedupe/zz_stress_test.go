package dedupe

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
)

func TestZZStress(t *testing.T) {
	pieces := []string{"a", "Z", "i", "İ", "ß", "ẞ", "Σ", "ς", "K", "Ω", "\u0301", "\u0307", "\u0338", "\u3099", "か", "\u1100", "\u1161", "\u11a8", "가",
		".", " ", "-", "　", "，", "。", "™", "½", "①", "⑴", "㈱", "㍿", "ｱ", "ﾞ", "ｰ", "Ａ", "１", "+", "8", "6", "0", "1",
		"inc", "ltd", "co", "limited", "company", "corp", "oration", "gmbh", "llc", "有限", "公司", "集团", "股份", "责任", "科技",
		"\u200b", "\x00", "\xff", "ǅ", "ǆ", "ﬁ", "㎁", "Å", "å", "\u212b", "ϒ", "\u0345", "ΐ", "ᾼ", "ᾳ", "\u0315", "\u031b", "ơ", "\u05b0", "\u0e31"}
	// add a sampling of all runes that NFKC or lowercase might touch
	for r := rune(0x80); r < 0x30000; r += 1 {
		if rand.IntN(8) == 0 && (unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsNumber(r)) {
			pieces = append(pieces, string(r))
		}
	}
	r := rand.New(rand.NewPCG(rand.Uint64(), 2))
	for i := 0; i < 3000000; i++ {
		var b strings.Builder
		n := 1 + r.IntN(8)
		for j := 0; j < n; j++ {
			b.WriteString(pieces[r.IntN(len(pieces))])
		}
		s := b.String()
		if n1 := Name(s); Name(n1) != n1 {
			t.Fatalf("Name(%q)=%q Name again=%q", s, n1, Name(n1))
		}
		if p := Phone(s); Phone(p) != p {
			t.Fatalf("Phone %q", s)
		}
	}
}
