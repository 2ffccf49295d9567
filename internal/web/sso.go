package web

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// ssoStateCookie holds the state of the single sign-on the browser
// started, so that a callback is accepted only in that browser: a link
// to the callback made by someone else (with their own code) cannot sign
// the person in as someone else.
const ssoStateCookie = "steward_sso"

// errStateMismatch answers a callback whose state is not the one this
// browser started.
var errStateMismatch = steward.Errorf(steward.KindUnauthenticated, "this sign-in was not started in this browser, or it expired: start signing in again")

// errNoSSO answers "Sign in with SSO" for an address without a connection.
var errNoSSO = steward.Invalid([]string{"body", "email"}, "single sign-on is not set up for this address: sign in with your password")

// ssoSignIn is the sign-in page's "Sign in with SSO": the address's
// Organizations and Enterprise Accounts with a connection decide where it
// goes. The answer is a page with each connection's start link, which the
// page's script follows at once when there is one: the pages' policy
// (form-action 'self') keeps a form's redirect from reaching a provider,
// while a link's navigation may.
func (h *Handler) ssoSignIn(w http.ResponseWriter, r *http.Request) {
	email, next := r.PostFormValue("email"), safeNext(r.PostFormValue("next"))
	again := func(err error) {
		h.formAgain(w, r, "signin", page{Title: "Sign in", Data: signInData{Email: email, Next: next}}, err)
	}
	if err := checkForm(r); err != nil {
		again(err)
		return
	}
	if err := h.throttleSSOLookup(w, r); err != nil {
		again(err)
		return
	}
	choices, err := h.cfg.SSO.ForEmail(r.Context(), email)
	switch {
	case err != nil:
		again(err)
	case len(choices) == 0:
		again(errNoSSO)
	default:
		h.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", CSRF: h.formToken(w, r),
			Data: signInData{Email: email, Next: next, Choices: choices}})
	}
}

// ssoStart is a connection's start link, for the provider's dashboard.
func (h *Handler) ssoStart(w http.ResponseWriter, r *http.Request) {
	h.ssoBegin(w, r, r.PathValue("connection"), safeNext(r.URL.Query().Get("next")))
}

// ssoBegin sends the browser to the connection's provider, keeping the
// sign-in's state in a cookie.
func (h *Handler) ssoBegin(w http.ResponseWriter, r *http.Request, connID, next string) {
	u, state, err := h.cfg.SSO.Begin(r.Context(), connID, next)
	if err != nil {
		h.ssoFailed(w, r, err)
		return
	}
	h.setCookie(w, r, ssoStateCookie, state, int(sso.PendingTTL.Seconds()))
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// ssoCallback is where an OpenID Connect provider sends the browser back.
func (h *Handler) ssoCallback(w http.ResponseWriter, r *http.Request) {
	h.ssoComplete(w, r, r.URL.Query().Get("state"))
}

// ssoComplete finishes the sign-in whose state the provider sent back
// (OpenID Connect's state, SAML's RelayState): the state must be the one
// this browser started, and the sign-in it names is used up whatever
// happens next.
func (h *Handler) ssoComplete(w http.ResponseWriter, r *http.Request, state string) {
	c, err := r.Cookie(ssoStateCookie)
	h.setCookie(w, r, ssoStateCookie, "", -1)
	if err != nil || state == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		h.cfg.Log.Info("web: single sign-on refused", "request_id", steward.RequestIDFrom(r.Context()), "reason", "state mismatch")
		h.ssoFailed(w, r, errStateMismatch)
		return
	}
	in, err := h.cfg.SSO.Finish(r.Context(), r, state)
	if err != nil {
		h.ssoFailed(w, r, err)
		return
	}
	h.startSession(w, r, auth.Identity{UserID: in.UserID, Method: auth.MethodSSO, SSO: &auth.SSOOrigin{
		Scope: string(in.Scope), ConnectionID: in.ConnectionID, Subject: in.Subject, SessionID: in.SessionID, IDToken: in.IDToken,
	}}, safeNext(in.Next))
}

