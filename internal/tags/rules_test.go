package tags

import (
	"slices"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apperr"
)

func TestRenameIn(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tags     []string
		from, to string
		want     []string
		changed  bool
	}{
		{"absent", []string{"a", "b"}, "x", "y", []string{"a", "b"}, false},
		{"empty", nil, "x", "y", nil, false},
		{"replaced in place", []string{"a", "x", "b"}, "x", "y", []string{"a", "y", "b"}, true},
		{"new name already before", []string{"y", "x", "b"}, "x", "y", []string{"y", "b"}, true},
		{"new name already after", []string{"x", "b", "y"}, "x", "y", []string{"y", "b"}, true},
		{"only tag", []string{"x"}, "x", "y", []string{"y"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.tags)
			got, changed := renameIn(in, tc.from, tc.to)
			if changed != tc.changed || !slices.Equal(got, tc.want) {
				t.Fatalf("renameIn(%q, %q, %q) = %q, %v; want %q, %v", tc.tags, tc.from, tc.to, got, changed, tc.want, tc.changed)
			}
			if !slices.Equal(in, tc.tags) {
				t.Fatalf("renameIn changed its argument: %q", in)
			}
		})
	}
}

func TestRemoveFrom(t *testing.T) {
	for _, tc := range []struct {
		name    string
		tags    []string
		drop    string
		want    []string
		changed bool
	}{
		{"absent", []string{"a"}, "x", []string{"a"}, false},
		{"middle", []string{"a", "x", "b"}, "x", []string{"a", "b"}, true},
		{"only", []string{"x"}, "x", []string{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, changed := removeFrom(tc.tags, tc.drop)
			if changed != tc.changed || !slices.Equal(got, tc.want) {
				t.Fatalf("removeFrom(%q, %q) = %q, %v; want %q, %v", tc.tags, tc.drop, got, changed, tc.want, tc.changed)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		code     string // "" when valid
	}{
		{"vip", "vip", ""},
		{"  重点客户 \t", "重点客户", ""},
		{"   ", "", "required"},
		{"", "", "required"},
		{strings.Repeat("标", 50), strings.Repeat("标", 50), ""},
		{" " + strings.Repeat("a", 51), "", "maxLength"},
	} {
		got, err := Normalize("body/name", tc.in)
		if tc.code == "" {
			if err != nil || got != tc.want {
				t.Errorf("Normalize(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		if e, ok := apperr.As(err); !ok || e.Kind != apperr.Invalid || e.Fields[0].Code != tc.code {
			t.Errorf("Normalize(%q): %v, want Invalid %s", tc.in, err, tc.code)
		}
	}
}

func TestCheckColor(t *testing.T) {
	for c, ok := range map[string]bool{"#00aaFF": true, "#000": false, "00aaff": false, "#00aaffx": false, "": false} {
		if err := CheckColor("body/color", c); (err == nil) != ok {
			t.Errorf("CheckColor(%q) = %v", c, err)
		}
	}
}
