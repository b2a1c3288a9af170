package records

import (
	"strings"
	"unicode/utf8"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/internal/authz"
)

// Maskable fields: what a pool's visibleFields may list. Anything not
// listed is masked for non-owners looking at pooled records; followUps
// stands for the content of the record's follow-ups.
var Maskable = []string{"name", "company", "phone", "email", "notes", "address", "website", "region", "industry", "source", "tags", "wechat", FieldFollowUps}

// FieldFollowUps is the visibleFields entry that shows pooled records'
// follow-up content to pool members.
const FieldFollowUps = "followUps"

// masker applies what a principal sees masked of pooled records in one
// pool (authz decides which fields).
type masker struct{ authz.Masking }

// maskerFor returns the masking that applies to p for pooled records of
// pl (none when pl is nil).
func maskerFor(p *auth.Principal, pl *ent.Pool) masker {
	if pl == nil {
		return masker{}
	}
	return masker{authz.MaskingFor(p, authz.PoolOf(pl))}
}

// str masks v unless field is visible; it reports whether it masked.
func (m masker) str(field string, v *string) bool {
	if *v == "" || !m.Hides(field) {
		return false
	}
	switch field {
	case "phone":
		*v = maskPhone(*v)
	case "email":
		*v = maskEmail(*v)
	default:
		*v = maskText(*v)
	}
	return true
}

func (m masker) tags(v *[]string) bool {
	if len(*v) == 0 || !m.Hides("tags") {
		return false
	}
	*v = []string{}
	return true
}

// maskPhone keeps the first three and last four digits: 138****8000.
func maskPhone(v string) string {
	r := []rune(v)
	if len(r) <= 7 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

// maskEmail keeps the first character and the domain: f***@example.com.
func maskEmail(v string) string {
	local, domain, ok := strings.Cut(v, "@")
	if !ok || local == "" {
		return maskText(v)
	}
	first, _ := utf8.DecodeRuneInString(local)
	return string(first) + "***@" + domain
}

// maskText keeps the first character: 北**.
func maskText(v string) string {
	first, _ := utf8.DecodeRuneInString(v)
	return string(first) + "**"
}
