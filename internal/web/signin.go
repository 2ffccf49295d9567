package web

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// safeNext returns next when it is a path of these pages, so that the
// sign-in page cannot be made to send people to another site.
func safeNext(next string) string {
	if strings.HasPrefix(next, Prefix+"/") && !strings.HasPrefix(next, "//") && !strings.ContainsAny(next, "\\\r\n") {
		return next
	}
	return Prefix + "/"
}

type signInData struct {
	Email, Next string
	Sent        bool
	Token       string
	// Choices are the single sign-on connections an address may use, when
	// it has more than one.
	Choices []sso.Choice
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", CSRF: h.formToken(w, r), Flash: flashes[r.URL.Query().Get("done")],
		Data: signInData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// formAgain shows the pre-session form name again after err, as p with a
// fresh anti-forgery token and the reason when the person can fix it; any
// other error shows the error page.
func (h *Handler) formAgain(w http.ResponseWriter, r *http.Request, name string, p page, err error) {
	msg, status, ok := clientError(err)
	if !ok {
		h.fail(w, r, nil, err)
		return
	}
	p.CSRF, p.Error = h.formToken(w, r), msg
	h.render(w, r, status, name, p)
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	email, pw, next := r.PostFormValue("email"), r.PostFormValue("password"), safeNext(r.PostFormValue("next"))
	again := func(err error) {
		h.formAgain(w, r, "signin", page{Title: "Sign in", Data: signInData{Email: email, Next: next}}, err)
	}
	if err := checkForm(r); err != nil {
		again(err)
		return
	}
	a, err := h.beginSignIn(w, r, email)
	if err != nil {
		again(err)
		return
	}
	id, err := auth.VerifyPassword(r.Context(), h.cfg.DB, email, pw)
	a.end(r.Context(), err)
	if err == nil {
		err = h.passwordRefused(r, id.UserID)
	}
	if err != nil {
		h.cfg.Log.Info("web: sign-in refused", "request_id", steward.RequestIDFrom(r.Context()), "reason", err.Error())
		again(err)
		return
	}
	// The browser is now one the person signs in from: their own attempts
	// from it are throttled apart from everyone else's.
	if token, err := auth.DeviceToken(r.Context(), h.cfg.DB, email); err != nil {
		h.cfg.Log.Error("web: device cookie", "request_id", steward.RequestIDFrom(r.Context()), "err", err)
	} else {
		h.setCookie(w, r, deviceCookie, token, deviceDays*24*3600)
	}
	h.startSession(w, r, id, next)
}

// startSession signs a verified identity in: whatever verified it (a
// password, an identity provider's single sign-on) ends here.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, id auth.Identity, next string) {
	var token string
	var sess auth.Session
	err := h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
		var err error
		sess, token, err = h.cfg.Auth.StartSession(r.Context(), tx, id)
		return err
	})
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.cfg.Log.Info("web: signed in", "request_id", steward.RequestIDFrom(r.Context()), "user_id", sess.UserID, "session_id", sess.ID, "method", sess.Method)
	h.setCookie(w, r, auth.SessionCookie, token, int(sess.ExpiresAt.Sub(sess.CreatedAt).Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// signOut ends the session, and, for a session an OpenID Connect provider
// started, sends the browser to end the provider's session too when the
// provider supports RP-initiated logout; it comes back to the sign-in page.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	signedOut := Prefix + "/signin?done=signed_out"
	next := signedOut
	if c.sess.SSOScope != "" {
		u, err := h.cfg.SSO.LogoutURL(r.Context(), c.sess.ID, h.cfg.SSO.PublicURL()+signedOut)
		if err != nil {
			h.cfg.Log.Error("web: provider logout", "request_id", steward.RequestIDFrom(r.Context()), "err", err)
		} else if u != "" {
			next = u
		}
	}
	if err := h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error { return auth.EndSession(r.Context(), tx, c.token) }); err != nil {
		return err
	}
	h.setCookie(w, r, auth.SessionCookie, "", -1)
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}