// ssoFailed shows the sign-in page with why single sign-on did not sign
// the person in, in plain words; an internal error shows the error page.
func (h *Handler) ssoFailed(w http.ResponseWriter, r *http.Request, err error) {
	var msg string
	status := http.StatusServiceUnavailable
	if steward.IsKind(err, steward.KindUnavailable) {
		msg = err.Error()
	} else {
		var ok bool
		if msg, status, ok = clientError(err); !ok {
			h.fail(w, r, nil, err)
			return
		}
	}
	h.render(w, r, status, "signin", page{Title: "Sign in", CSRF: h.formToken(w, r), Error: msg, Data: signInData{Next: Prefix + "/"}})
}

// passwordRefused refuses a password (sign-in or reset) to a member of a
// scope that enforces single sign-on, except its break-glass users.
func (h *Handler) passwordRefused(r *http.Request, userID string) error {
	return h.cfg.DB.View(r.Context(), func(tx *store.Tx) error { return sso.PasswordRefused(r.Context(), tx, userID) })
}

// ssoGate lets a session into a page of scope unless one of two rules
// keeps it out. An identity provider vouches for its own scope only: a
// session started by another scope's single sign-on opens none of this
// scope's pages (whoever administers that provider could otherwise sign in
// as anyone it lists, a member elsewhere too). And a scope that enforces
// single sign-on accepts only a session started by its own, or a
// break-glass user's password session. A page kept out is sent to the
// scope's SSO (and back) when it has one; a form is refused.
func (h *Handler) ssoGate(w http.ResponseWriter, r *http.Request, c *reqCtx, scope sso.Scope) (redirected bool, err error) {
	conn, err := store.Read(r.Context(), h.cfg.DB, func(tx *store.Tx) (sso.Connection, error) { return sso.ConnectionOf(r.Context(), tx, scope) })
	found := err == nil
	if err != nil && !steward.IsKind(err, steward.KindNotFound) {
		return false, err
	}
	elsewhere := c.sess.SSOScope != "" && c.sess.SSOScope != string(scope)
	switch {
	case !elsewhere && (!found || !conn.Enforce || c.sess.SSOScope == string(scope)),
		!elsewhere && c.sess.Method == auth.MethodPassword && slices.Contains(conn.BreakGlass, c.sess.UserID):
		return false, nil
	case r.Method == http.MethodGet && found:
		start := strings.Replace(sso.StartPath, "{connection}", url.PathEscape(conn.ID), 1)
		http.Redirect(w, r, start+"?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return true, nil
	case elsewhere:
		return false, errSSOElsewhere
	}
	return false, steward.Errorf(steward.KindForbidden, "this Organization signs in with single sign-on: sign in with SSO again")
}

// errSSOElsewhere refuses a page to a session another scope's single
// sign-on started.
var errSSOElsewhere = steward.Errorf(steward.KindForbidden, "you signed in through the single sign-on of another Organization or Backoffice, which opens only its own pages: sign out, then sign in again to open this one")

// ssoBackChannelLogout is where an OpenID Connect provider posts a logout
// token (Back-Channel Logout 1.0): the sessions it names end. The provider
// is the caller, not a browser: the token's signature is the credential.
func (h *Handler) ssoBackChannelLogout(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	n, err := h.cfg.SSO.BackChannelLogout(r.Context(), r.PostFormValue("logout_token"))
	if err != nil {
		// Back-Channel Logout 1.0 answers every failure 400, with the
		// reason in error_description.
		answer := `{"error":"invalid_request","error_description":"the logout token is not valid"}`
		if !steward.IsKind(err, steward.KindInvalid) {
			h.cfg.Log.Error("web: back-channel logout", "request_id", steward.RequestIDFrom(r.Context()), "err", err)
			answer = `{"error":"invalid_request","error_description":"the logout could not be completed: try again"}`
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(answer))
		return
	}
	h.cfg.Log.Info("web: back-channel logout", "request_id", steward.RequestIDFrom(r.Context()), "sessions_ended", n)
	w.WriteHeader(http.StatusOK)
}
