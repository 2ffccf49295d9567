package auth

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// How a password was set, as its audit entries say.
const (
	SetByInvitation = "invitation"
	SetByReset      = "reset"
	SetByChange     = "change"
)

// SetPassword stores hash (from HashPassword) as the user's password, ends
// every session the user has, and audits the change, with how the password
// was set, in each of the user's Organizations.
func SetPassword(ctx context.Context, tx *store.Tx, actor steward.Actor, userID, hash, how string) error {
	if _, err := tx.Exec(ctx, `INSERT INTO user_passwords (user_id, hash, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (user_id) DO UPDATE SET hash = excluded.hash, updated_at = excluded.updated_at`, userID, hash, store.Micros(tx.Now)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM web_sessions WHERE user_id = ?`, userID); err != nil {
		return err
	}
	var entries []audit.Entry
	err := tx.Each(ctx, `SELECT o.id, o.enterprise_account_id, u.email FROM organization_members m
		JOIN organizations o ON o.id = m.organization_id JOIN users u ON u.id = m.user_id WHERE m.user_id = ? ORDER BY o.id`, []any{userID},
		func(rows *sql.Rows) error {
			var org, ea, email string
			if err := rows.Scan(&org, &ea, &email); err != nil {
				return err
			}
			entries = append(entries, audit.Entry{
				EnterpriseAccountID: ea, OrganizationID: org, Actor: actor,
				EventType: audit.EventUserPasswordSet, EventMetadata: map[string]string{"method": how},
				TargetType: audit.TargetUser, TargetMetadata: map[string]string{"id": userID, "email": email},
			})
			return nil
		})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := audit.Record(ctx, tx, e); err != nil {
			return err
		}
	}
	return nil
}

// HasPassword reports whether the user has set a password.
func HasPassword(ctx context.Context, tx *store.Tx, userID string) (bool, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM user_passwords WHERE user_id = ?`, userID).Scan(&n)
	return n > 0, err
}

// ResetSettings say how password reset links are made.
type ResetSettings struct {
	TTL time.Duration
	// URL is the page that takes a new password; the token is added as its
	// "token" query parameter.
	URL string
}

// DefaultResetTTL is how long a reset link works.
const DefaultResetTTL = time.Hour

// RequestReset emails a password reset link, through the outbox in tx, to
// the person with this address, replacing any earlier link. An address
// nobody has gets nothing and the same answer, so that the form does not
// tell who has an account; a malformed one is KindInvalid.
func RequestReset(ctx context.Context, tx *store.Tx, email string, s ResetSettings) error {
	_, normalized, err := directory.NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return err
	}
	var userID, address string
	err = tx.QueryRow(ctx, `SELECT id, email FROM users WHERE email_normalized = ?`, normalized).Scan(&userID, &address)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	link, err := ResetLink(ctx, tx, userID, s)
	if err != nil {
		return err
	}
	_, err = outbox.Enqueue(ctx, tx, outbox.Message{
		Kind: "password_reset", To: address, Subject: "Reset your Steward password",
		Body: fmt.Sprintf(`Someone asked to reset the password of %s on Steward.

To choose a new password, open this link within %s:

%s

If it was not you, ignore this email: your password stays as it is.
`, address, s.TTL, link),
	})
	return err
}

// ResetLink makes a one-time link that sets the user's password, valid for
// s.TTL, replacing any earlier one. RequestReset emails it; the first start
// prints one for the first admin, who has no password yet.
func ResetLink(ctx context.Context, tx *store.Tx, userID string, s ResetSettings) (string, error) {
	token, err := newToken()
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = ?`, userID); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO password_resets (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		steward.HashToken(token), userID, store.Micros(tx.Now), store.Micros(tx.Now.Add(s.TTL))); err != nil {
		return "", err
	}
	return s.URL + "?token=" + url.QueryEscape(token), nil
}

// ResetAccount returns the person a reset link was sent to, their id and
// e-mail address, so that the page it opens can name the account. An
// unknown, used or expired link is KindNotFound.
func ResetAccount(ctx context.Context, tx *store.Tx, token string) (userID, email string, err error) {
	var expires int64
	var used *int64
	err = tx.QueryRow(ctx, `SELECT r.user_id, u.email, r.expires_at, r.used_at FROM password_resets r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?`,
		steward.HashToken(token)).Scan(&userID, &email, &expires, &used)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) || (err == nil && (used != nil || !tx.Now.Before(store.Time(expires)))) {
		return "", "", steward.Errorf(steward.KindNotFound, "this reset link is not valid any more: ask for a new one")
	}
	return userID, email, err
}

// ResetPassword sets the password (hash, from HashPassword) of the person
// a reset link was sent to, uses the link up, ends the person's sessions
// and audits it. An unknown, used or expired link is KindNotFound.
func ResetPassword(ctx context.Context, tx *store.Tx, token, hash string) (string, error) {
	userID, email, err := ResetAccount(ctx, tx, token)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `UPDATE password_resets SET used_at = ? WHERE token_hash = ?`, store.Micros(tx.Now), steward.HashToken(token)); err != nil {
		return "", err
	}
	actor := steward.Actor{Type: steward.ActorHuman, UserID: userID, Metadata: map[string]string{"email": email}}
	return userID, SetPassword(ctx, tx, actor, userID, hash, SetByReset)
}

// UserByEmail returns the id of the person with this address, "" when
// nobody has it or it is malformed.
func UserByEmail(ctx context.Context, tx *store.Tx, email string) (string, error) {
	_, normalized, err := directory.NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return "", nil
	}
	var userID string
	err = tx.QueryRow(ctx, `SELECT id FROM users WHERE email_normalized = ?`, normalized).Scan(&userID)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return "", nil
	}
	return userID, err
}
