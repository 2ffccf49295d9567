package steward

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// RequestID returns the client's x-request-id when it is reasonable (1 to
// 128 printable ASCII characters without spaces), and a new RandomID
// otherwise.
func RequestID(fromClient string) string {
	if fromClient == "" || len(fromClient) > 128 {
		return RandomID()
	}
	for i := range len(fromClient) {
		if c := fromClient[i]; c <= ' ' || c > '~' {
			return RandomID()
		}
	}
	return fromClient
}

// RandomID returns 128 random bits as 32 hex digits.
func RandomID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// RequestIDHeader is the header of a request's id, x-request-id, in its
// canonical form, so that reading and setting it costs no allocation.
const RequestIDHeader = "X-Request-Id"

type requestIDKey struct{}

// WithRequestID returns a context carrying a request's id, made once at
// the server's edge (RequestID), which every surface's handlers, logs and
// usage then use.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestIDFrom returns the request's id in ctx; "" if none.
func RequestIDFrom(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}
