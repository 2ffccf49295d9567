package sso

import (
	"context"
	"crypto/rand"
	"encoding/base64"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// errNoPending answers a callback whose state names no sign-in under way:
// forged, used already, or too late.
var errNoPending = refused("this sign-in link has expired or was already used: start signing in again")

// randomString returns n random bytes, URL-safe base64.
func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// savePending stores p under the hash of its state, and deletes the
// sign-ins that expired.
func savePending(ctx context.Context, tx *store.Tx, p Pending) error {
	if _, err := tx.Exec(ctx, `DELETE FROM sso_pending WHERE expires_at <= ?`, store.Micros(tx.Now)); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO sso_pending (state_hash, connection_id, nonce, verifier, request_id, next, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, steward.HashToken(p.State), p.ConnectionID, p.Nonce, p.Verifier, p.RequestID, p.Next,
		store.Micros(tx.Now), store.Micros(p.ExpiresAt))
	return err
}

// takePending returns the sign-in under way named by state and deletes it,
// so that a second callback with the same state finds nothing. An unknown,
// used or expired state is errNoPending.
func takePending(ctx context.Context, tx *store.Tx, state string) (Pending, error) {
	if state == "" || len(state) > 200 {
		return Pending{}, errNoPending
	}
	p := Pending{State: state}
	var expires int64
	err := tx.QueryRow(ctx, `SELECT connection_id, nonce, verifier, request_id, next, expires_at FROM sso_pending WHERE state_hash = ?`, steward.HashToken(state)).
		Scan(&p.ConnectionID, &p.Nonce, &p.Verifier, &p.RequestID, &p.Next, &expires)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return Pending{}, errNoPending
	}
	if err != nil {
		return Pending{}, err
	}
	res, err := tx.Exec(ctx, `DELETE FROM sso_pending WHERE state_hash = ?`, steward.HashToken(state))
	if err != nil {
		return Pending{}, err
	}
	// A concurrent callback with the same state may have taken it first.
	if n, err := res.RowsAffected(); err != nil || n != 1 || !tx.Now.Before(store.Time(expires)) {
		return Pending{}, errNoPending
	}
	p.ExpiresAt = store.Time(expires)
	return p, nil
}
