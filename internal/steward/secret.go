package steward

import (
	"crypto/sha256"
	"encoding/hex"
)

// HashToken returns the hex SHA-256 of a secret token: the only form in
// which keys, SCIM tokens, sessions and invitations are stored. The
// tokens carry enough randomness that a fast hash cannot be reversed.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
