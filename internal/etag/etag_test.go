package etag

import (
	"testing"

	"github.com/shoalcrm/shoal/internal/apperr"
)

func TestCheck(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		name    string
		ifMatch *string
		version int
		code    string
	}{
		{"absent", nil, 3, "precondition_required"},
		{"blank", s("  "), 3, "precondition_required"},
		{"current", s(`"v3"`), 3, ""},
		{"weak current", s(`W/"v3"`), 3, ""},
		{"star", s("*"), 3, ""},
		{"list with current", s(`"v1", "v3"`), 3, ""},
		{"stale", s(`"v2"`), 3, "precondition_failed"},
		{"unquoted", s(`v3`), 3, "precondition_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.ifMatch, tc.version)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Check = %v, want nil", err)
				}
				return
			}
			if !apperr.HasCode(err, tc.code) {
				t.Fatalf("Check = %v, want code %s", err, tc.code)
			}
		})
	}
	if got := Of(7); got != `"v7"` {
		t.Fatalf("Of(7) = %s", got)
	}
}
