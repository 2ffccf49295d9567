// Package steward holds Steward's domain: its types, its error contract and
// its permission model. It imports nothing of the project, no SQL driver and
// no net/http.
package steward

import (
	"errors"
	"fmt"
)

// Kind classifies an error. The HTTP layer maps each kind to one status code
// and one Mistral error type; nothing else decides that.
type Kind int

const (
	// KindInternal is an unexpected failure; its cause is logged, never shown.
	KindInternal Kind = iota
	// KindInvalid is a request that names a bad field; Field says which one.
	KindInvalid
	// KindUnauthenticated is a missing, unknown, expired or revoked credential.
	KindUnauthenticated
	// KindForbidden is a valid credential that may not do this.
	KindForbidden
	// KindNotFound is an object that does not exist for the caller.
	KindNotFound
	// KindConflict is a request that clashes with the current state.
	KindConflict
	// KindRateLimited is a request refused by a limit.
	KindRateLimited
	// KindUnavailable is a dependency (the database) that cannot be reached.
	KindUnavailable
	// KindTooLarge is a request body over the size limit.
	KindTooLarge
)

func (k Kind) String() string {
	switch k {
	case KindInvalid:
		return "invalid"
	case KindUnauthenticated:
		return "unauthenticated"
	case KindForbidden:
		return "forbidden"
	case KindNotFound:
		return "not found"
	case KindConflict:
		return "conflict"
	case KindRateLimited:
		return "rate limited"
	case KindUnavailable:
		return "unavailable"
	case KindTooLarge:
		return "too large"
	default:
		return "internal"
	}
}

// Error is the one error type of Steward's domain. Message is safe to show to
// the client; Err, when set, is the cause and is only logged.
type Error struct {
	Kind    Kind
	Message string
	// Field locates the offending input for KindInvalid, e.g.
	// ["query", "limit"] or ["body", "email"].
	Field []string
	// Code is an optional machine-readable code (Mistral's `code`).
	Code string
	// Also lists further invalid fields found in the same input, so that one
	// answer names every problem.
	Also []*Error
	Err  error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Kind, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an Error of kind k with a formatted client-safe message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error about the input at field.
func Invalid(field []string, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Invalids returns nil when errs is empty, and otherwise one error that
// names every invalid field: the first, with the others in Also.
func Invalids(errs []*Error) error {
	if len(errs) == 0 {
		return nil
	}
	errs[0].Also = errs[1:]
	return errs[0]
}

// Internal wraps an unexpected cause; the client sees only a generic message.
func Internal(err error) *Error {
	return &Error{Kind: KindInternal, Message: "internal error", Err: err}
}

// ErrorKind returns the kind of err: KindInternal unless err is or wraps an
// *Error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err is an *Error of kind k.
func IsKind(err error, k Kind) bool {
	return err != nil && ErrorKind(err) == k
}
