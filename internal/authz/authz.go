// Package authz decides what a principal may do: which operations (casbin,
// role or scope × operationId, deny unless listed) and which records and
// users (data scope). Every handler goes through it; nothing else makes
// these decisions.
package authz

import (
	"fmt"
	"strings"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"

	"github.com/shoalcrm/shoal/internal/auth"
	"github.com/shoalcrm/shoal/policies"
)

// Enforcer answers "may this principal call this operation?".
//
// The policies are fixed when the enforcer is built, and there are only
// (subjects × operations) questions to ask, so casbin's cached enforcer
// remembers each answer: evaluating the matcher was about a twentieth of
// the CPU a claim costs.
type Enforcer struct {
	e *casbin.SyncedCachedEnforcer
}

// NewEnforcer loads the embedded policies/model.conf and policies/policy.csv.
func NewEnforcer() (*Enforcer, error) {
	return NewEnforcerFrom(policies.Model, policies.Policy)
}

// NewEnforcerFrom builds an enforcer from model and policy text.
func NewEnforcerFrom(modelText, policyText string) (*Enforcer, error) {
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	e, err := casbin.NewSyncedCachedEnforcer(m)
	if err != nil {
		return nil, fmt.Errorf("casbin enforcer: %w", err)
	}
	for i, line := range strings.Split(policyText, "\n") {
		if err := persist.LoadPolicyLine(strings.TrimSpace(line), e.GetModel()); err != nil {
			return nil, fmt.Errorf("policy.csv line %d: %w", i+1, err)
		}
	}
	if err := e.BuildRoleLinks(); err != nil {
		return nil, fmt.Errorf("casbin roles: %w", err)
	}
	return &Enforcer{e: e}, nil
}

// Subjects returns the casbin subjects a principal acts as: its role, or
// one "scope:<scope>" per API key scope.
func Subjects(p *auth.Principal) []string {
	if p == nil {
		return nil
	}
	switch p.Type {
	case auth.ActorUser:
		return []string{p.Role}
	case auth.ActorAPIKey:
		subs := make([]string, len(p.Scopes))
		for i, s := range p.Scopes {
			subs[i] = "scope:" + s
		}
		return subs
	}
	return nil
}

// Allowed reports whether p may call operation op.
func (en *Enforcer) Allowed(p *auth.Principal, op string) bool {
	for _, sub := range Subjects(p) {
		if ok, err := en.e.Enforce(sub, op); err == nil && ok {
			return true
		}
	}
	return false
}

// SubjectAllowed reports whether the casbin subject (a role or
// "scope:<scope>") may call op.
func (en *Enforcer) SubjectAllowed(sub, op string) bool {
	ok, err := en.e.Enforce(sub, op)
	return err == nil && ok
}

// Operations returns every operationId that has at least one policy.
func (en *Enforcer) Operations() map[string]bool {
	ops := map[string]bool{}
	rules, _ := en.e.GetPolicy()
	for _, rule := range rules {
		if len(rule) >= 2 {
			ops[rule[1]] = true
		}
	}
	return ops
}
