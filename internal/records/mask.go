package records

import (
	"slices"
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

// masker decides what a principal sees of pooled records in one pool.
type masker struct {
	on      bool
	visible []string
}

// maskerFor returns the masking that applies to p for pooled records of
// pl: none for admins, auditors, the pool's managers and API keys (an
// integration sees what it was granted), and for pools without a
// visibleFields setting.
func maskerFor(p *auth.Principal, pl *ent.Pool) masker {
	if pl == nil || pl.VisibleFields == nil || p.Type != auth.ActorUser ||
		p.Role == auth.RoleAdmin || p.Role == auth.RoleAuditor || authz.ManagesPool(p, pl.ManagerIds) {
		return masker{}
	}
	return masker{on: true, visible: pl.VisibleFields}
}

// str masks v unless field is visible; it reports whether it masked.
func (m masker) str(field string, v *string) bool {
	if !m.on || *v == "" || slices.Contains(m.visible, field) {
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
	if !m.on || len(*v) == 0 || slices.Contains(m.visible, "tags") {
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
