package httpapi

import (
	"context"

	"time"

	"github.com/google/uuid"
	"github.com/oapi-codegen/nullable"
	openapi_types "github.com/oapi-codegen/runtime/types"

	"github.com/shoalcrm/shoal/api"
	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/internal/listing"
	"github.com/shoalcrm/shoal/internal/org"
	"github.com/shoalcrm/shoal/internal/patch"
)

// nullOf renders an optional value as an explicit JSON null when absent, so
// clients see every field of a representation.
func nullOf[T any](v *T) nullable.Nullable[T] {
	if v == nil {
		return nullable.NewNullNullable[T]()
	}
	return nullable.NewNullableWithValue(*v)
}

// nullTime is nullOf for times, normalised to UTC.
func nullTime(t *time.Time) nullable.Nullable[time.Time] {
	if t == nil {
		return nullable.NewNullNullable[time.Time]()
	}
	return nullable.NewNullableWithValue(t.UTC())
}

// capOut renders a stored cap.
func capOut(v *int) nullable.Nullable[api.Cap] {
	if v == nil {
		return nullable.NewNullNullable[api.Cap]()
	}
	return nullable.NewNullableWithValue(api.Cap(*v))
}

// fieldOf turns a merge-patch field from the API into a domain patch field.
func fieldOf[T, U any](n nullable.Nullable[T], conv func(T) U) patch.Field[U] {
	if !n.IsSpecified() {
		return patch.Field[U]{}
	}
	if n.IsNull() {
		return patch.Null[U]()
	}
	return patch.Value(conv(n.MustGet()))
}

func capIn(v api.Cap) int { return int(v) }

func same[T any](v T) T { return v }

// utcPtr is an optional time in UTC.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// idPtr reads an optional id on create (null and absent both mean unset).
func idPtr(n nullable.Nullable[uuid.UUID]) *uuid.UUID {
	if !n.IsSpecified() || n.IsNull() {
		return nil
	}
	v := n.MustGet()
	return &v
}

// capPtr reads an optional cap on create (null and absent both mean unset).
func capPtr(n nullable.Nullable[api.Cap]) *int {
	if !n.IsSpecified() || n.IsNull() {
		return nil
	}
	v := int(n.MustGet())
	return &v
}

func capsIn(leads, customers, frozen nullable.Nullable[api.Cap]) org.Caps {
	return org.Caps{MaxOwnedLeads: capPtr(leads), MaxOwnedCustomers: capPtr(customers), MaxFrozen: capPtr(frozen)}
}

func capsPatchIn(leads, customers, frozen nullable.Nullable[api.Cap]) org.CapsPatch {
	return org.CapsPatch{
		MaxOwnedLeads:     fieldOf(leads, capIn),
		MaxOwnedCustomers: fieldOf(customers, capIn),
		MaxFrozen:         fieldOf(frozen, capIn),
	}
}

func userOut(u *ent.User) api.User {
	return api.User{
		Id:                u.ID,
		Email:             openapi_types.Email(u.Email),
		Name:              u.Name,
		Role:              api.Role(u.Role),
		TeamId:            nullOf(u.TeamID),
		Active:            u.Active,
		MaxOwnedLeads:     capOut(u.MaxOwnedLeads),
		MaxOwnedCustomers: capOut(u.MaxOwnedCustomers),
		MaxFrozen:         capOut(u.MaxFrozen),
		CreatedAt:         u.CreatedAt.UTC(),
		UpdatedAt:         u.UpdatedAt.UTC(),
	}
}

func teamOut(t *ent.Team) api.Team {
	return api.Team{
		Id:                    t.ID,
		Name:                  t.Name,
		ParentId:              nullOf(t.ParentID),
		MaxOwnedLeads:         capOut(t.MaxOwnedLeads),
		MaxOwnedCustomers:     capOut(t.MaxOwnedCustomers),
		MaxFrozen:             capOut(t.MaxFrozen),
		DefaultLeadPoolId:     nullOf(t.DefaultLeadPoolID),
		DefaultCustomerPoolId: nullOf(t.DefaultCustomerPoolID),
		CreatedAt:             t.CreatedAt.UTC(),
		UpdatedAt:             t.UpdatedAt.UTC(),
	}
}

func apiKeyOut(k *ent.APIKey) api.ApiKey {
	scopes := make([]api.Scope, len(k.Scopes))
	for i, s := range k.Scopes {
		scopes[i] = api.Scope(s)
	}
	createdBy := k.CreatedBy
	return api.ApiKey{
		Id:         k.ID,
		Name:       k.Name,
		Prefix:     k.Prefix,
		Scopes:     scopes,
		PoolId:     nullOf(k.PoolID),
		ExpiresAt:  nullTime(k.ExpiresAt),
		LastUsedAt: nullTime(k.LastUsedAt),
		RevokedAt:  nullTime(k.RevokedAt),
		CreatedBy:  &createdBy,
		CreatedAt:  k.CreatedAt.UTC(),
	}
}

func auditOut(e *ent.AuditEvent) api.AuditEvent {
	status := int32(e.Status)
	return api.AuditEvent{
		Id:            e.ID,
		At:            e.At.UTC(),
		ActorType:     api.AuditEventActorType(e.ActorType),
		ActorId:       nullOf(e.ActorID),
		Operation:     e.Operation,
		TargetType:    &e.TargetType,
		TargetId:      &e.TargetID,
		RequestId:     &e.RequestID,
		ClientAddress: &e.ClientAddress,
		Outcome:       api.AuditEventOutcome(e.Outcome),
		Status:        &status,
		Detail:        &e.Detail,
	}
}

// cursorIn decodes a list's optional cursor parameter, signed for the
// operation on ctx; a cursor this server did not issue for it is a 400
// invalid_cursor.
func (s *Server) cursorIn(ctx context.Context, cursor *string) (*listing.Cursor, error) {
	return listing.Decode(ctx, s.cursors, cursor)
}

// cursorOut signs the cursor of a list's next page; nil when there is none.
func (s *Server) cursorOut(ctx context.Context, c *listing.Cursor) *string {
	return listing.Encode(ctx, s.cursors, c)
}
