package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/steward"
)

// formCookie carries the anti-forgery token of the forms shown before a
// session exists (sign-in, password reset), compared with the one in the
// form (double submit), so that no other site can sign someone in to an
// account of its choosing. A session's forms carry the session's own
// token (auth.CSRFToken).
const formCookie = "steward_form"

// formToken returns the pre-session anti-forgery token, setting its cookie
// when the browser has none.
func (h *Handler) formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) == 43 {
		return c.Value
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	t := base64.RawURLEncoding.EncodeToString(b)
	h.setCookie(w, r, formCookie, t, 3600)
	return t
}

// checkForm refuses a pre-session form that comes from another site or
// whose token does not match its cookie.
func checkForm(r *http.Request) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	c, err := r.Cookie(formCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
		return errForged
	}
	return nil
}

// checkSessionForm refuses a state-changing request of a session that
// comes from another site or without the session's anti-forgery token.
func checkSessionForm(r *http.Request, token string) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	if !auth.CheckCSRF(token, r.PostFormValue("csrf")) {
		return errForged
	}
	return nil
}

var errForged = &steward.Error{Kind: steward.KindForbidden, Message: "this form has expired or did not come from this site: reload the page and try again"}

// sameOrigin refuses a state-changing request whose Origin header names
// another site; browsers send it with every form post.
func sameOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || u.Host != r.Host {
		return errForged
	}
	return nil
}
