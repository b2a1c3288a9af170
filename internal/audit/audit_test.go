package audit

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 500, "short"},
		{"abcdef", 3, "abc"},
		{"线索池", 4, "线"}, // 3 bytes a character: never half of one
		{"线索池", 6, "线索"},
		{strings.Repeat("公海", 100), 500, strings.Repeat("公海", 83)},
	} {
		got := truncate(tc.in, tc.n)
		if got != tc.want || !utf8.ValidString(got) {
			t.Errorf("truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
