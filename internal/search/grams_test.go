package search

import (
	"slices"
	"testing"
)

func TestDocGrams(t *testing.T) {
	tests := []struct {
		name string
		doc  Doc
		want []string
	}{
		{"empty", Doc{}, []string{}},
		{"one character has no gram", Doc{Text: []string{"恒"}}, []string{}},
		{"two characters", Doc{Text: []string{"恒达"}}, []string{"恒达"}},
		{"chinese company", Doc{Text: []string{"苏州恒达机械"}}, []string{"州恒", "恒达", "机械", "苏州", "达机"}},
		{"repeats once", Doc{Text: []string{"abab", "ab"}}, []string{"ab", "ba"}},
		{"email", Doc{Text: []string{"a@b.cn"}}, []string{".c", "@b", "a@", "b.", "cn"}},
		{"phone four digits", Doc{Phones: []string{"13912345"}}, []string{"1234", "2345", "3912", "9123", "1391"}},
		{"short phone has no gram", Doc{Phones: []string{"139"}}, []string{}},
		{"phone separators dropped", Doc{Phones: []string{"139-12"}}, []string{"1391", "3912"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := slices.Sorted(slices.Values(tc.want))
			if got := tc.doc.Grams(); !slices.Equal(got, want) {
				t.Errorf("Grams() = %q, want %q", got, want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		q    string
		want Query
	}{
		{"恒达", Query{Text: "恒达", Email: "恒达"}},
		{" 恒达机械有限公司 ", Query{Text: "恒达机械", Email: "恒达机械有限公司"}},
		{"ＨengDa", Query{Text: "hengda", Email: "hengda"}},
		{"Sales@HengDa.cn", Query{Text: "saleshengdacn", Email: "sales@hengda.cn"}},
		{"2345", Query{Phone: "2345"}},
		{"139-1234", Query{Phone: "1391234"}},
		{"+86 139 1234 5678", Query{Phone: "13912345678"}},
		{"１３９１２", Query{Phone: "13912"}},
		{"345", Query{Text: "345", Email: "345"}},          // too few digits for a phone
		{"恒达1234", Query{Text: "恒达1234", Email: "恒达1234"}}, // letters: not a phone
	}
	for _, tc := range tests {
		if got := Parse(tc.q); got != tc.want {
			t.Errorf("Parse(%q) = %+v, want %+v", tc.q, got, tc.want)
		}
	}
}

func TestGramSets(t *testing.T) {
	tests := []struct {
		q       string
		indexed bool
		want    [][]string
	}{
		{"恒", false, nil},
		{"恒达", true, [][]string{{"恒达"}}},
		{"恒达机械", true, [][]string{{"机械", "恒达", "达机"}}},
		// The email reading keeps what the name reading drops.
		{"a.b", true, [][]string{{"ab"}, {".b", "a."}}},
		{"2345678", true, [][]string{{"2345", "3456", "4567", "5678"}}},
		{"2345", true, [][]string{{"2345"}}},
	}
	for _, tc := range tests {
		q := Parse(tc.q)
		if q.Indexed() != tc.indexed {
			t.Errorf("Parse(%q).Indexed() = %v", tc.q, q.Indexed())
		}
		got := q.GramSets()
		if len(got) != len(tc.want) {
			t.Errorf("GramSets(%q) = %q, want %q", tc.q, got, tc.want)
			continue
		}
		for i := range got {
			if want := slices.Sorted(slices.Values(tc.want[i])); !slices.Equal(got[i], want) {
				t.Errorf("GramSets(%q)[%d] = %q, want %q", tc.q, i, got[i], want)
			}
		}
	}
}
