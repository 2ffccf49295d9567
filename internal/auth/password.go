package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/stewardhq/steward/internal/steward"
)

// Params are argon2id's cost parameters. They are stored in each hash, so
// raising them later leaves existing passwords working.
type Params struct {
	// Memory is in KiB.
	Memory  uint32
	Time    uint32
	Threads uint8
}

// DefaultParams follow RFC 9106's second recommended option (64 MiB, three
// passes) with two lanes: about 100 ms on one core of a laptop, and 64 MiB
// per sign-in, which is why hashes run at most a few at a time (hashSlots).
var DefaultParams = Params{Memory: 64 * 1024, Time: 3, Threads: 2}

// maxParams bounds what a stored hash may ask for, so that a tampered row
// cannot make a sign-in take gigabytes.
var maxParams = Params{Memory: 1 << 20, Time: 10, Threads: 16}

const (
	saltLen = 16
	keyLen  = 32
	// MinPasswordLen and MaxPasswordLen bound a password, in characters and
	// bytes: long enough to resist guessing with the sign-in rate limit,
	// short enough that hashing cost does not depend on the input.
	MinPasswordLen = 12
	MaxPasswordLen = 256
)

// hashSlots bounds the argon2id computations running at once, so that a
// burst of sign-ins queues instead of exhausting memory.
var hashSlots = make(chan struct{}, max(1, runtime.NumCPU()))

// CheckPassword returns a KindInvalid error at field when pw is not an
// acceptable password.
func CheckPassword(field []string, pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return steward.Invalid(field, "the password must have at least %d characters", MinPasswordLen)
	case len(pw) > MaxPasswordLen:
		return steward.Invalid(field, "the password must be at most %d bytes", MaxPasswordLen)
	case strings.TrimSpace(pw) == "":
		return steward.Invalid(field, "the password must not be only spaces")
	}
	return nil
}

// HashNewPassword checks a password chosen in a form together with its
// confirmation, and returns its hash (see HashPassword).
func HashNewPassword(ctx context.Context, pw, confirm string) (string, error) {
	if err := CheckPassword([]string{"body", "password"}, pw); err != nil {
		return "", err
	}
	if pw != confirm {
		return "", steward.Invalid([]string{"body", "password_confirm"}, "the two passwords differ")
	}
	return HashPassword(ctx, pw)
}

// HashPassword returns pw's argon2id hash as a PHC string,
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>. It is called before the
// transaction that stores it, so that no write waits on hashing.
func HashPassword(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	p := DefaultParams
	key, err := derive(ctx, pw, salt, p)
	if err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// verifyPassword reports whether pw matches the PHC string encoded. A
// malformed hash never matches.
func verifyPassword(ctx context.Context, encoded, pw string) (bool, error) {
	p, salt, want, ok := parseHash(encoded)
	if !ok {
		return false, nil
	}
	got, err := derive(ctx, pw, salt, p)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func derive(ctx context.Context, pw string, salt []byte, p Params) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, &steward.Error{Kind: steward.KindUnavailable, Message: "the request was cancelled", Err: ctx.Err()}
	}
	defer func() { <-hashSlots }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen), nil
}

func parseHash(encoded string) (p Params, salt, key []byte, ok bool) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return p, nil, nil, false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, false
	}
	if p.Memory == 0 || p.Time == 0 || p.Threads == 0 || p.Memory > maxParams.Memory || p.Time > maxParams.Time || p.Threads > maxParams.Threads {
		return p, nil, nil, false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 {
		return p, nil, nil, false
	}
	return p, salt, key, true
}
