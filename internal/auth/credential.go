package auth

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/steward"
)

// SessionCookie is the cookie that carries a web session's secret.
const SessionCookie = "steward_session"

// source is where a surface reads the credential of a request. Each
// surface keeps the rule it was published with.
type source int

const (
	// fromBearer is Authorization: Bearer <credential>; another scheme, or
	// nothing after it, is no credential (the model API, the check API,
	// product events, SCIM).
	fromBearer source = iota
	// fromAPIKey is x-api-key, else Authorization, which must then be
	// Bearer (the Admin API, the Backoffice API).
	fromAPIKey
	// fromSessionCookie is SessionCookie (the web pages).
	fromSessionCookie
)

var errNotBearer = &steward.Error{Kind: steward.KindUnauthenticated, Message: "the Authorization header must be \"Bearer <key>\""}

// presented returns the credential r presents in from: "" when it presents
// none. Only an Authorization header that fromAPIKey cannot read, and an
// empty session cookie (which names no session), are errors. It does not
// allocate.
func presented(r *http.Request, from source) (string, error) {
	switch from {
	case fromAPIKey:
		if token := r.Header.Get("x-api-key"); token != "" {
			return token, nil
		}
		auth := r.Header.Get("Authorization")
		if auth == "" {
			return "", nil
		}
		scheme, rest, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", errNotBearer
		}
		return strings.TrimSpace(rest), nil
	case fromSessionCookie:
		c, err := r.Cookie(SessionCookie)
		switch {
		case err != nil:
			return "", nil
		case c.Value == "":
			return "", errNoSession
		}
		return c.Value, nil
	default:
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", nil
		}
		return strings.TrimSpace(token), nil
	}
}
