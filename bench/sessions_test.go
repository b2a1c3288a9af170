package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shoalcrm/shoal/internal/apitest"
)

// tokenRefresh is how often sessions log their users in again: well inside
// the 15-minute access-token lifetime, which a full-size run outlasts.
const tokenRefresh = 5 * time.Minute

// sessions holds the access tokens of logged-in users and keeps them fresh
// while workers read them.
type sessions struct {
	env    *apitest.Env
	client *http.Client
	ids    []uuid.UUID
	emails []string
	tokens []*atomic.Pointer[string]
	stop   chan struct{}
	done   chan error
}

// newSessions creates count users with role (no caps), logs them in, and
// logs them in again every tokenRefresh until the test ends.
func newSessions(tb testing.TB, env *apitest.Env, client *http.Client, role string, count int) *sessions {
	tb.Helper()
	return newSessionsIn(tb, env, client, role, count, nil)
}

// newSessionsIn is newSessions with the users in team (nil: none).
func newSessionsIn(tb testing.TB, env *apitest.Env, client *http.Client, role string, count int, team *uuid.UUID) *sessions {
	tb.Helper()
	s := &sessions{env: env, client: client, stop: make(chan struct{}), done: make(chan error, 1)}
	for range count {
		u, cl := env.User(role, team)
		tok := cl.Bearer
		s.ids = append(s.ids, u.ID)
		s.emails = append(s.emails, u.Email)
		s.tokens = append(s.tokens, &atomic.Pointer[string]{})
		s.tokens[len(s.tokens)-1].Store(&tok)
	}
	go s.keepFresh()
	tb.Cleanup(func() {
		close(s.stop)
		if err := <-s.done; err != nil {
			tb.Errorf("keeping %s sessions fresh: %v", role, err)
		}
	})
	return s
}

// token is user i's current access token.
func (s *sessions) token(i int) string { return *s.tokens[i].Load() }

// keepFresh logs everyone in again every tokenRefresh. A few logins every
// five minutes (two argon2 hashes each) cost well under 1% of a run.
func (s *sessions) keepFresh() {
	t := time.NewTicker(tokenRefresh)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			s.done <- nil
			return
		case <-t.C:
			if err := s.relogin(); err != nil {
				s.done <- err
				return
			}
		}
	}
}

// relogin replaces every user's access token with a fresh one.
func (s *sessions) relogin() error {
	for i, email := range s.emails {
		tok, err := s.login(email)
		if err != nil {
			return err
		}
		s.tokens[i].Store(&tok)
	}
	return nil
}

// login returns a fresh access token, through the API.
func (s *sessions) login(email string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": apitest.Password})
	res, err := s.client.Post(s.env.URL+"/v1/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	var tok struct{ AccessToken string }
	if err := json.NewDecoder(res.Body).Decode(&tok); err != nil || res.StatusCode != http.StatusOK || tok.AccessToken == "" {
		return "", fmt.Errorf("log in %s: status %d %v", email, res.StatusCode, err)
	}
	return tok.AccessToken, nil
}
