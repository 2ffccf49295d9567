package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// A device token marks a browser a person has signed in from (OWASP's
// "device cookie"), so that sign-in throttling can tell their own
// browser from the clients of someone guessing their password. It is a
// random nonce and its HMAC keyed by the person's password hash: it needs
// no storage, cannot be made without the hash (which never leaves the
// database), and stops working when the password changes.

// DeviceToken returns a new device token for the person with this email
// address, or a KindNotFound error when they have no password.
func DeviceToken(ctx context.Context, db *store.DB, email string) (string, error) {
	_, normalized, err := directory.NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return "", err
	}
	_, hash, err := passwordOf(ctx, db, normalized)
	if err != nil {
		return "", err
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	nonce := base64.RawURLEncoding.EncodeToString(b)
	return nonce + "." + deviceMAC(hash, nonce), nil
}

// KnownDevice returns the nonce of token, which identifies the browser,
// when token is a device token of the person with this email address, and
// "" otherwise. Only database failures are errors.
func KnownDevice(ctx context.Context, db *store.DB, email, token string) (string, error) {
	nonce, mac, ok := strings.Cut(token, ".")
	if !ok || len(nonce) != 22 || len(mac) != 43 {
		return "", nil
	}
	_, normalized, err := directory.NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return "", nil
	}
	_, hash, err := passwordOf(ctx, db, normalized)
	switch {
	case steward.IsKind(err, steward.KindNotFound):
		return "", nil
	case err != nil:
		return "", err
	case !hmac.Equal([]byte(mac), []byte(deviceMAC(hash, nonce))):
		return "", nil
	}
	return nonce, nil
}

func deviceMAC(hash, nonce string) string {
	m := hmac.New(sha256.New, []byte(hash))
	m.Write([]byte("steward device v1\x00" + nonce))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
