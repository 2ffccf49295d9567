// Package idempotency lets a client retry a request with the same
// Idempotency-Key and get the first answer instead of a second change.
//
// Answers may carry secrets (a rotated key), which Steward stores only as
// hashes. So an answer is sealed with AES-GCM under a key derived from the
// Idempotency-Key itself, which only the client holds, and the record is
// found by a hash of that key: the database alone can neither read the
// answer nor tell which Idempotency-Key made it.
package idempotency

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// TTL is how long a retry gets the first answer.
const TTL = 24 * time.Hour

// MaxKeyLen bounds an Idempotency-Key.
const MaxKeyLen = 255

// Check validates an Idempotency-Key header value.
func Check(key string) error {
	if len(key) > MaxKeyLen {
		return steward.Invalid([]string{"header", "Idempotency-Key"}, "Idempotency-Key must be at most %d characters", MaxKeyLen)
	}
	return nil
}

func derive(purpose, key string) []byte {
	sum := sha256.Sum256([]byte("steward idempotency " + purpose + "\x00" + key))
	return sum[:]
}

// Replay returns the answer saved for (organization, scope, key) within
// TTL, and whether there was one. The same key used for another request
// (a different requestHash) is a KindInvalid error.
func Replay(ctx context.Context, tx *store.Tx, orgID, scope, key, requestHash string) ([]byte, bool, error) {
	var reqHash, sealed string
	err := tx.QueryRow(ctx, `SELECT request_hash, sealed FROM idempotency_records
		WHERE organization_id = ? AND scope = ? AND key_hash = ? AND created_at > ?`,
		orgID, scope, hex.EncodeToString(derive("id", key)), store.Micros(tx.Now.Add(-TTL))).Scan(&reqHash, &sealed)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if reqHash != requestHash {
		return nil, false, steward.Invalid([]string{"header", "Idempotency-Key"}, "this Idempotency-Key was used for a different request")
	}
	raw, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil {
		return nil, false, err
	}
	gcm, err := aead(key)
	if err != nil {
		return nil, false, err
	}
	if len(raw) < gcm.NonceSize() {
		return nil, false, steward.Internal(nil)
	}
	answer, err := gcm.Open(nil, raw[:gcm.NonceSize()], raw[gcm.NonceSize():], []byte(scope))
	return answer, err == nil, err
}

// Save stores the answer to a request made with key, in the transaction
// that made the change, and forgets records older than TTL.
func Save(ctx context.Context, tx *store.Tx, orgID, scope, key, requestHash string, answer []byte) error {
	gcm, err := aead(key)
	if err != nil {
		return err
	}
	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	sealed := base64.StdEncoding.EncodeToString(gcm.Seal(nonce, nonce, answer, []byte(scope)))
	if _, err := tx.Exec(ctx, `DELETE FROM idempotency_records WHERE created_at <= ?`, store.Micros(tx.Now.Add(-TTL))); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO idempotency_records (organization_id, scope, key_hash, request_hash, sealed, created_at)
		VALUES (?, ?, ?, ?, ?, ?)`, orgID, scope, hex.EncodeToString(derive("id", key)), requestHash, sealed, store.Micros(tx.Now))
	if steward.IsKind(store.Translate(err), steward.KindConflict) {
		return &steward.Error{Kind: steward.KindConflict, Code: "idempotency_key_in_use",
			Message: "another request with this Idempotency-Key was being processed: retry it to get its answer"}
	}
	return err
}

func aead(key string) (cipher.AEAD, error) {
	block, err := aes.NewCipher(derive("seal", key))
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}
