package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Methods of verifying an identity.
const (
	MethodPassword = "password"
	// MethodSSO is single sign-on through an Organization's or an
	// Enterprise Account's identity provider (package sso).
	MethodSSO = "sso"
)

// Identity is a person whose identity has been verified, and how. A
// session is started from an Identity and from nothing else, so a new way
// of signing in (an OpenID Connect provider) only has to produce one.
type Identity struct {
	UserID string
	Method string
	// SSO is where a single sign-on came from; nil for a password.
	SSO *SSOOrigin
}

// SSOOrigin is the identity provider that vouched for a session's person:
// the scope ("org:<id>", "ea:<id>") and connection whose single sign-on
// started it, and the provider's subject, session id and ID token, which
// ending the session at the provider needs.
type SSOOrigin struct {
	Scope, ConnectionID string
	Subject, SessionID  string
	IDToken             string
}

// SessionSettings say how long a session lasts.
type SessionSettings struct {
	// TTL is the longest a session lasts from sign-in.
	TTL time.Duration
	// Idle ends a session that has not been used for this long.
	Idle time.Duration
}

// DefaultSessionSettings are a working day, ended by an hour of idleness.
var DefaultSessionSettings = SessionSettings{TTL: 12 * time.Hour, Idle: time.Hour}

// touchEvery is how stale last_seen_at may be before a request refreshes
// it: one write a minute per active session, not one per page.
const touchEvery = time.Minute

// Session is a signed-in person. Its secret token lives only in the
// browser's cookie; the database keeps the token's hash.
type Session struct {
	ID     string
	UserID string
	Email  string
	Method string
	// SSOScope is the scope whose single sign-on started the session, ""
	// for a password.
	SSOScope   string
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

var errNoSession = &steward.Error{Kind: steward.KindUnauthenticated, Message: "you are not signed in, or your session has ended: sign in again"}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// StartSession starts a session for a verified identity and returns it
// with its secret token, which is stored only hashed. The person's expired
// sessions are deleted on the way.
func (a *Authenticator) StartSession(ctx context.Context, tx *store.Tx, id Identity) (Session, string, error) {
	token, err := newToken()
	if err != nil {
		return Session{}, "", err
	}
	sess := Session{ID: uuid.NewString(), UserID: id.UserID, Method: id.Method, CreatedAt: tx.Now, LastSeenAt: tx.Now, ExpiresAt: tx.Now.Add(a.sessions.TTL)}
	if err := tx.QueryRow(ctx, `SELECT email FROM users WHERE id = ?`, id.UserID).Scan(&sess.Email); err != nil {
		return Session{}, "", err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = ? AND expires_at <= ?`, id.UserID, store.Micros(tx.Now)); err != nil {
		return Session{}, "", err
	}
	var o SSOOrigin
	if id.SSO != nil {
		o, sess.SSOScope = *id.SSO, id.SSO.Scope
	}
	_, err = tx.Exec(ctx, `INSERT INTO web_sessions (id, token_hash, user_id, method, created_at, last_seen_at, expires_at,
		sso_scope, sso_connection_id, sso_subject, sso_sid, sso_id_token) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		sess.ID, steward.HashToken(token), sess.UserID, sess.Method, store.Micros(tx.Now), store.Micros(tx.Now), store.Micros(sess.ExpiresAt),
		nullable(o.Scope), nullable(o.ConnectionID), nullable(o.Subject), nullable(o.SessionID), nullable(o.IDToken))
	return sess, token, err
}

// nullable stores "" as NULL.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lookupSession returns the live session of token. It returns a
// KindUnauthenticated error when the token is unknown, or the session has
// expired or been idle longer than the settings' Idle.
func (a *Authenticator) lookupSession(ctx context.Context, token string) (Session, error) {
	if len(token) > 100 {
		return Session{}, errNoSession
	}
	hash := steward.HashToken(token)
	var sess Session
	var created, seen, expires int64
	var scope *string
	err := a.db.View(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, `SELECT s.id, s.user_id, s.method, s.created_at, s.last_seen_at, s.expires_at, u.email, s.sso_scope
			FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?`, hash).
			Scan(&sess.ID, &sess.UserID, &sess.Method, &created, &seen, &expires, &sess.Email, &scope)
	})
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return Session{}, errNoSession
	}
	if err != nil {
		return Session{}, err
	}
	sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt = store.Time(created), store.Time(seen), store.Time(expires)
	if scope != nil {
		sess.SSOScope = *scope
	}
	now := a.db.Now()
	if !now.Before(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) >= a.sessions.Idle {
		return Session{}, errNoSession
	}
	if now.Sub(sess.LastSeenAt) >= touchEvery {
		err = a.db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE web_sessions SET last_seen_at = ? WHERE id = ?`, store.Micros(tx.Now), sess.ID)
			return err
		})
		sess.LastSeenAt = now
	}
	return sess, err
}

// EndSession ends the session of token, if there is one.
func EndSession(ctx context.Context, tx *store.Tx, token string) error {
	_, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE token_hash = ?`, steward.HashToken(token))
	return err
}

// CSRFToken returns the anti-forgery token of the session whose secret is
// token: an HMAC keyed by the secret, which only the session's own pages
// can show and which a page of another site can neither read nor compute.
func CSRFToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("steward csrf v1"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports whether presented is the anti-forgery token of the
// session whose secret is token.
func CheckCSRF(token, presented string) bool {
	return token != "" && subtle.ConstantTimeCompare([]byte(CSRFToken(token)), []byte(presented)) == 1
}

// dummyHash is verified against when an address has no password, so that
// the answer takes as long as for a wrong password.
const dummyHash = "$argon2id$v=19$m=65536,t=3,p=2$c3Rld2FyZCBkdW1teSBzYWx0$LJRhz1r0rCeNxDOTKzr+wk5h1UcB0RLsK8a+ANPS1iA"

var errBadCredentials = &steward.Error{Kind: steward.KindUnauthenticated, Message: "wrong email or password"}

// VerifyPassword returns the identity of the person with this email
// address and password. An unknown address, a person without a password
// and a wrong password get the same KindUnauthenticated error, after the
// same work.
func VerifyPassword(ctx context.Context, db *store.DB, email, pw string) (Identity, error) {
	_, normalized, err := directory.NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return Identity{}, err
	}
	if len(pw) > MaxPasswordLen {
		return Identity{}, errBadCredentials
	}
	userID, hash, err := passwordOf(ctx, db, normalized)
	switch {
	case steward.IsKind(err, steward.KindNotFound):
		if _, err := verifyPassword(ctx, dummyHash, pw); err != nil {
			return Identity{}, err
		}
		return Identity{}, errBadCredentials
	case err != nil:
		return Identity{}, err
	}
	ok, err := verifyPassword(ctx, hash, pw)
	switch {
	case err != nil:
		return Identity{}, err
	case !ok:
		return Identity{}, errBadCredentials
	}
	return Identity{UserID: userID, Method: MethodPassword}, nil
}

// passwordOf returns the id and password hash of the person with this
// normalized email address; a KindNotFound error when there is no such
// person or they have no password.
func passwordOf(ctx context.Context, db *store.DB, normalized string) (userID, hash string, err error) {
	err = db.View(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, `SELECT u.id, p.hash FROM users u JOIN user_passwords p ON p.user_id = u.id WHERE u.email_normalized = ?`, normalized).
			Scan(&userID, &hash)
	})
	return userID, hash, store.Translate(err)
}
