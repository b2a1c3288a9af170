package auth

import (
	_ "embed"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/shoalcrm/shoal/internal/apperr"
)

// Password policy, after NIST SP 800-63B §5.1.1: a length range counted
// after NFKC normalisation, no composition rules, and no password from a
// list of commonly used ones or derived from the account's email.
const (
	MinPasswordLength = 8
	MaxPasswordLength = 256
)

// commonPasswordsText holds the 10,000 most common passwords, one a line,
// lower case. They are the first 10,000 entries of passwords.txt shipped
// in the Go module github.com/trustelem/zxcvbn v1.0.1 (MIT), which is
// zxcvbn's frequency-ranked extract of the xato.net ten-million password
// list (Mark Burnett) - the same source as SecLists' top-10000 lists.
//
//go:embed common_passwords.txt
var commonPasswordsText string

var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 10_000)
	for _, line := range strings.Split(commonPasswordsText, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			m[line] = struct{}{}
		}
	}
	return m
})

// IsCommonPassword reports whether password (compared in NFKC form, case
// folded) is in the built-in list of common passwords.
func IsCommonPassword(password string) bool {
	_, ok := commonPasswords()[strings.ToLower(NormalizePassword(password))]
	return ok
}

// CheckPassword applies the password policy to a new password of the
// account with the given email. It returns apperr Invalid with code
// weak_password naming field, or nil.
func CheckPassword(field, password, email string) error {
	weak := func(reason, msg string) error {
		return &apperr.Error{Kind: apperr.Invalid, Code: "weak_password", Message: msg,
			Fields: []apperr.FieldError{{Field: field, Code: reason, Message: msg}}}
	}
	// Bound the work before normalising: NFKC can only grow a string by a
	// bounded factor, but there is no reason to normalise megabytes.
	if len(password) > 4*MaxPasswordLength {
		return weak("too_long", fmt.Sprintf("password must have at most %d characters", MaxPasswordLength))
	}
	n := NormalizePassword(password)
	switch l := utf8.RuneCountInString(n); {
	case l < MinPasswordLength:
		return weak("too_short", fmt.Sprintf("password must have at least %d characters (after Unicode NFKC normalisation)", MinPasswordLength))
	case l > MaxPasswordLength:
		return weak("too_long", fmt.Sprintf("password must have at most %d characters", MaxPasswordLength))
	}
	folded := strings.ToLower(n)
	if _, ok := commonPasswords()[folded]; ok {
		return weak("common", "password is too common")
	}
	if email = NormalizeEmail(email); email != "" {
		local, _, _ := strings.Cut(email, "@")
		if folded == email || folded == local {
			return weak("equals_email", "password must not be the email or its local part")
		}
	}
	return nil
}
