// Package keys defines Steward's secret formats: how keys are made, checked
// and hashed. A key is "<prefix>_<random><checksum>": the prefix names its
// kind so that secret scanners and people can recognise it, the random part
// carries 131 bits from crypto/rand, and the checksum lets a mistyped or
// made-up key be refused before any lookup.
package keys

import (
	"crypto/rand"
	"hash/crc32"

	"github.com/stewardhq/steward/internal/steward"
)

const (
	alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	// randomLen base62 characters carry 22*log2(62) ≈ 131 bits.
	randomLen   = 22
	checksumLen = 6
	prefixLen   = 4
	// Len is the length of every key: prefix, underscore, random, checksum.
	Len = prefixLen + 1 + randomLen + checksumLen
)

// Prefixes of each kind of key.
const (
	PrefixWorkspace  = "stwk"
	PrefixAdmin      = "stwa"
	PrefixBackoffice = "stwb"
	PrefixSCIM       = "stws"
)

var inAlphabet = func() (t [256]bool) {
	for i := range len(alphabet) {
		t[alphabet[i]] = true
	}
	return t
}()

// KindOf returns the credential kind a well-formed key claims to be, and
// false when token is not a well-formed Steward key (wrong length, unknown
// prefix, characters outside the alphabet, or a bad checksum). It does not
// allocate.
func KindOf(token string) (steward.CredentialKind, bool) {
	if len(token) != Len || token[prefixLen] != '_' {
		return steward.CredentialNone, false
	}
	var kind steward.CredentialKind
	switch token[:prefixLen] {
	case PrefixWorkspace:
		kind = steward.CredentialWorkspaceAPIKey
	case PrefixAdmin:
		kind = steward.CredentialAdminAPIKey
	case PrefixBackoffice:
		kind = steward.CredentialBackofficeKey
	case PrefixSCIM:
		kind = steward.CredentialSCIMToken
	default:
		return steward.CredentialNone, false
	}
	for i := prefixLen + 1; i < Len; i++ {
		if !inAlphabet[token[i]] {
			return steward.CredentialNone, false
		}
	}
	var want [checksumLen]byte
	encodeChecksum(&want, checksum(token[:Len-checksumLen]))
	if string(want[:]) != token[Len-checksumLen:] {
		return steward.CredentialNone, false
	}
	return kind, true
}

// New returns a fresh key with the given prefix.
func New(prefix string) string {
	var b [Len]byte
	copy(b[:], prefix)
	b[prefixLen] = '_'
	random := b[prefixLen+1 : prefixLen+1+randomLen]
	// Rejection sampling keeps every character uniformly distributed.
	var buf [64]byte
	for n := 0; n < randomLen; {
		_, _ = rand.Read(buf[:])
		for _, c := range buf {
			if c < 248 && n < randomLen {
				random[n] = alphabet[c%62]
				n++
			}
		}
	}
	var sum [checksumLen]byte
	encodeChecksum(&sum, checksum(string(b[:Len-checksumLen])))
	copy(b[Len-checksumLen:], sum[:])
	return string(b[:])
}

var crcTable = crc32.MakeTable(crc32.IEEE)

// checksum is CRC-32 (IEEE) over a string, without the copy to []byte that
// hash/crc32 would need.
func checksum(s string) uint32 {
	crc := ^uint32(0)
	for i := range len(s) {
		crc = crcTable[byte(crc)^s[i]] ^ (crc >> 8)
	}
	return ^crc
}

func encodeChecksum(dst *[checksumLen]byte, v uint32) {
	for i := checksumLen - 1; i >= 0; i-- {
		dst[i] = alphabet[v%62]
		v /= 62
	}
}

// Hint returns the displayable form of a key: its prefix and the first and
// last four characters of its secret part.
func Hint(token string) string {
	if len(token) != Len {
		return ""
	}
	return token[:prefixLen+1+4] + "…" + token[Len-4:]
}
