package main

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/testdb"
)

// `shoal user create` applies the password policy like the API does.
func TestUserCreateRefusesWeakPasswords(t *testing.T) {
	testdb.Each(t, func(t *testing.T, databaseURL string) {
		getenv := func(k string) string {
			if k == "SHOAL_DATABASE_URL" {
				return databaseURL
			}
			return ""
		}
		for _, pw := range []string{"password1", "ｐａｓｓｗｏｒｄ１", "weak@example.com", "short"} {
			err := run(context.Background(), []string{"user", "create", "--email", "weak@example.com", "--role", "rep", "--password-stdin"},
				getenv, strings.NewReader(pw+"\n"), io.Discard, io.Discard)
			if !apperr.HasCode(err, "weak_password") {
				t.Errorf("user create with %q: %v, want weak_password", pw, err)
			}
		}
	})
}
