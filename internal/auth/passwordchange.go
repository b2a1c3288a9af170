package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/ent"
	"github.com/shoalcrm/shoal/ent/user"
	"github.com/shoalcrm/shoal/internal/apperr"
	"github.com/shoalcrm/shoal/internal/events"
	"github.com/shoalcrm/shoal/internal/store"
)

// PasswordChanged is the outcome of ChangePassword.
type PasswordChanged struct {
	// RevokedSessions is how many other sessions were ended.
	RevokedSessions int
	// AccessToken is a fresh token for the caller's current session.
	AccessToken string
	ExpiresIn   time.Duration
}

var errNoPassword = apperr.New(apperr.Forbidden, "forbidden", "only people have passwords")

// ChangePassword sets a new password for the calling user after checking
// his current one, and ends every other session of his: their refresh
// tokens are revoked and the session epoch moves, which ends every access
// token issued so far. The current session (named by the access token's
// sid) stays, with a fresh access token; its refresh token keeps working.
// A wrong current password counts against the login throttles like a
// failed login (apperr Unauthenticated invalid_credentials, then
// RateLimited). API keys have no password: Forbidden.
func (s *Service) ChangePassword(ctx context.Context, p *Principal, current, next, clientAddr string) (*PasswordChanged, error) {
	if p == nil || p.Type != ActorUser {
		return nil, errNoPassword
	}
	me, err := s.store.Reader.User.Get(ctx, p.ID)
	if ent.IsNotFound(err) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", err)
	}
	// The new password is checked first: it is cheap, and a weak one
	// needs no argon2 run at all.
	if err := CheckPassword("body/newPassword", next, me.Email); err != nil {
		return nil, err
	}
	var out *PasswordChanged
	_, err = s.checkPassword(ctx, me.Email, clientAddr, current, func(u *ent.User) error {
		if u.ID != me.ID {
			// The email moved to another account between the two reads.
			return errUnauthorized
		}
		hash, err := s.cfg.Gate.Hash(ctx, next)
		if err != nil {
			return err
		}
		out, err = s.setPassword(ctx, u.ID, hash, p.SessionID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (s *Service) setPassword(ctx context.Context, userID uuid.UUID, hash string, keep uuid.UUID) (*PasswordChanged, error) {
	out := &PasswordChanged{}
	var epoch int
	err := s.store.WithTx(ctx, func(tx *ent.Tx) error {
		u, err := store.ForUpdate(s.store, tx.User.Query().Where(user.ID(userID))).Only(ctx)
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		if !u.Active {
			return errUnauthorized
		}
		if out.RevokedSessions, err = RevokeSessions(ctx, tx, userID, keep); err != nil {
			return err
		}
		u, err = tx.User.UpdateOne(u).SetPasswordHash(hash).AddSessionEpoch(1).Save(ctx)
		if err != nil {
			return fmt.Errorf("set password: %w", err)
		}
		epoch = u.SessionEpoch
		// The user changed his own password: the field's name only.
		id := userID
		return events.Emit(ctx, tx, events.Event{Type: events.UserUpdated, SubjectKind: events.KindUser, SubjectID: userID,
			Actor: events.Actor{Type: string(ActorUser), ID: &id}, OccurredAt: time.Now(),
			Data: events.UserChanged{Fields: []string{"password"}, SessionsEnded: out.RevokedSessions}})
	})
	if err != nil {
		return nil, err
	}
	if out.AccessToken, out.ExpiresIn, err = s.keys.SignSession(userID, epoch, keep); err != nil {
		return nil, err
	}
	return out, nil
}
