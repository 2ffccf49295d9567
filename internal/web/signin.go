package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/conns"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const (
	sessionCookie = "steward_session"
	// formCookie carries the anti-forgery token of the forms shown before
	// a session exists (sign-in, password reset), compared with the one in
	// the form (double submit), so that no other site can sign someone in
	// to an account of its choosing.
	formCookie = "steward_form"
)

// secure reports whether cookies are marked Secure: on every request with
// --secure-cookies, otherwise on those the client sent over HTTPS, to
// Steward or to a trusted proxy.
func (h *Handler) secure(r *http.Request) bool { return h.cfg.SecureCookies || h.cfg.Proxies.HTTPS(r) }

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: Prefix + "/", MaxAge: maxAge,
		HttpOnly: true, Secure: h.secure(r), SameSite: http.SameSiteLaxMode})
}

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

// checkFormToken refuses a pre-session form whose token does not match its
// cookie.
func checkFormToken(r *http.Request) error {
	c, err := r.Cookie(formCookie)
	if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(r.PostFormValue("csrf"))) != 1 {
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
}

func (h *Handler) signInPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "signin", page{Title: "Sign in", CSRF: h.formToken(w, r), Flash: flashes[r.URL.Query().Get("done")],
		Data: signInData{Next: safeNext(r.URL.Query().Get("next"))}})
}

func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	email, pw, next := r.PostFormValue("email"), r.PostFormValue("password"), safeNext(r.PostFormValue("next"))
	again := func(err error) {
		msg, status, ok := clientError(err)
		if !ok {
			h.fail(w, r, nil, err)
			return
		}
		h.render(w, r, status, "signin", page{Title: "Sign in", CSRF: h.formToken(w, r), Error: msg, Data: signInData{Email: email, Next: next}})
	}
	if err := sameOrigin(r); err != nil {
		again(err)
		return
	}
	if err := checkFormToken(r); err != nil {
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
	if err != nil {
		h.cfg.Log.Info("web: sign-in refused", "request_id", r.Header.Get("x-request-id"), "reason", err.Error())
		again(err)
		return
	}
	// The browser is now one the person signs in from: their own attempts
	// from it are throttled apart from everyone else's.
	if token, err := auth.DeviceToken(r.Context(), h.cfg.DB, email); err != nil {
		h.cfg.Log.Error("web: device cookie", "request_id", r.Header.Get("x-request-id"), "err", err)
	} else {
		h.setCookie(w, r, deviceCookie, token, deviceDays*24*3600)
	}
	h.startSession(w, r, id, next)
}

// startSession signs a verified identity in: whatever verified it (a
// password today, an OpenID Connect provider later) ends here.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, id auth.Identity, next string) {
	var token string
	var sess auth.Session
	err := h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
		var err error
		sess, token, err = auth.StartSession(r.Context(), tx, id, h.cfg.Sessions)
		return err
	})
	if err != nil {
		h.fail(w, r, nil, err)
		return
	}
	h.cfg.Log.Info("web: signed in", "request_id", r.Header.Get("x-request-id"), "user_id", sess.UserID, "session_id", sess.ID, "method", sess.Method)
	h.setCookie(w, r, sessionCookie, token, int(h.cfg.Sessions.TTL.Seconds()))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if err := h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error { return auth.EndSession(r.Context(), tx, c.token) }); err != nil {
		return err
	}
	h.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/signin?done=signed_out", http.StatusSeeOther)
	return nil
}

func (h *Handler) forgotPage(w http.ResponseWriter, r *http.Request) {
	h.render(w, r, http.StatusOK, "forgot", page{Title: "Reset your password", CSRF: h.formToken(w, r), Data: signInData{}})
}

func (h *Handler) forgot(w http.ResponseWriter, r *http.Request) {
	email := r.PostFormValue("email")
	err := sameOrigin(r)
	if err == nil {
		err = checkFormToken(r)
	}
	if err == nil {
		err = h.throttleReset(w, r, email)
	}
	if err == nil {
		err = h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error { return auth.RequestReset(r.Context(), tx, email, h.cfg.Reset) })
	}
	if err != nil {
		msg, status, ok := clientError(err)
		if !ok {
			h.fail(w, r, nil, err)
			return
		}
		h.render(w, r, status, "forgot", page{Title: "Reset your password", CSRF: h.formToken(w, r), Error: msg, Data: signInData{Email: email}})
		return
	}
	h.render(w, r, http.StatusOK, "forgot", page{Title: "Reset your password", Data: signInData{Email: email, Sent: true}})
}

func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	p := page{Title: "Choose a new password", CSRF: h.formToken(w, r), Data: signInData{Token: token}}
	if token == "" {
		p.Error = "This link has no reset token: open the link from the email."
	}
	h.render(w, r, http.StatusOK, "reset", p)
}

func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	token, pw := r.PostFormValue("token"), r.PostFormValue("password")
	err := sameOrigin(r)
	if err == nil {
		err = checkFormToken(r)
	}
	var hash string
	if err == nil {
		hash, err = auth.HashNewPassword(r.Context(), pw, r.PostFormValue("password_confirm"))
	}
	if err == nil {
		err = h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
			_, err := auth.ResetPassword(r.Context(), tx, token, hash)
			return err
		})
	}
	if err != nil {
		msg, status, ok := clientError(err)
		if !ok {
			h.fail(w, r, nil, err)
			return
		}
		h.render(w, r, status, "reset", page{Title: "Choose a new password", CSRF: h.formToken(w, r), Error: msg, Data: signInData{Token: token}})
		return
	}
	http.Redirect(w, r, Prefix+"/signin?done=password_set", http.StatusSeeOther)
}

func (h *Handler) passwordPage(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	h.render(w, r, http.StatusOK, "password", c.page("Change your password", ""))
	return nil
}

// changePassword sets a new password for the signed-in person after
// checking the current one (throttled like a sign-in). Every session of
// the person ends, this one included.
func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	pw := r.PostFormValue("password")
	a, err := h.beginSignIn(w, r, c.sess.Email)
	if err == nil {
		_, err = auth.VerifyPassword(r.Context(), h.cfg.DB, c.sess.Email, r.PostFormValue("current"))
		a.end(r.Context(), err)
		if steward.IsKind(err, steward.KindUnauthenticated) {
			err = steward.Invalid([]string{"body", "current"}, "the current password is wrong")
		}
	}
	var hash string
	if err == nil {
		hash, err = auth.HashNewPassword(r.Context(), pw, r.PostFormValue("password_confirm"))
	}
	if err == nil {
		err = h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
			actor := steward.Actor{Type: steward.ActorHuman, UserID: c.sess.UserID, Metadata: map[string]string{"email": c.sess.Email, "session_id": c.sess.ID}}
			return auth.SetPassword(r.Context(), tx, actor, c.sess.UserID, hash, auth.SetByChange)
		})
	}
	if err != nil {
		msg, status, ok := clientError(err)
		if !ok {
			return err
		}
		p := c.page("Change your password", "")
		p.Error = msg
		h.render(w, r, status, "password", p)
		return nil
	}
	h.setCookie(w, r, sessionCookie, "", -1)
	http.Redirect(w, r, Prefix+"/signin?done=password_set", http.StatusSeeOther)
	return nil
}

// reqCtx is a signed-in request: the session, and the principal built from
// it for the Organization or Enterprise Account the page belongs to.
type reqCtx struct {
	sess  auth.Session
	token string
	p     steward.Principal
	org   *steward.Organization
	ea    *steward.EnterpriseAccount
	// backoffice is the Enterprise Account of the Organization when the
	// person is also a member of it.
	backoffice string
}

func (c *reqCtx) page(title, active string) page {
	p := page{Title: title, Active: active, Session: &c.sess, Org: c.org, EA: c.ea, CSRF: auth.CSRFToken(c.token), Backoffice: c.backoffice}
	switch {
	case c.org != nil:
		p.Base = Prefix + "/o/" + c.org.ID
	case c.ea != nil:
		p.Base = Prefix + "/ea/" + c.ea.ID
	}
	return p
}

type pageFunc func(w http.ResponseWriter, r *http.Request, c *reqCtx) error

// signedIn runs fn for a request with a live session. A page asked for
// without one sends the browser to sign in; a form posted without one, or
// without the session's anti-forgery token, is refused.
func (h *Handler) signedIn(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := &reqCtx{}
		cookie, err := r.Cookie(sessionCookie)
		if err == nil {
			c.token = cookie.Value
			c.sess, err = auth.LookupSession(r.Context(), h.cfg.DB, c.token, h.cfg.Sessions)
		}
		if err != nil {
			if cookie != nil {
				h.setCookie(w, r, sessionCookie, "", -1)
			}
			if r.Method == http.MethodGet && (steward.IsKind(err, steward.KindUnauthenticated) || cookie == nil) {
				http.Redirect(w, r, Prefix+"/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			if cookie == nil {
				err = &steward.Error{Kind: steward.KindUnauthenticated, Message: "you are not signed in: sign in again"}
			}
			h.fail(w, r, nil, err)
			return
		}
		conns.Authenticated(r.Context())
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := sameOrigin(r); err != nil {
				h.fail(w, r, c, err)
				return
			}
			if !auth.CheckCSRF(c.token, r.PostFormValue("csrf")) {
				h.fail(w, r, c, errForged)
				return
			}
		}
		if err := fn(w, r, c); err != nil {
			h.fail(w, r, c, err)
		}
	}
}

// errNoOrganization answers for an Organization the person does not
// administer, whether or not it exists.
var errNoOrganization = steward.Errorf(steward.KindNotFound, "there is no Organization here that you administer")

// panel runs fn for an organization_admin of the Organization in the path,
// with a principal authorized for action exactly as an Admin API key would
// be.
func (h *Handler) panel(action steward.Action, fn pageFunc) http.HandlerFunc {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		orgID := r.PathValue("org")
		err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
			admin, err := directory.IsOrganizationAdmin(r.Context(), tx, orgID, c.sess.UserID)
			if err != nil || !admin {
				return errNoOrganization
			}
			org, err := directory.GetOrganization(r.Context(), tx, orgID)
			if err != nil {
				return err
			}
			c.org = &org
			eas, err := directory.MemberEnterpriseAccounts(r.Context(), tx, c.sess.UserID)
			for _, ea := range eas {
				if ea.ID == org.EnterpriseAccountID {
					c.backoffice = ea.ID
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		c.p = steward.Principal{Kind: steward.CredentialWebSession, CredentialID: c.sess.ID, CredentialName: c.sess.Email,
			OrganizationID: c.org.ID, EnterpriseAccountID: c.org.EnterpriseAccountID, UserID: c.sess.UserID}
		if err := steward.Authorize(c.p, action); err != nil {
			return err
		}
		return fn(w, r.WithContext(steward.WithPrincipal(r.Context(), c.p)), c)
	})
}

// backoffice runs fn for a member of the Enterprise Account in the path.
func (h *Handler) backoffice(fn pageFunc) http.HandlerFunc {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		eaID := r.PathValue("ea")
		err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
			eas, err := directory.MemberEnterpriseAccounts(r.Context(), tx, c.sess.UserID)
			for _, ea := range eas {
				if ea.ID == eaID {
					c.ea = &ea
				}
			}
			return err
		})
		if err != nil {
			return err
		}
		if c.ea == nil {
			return steward.Errorf(steward.KindNotFound, "there is no Enterprise Account here that you are a member of")
		}
		c.p = steward.Principal{Kind: steward.CredentialWebSession, CredentialID: c.sess.ID, CredentialName: c.sess.Email,
			EnterpriseAccountID: c.ea.ID, UserID: c.sess.UserID}
		if err := steward.Authorize(c.p, steward.ActionBackoffice); err != nil {
			return err
		}
		return fn(w, r.WithContext(steward.WithPrincipal(r.Context(), c.p)), c)
	})
}

type homeData struct {
	Organizations      []steward.Organization
	EnterpriseAccounts []steward.EnterpriseAccount
}

// home lists what the person may open; with only one Organization and no
// Backoffice it opens the Organization's Admin Panel.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	var d homeData
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		var err error
		if d.Organizations, err = directory.AdminOrganizations(r.Context(), tx, c.sess.UserID); err != nil {
			return err
		}
		d.EnterpriseAccounts, err = directory.MemberEnterpriseAccounts(r.Context(), tx, c.sess.UserID)
		return err
	})
	if err != nil {
		return err
	}
	if len(d.Organizations) == 1 && len(d.EnterpriseAccounts) == 0 {
		http.Redirect(w, r, Prefix+"/o/"+d.Organizations[0].ID+"/members", http.StatusSeeOther)
		return nil
	}
	p := c.page("Steward", "")
	p.Data = d
	h.render(w, r, http.StatusOK, "home", p)
	return nil
}

// flashes are the notices a redirect may ask a page to show, by code, so
// that no text of the query string is ever displayed.
var flashes = map[string]string{
	"signed_out":      "You are signed out.",
	"password_set":    "Your password is set: sign in with it.",
	"invite_revoked":  "The invitation is revoked.",
	"member_updated":  "The member's role is changed.",
	"member_removed":  "The member is removed.",
	"ws_created":      "The Workspace is created.",
	"ws_archived":     "The Workspace is archived.",
	"ws_updated":      "The Workspace is saved.",
	"ws_limits":       "The Workspace's limits are saved.",
	"ws_members":      "The Workspace's members are changed.",
	"group_created":   "The group is created.",
	"group_deleted":   "The group is deleted.",
	"group_saved":     "The group is saved.",
	"key_deleted":     "The API key is deleted.",
	"policy_saved":    "The key expiration policy is saved.",
	"limits_saved":    "The limits are saved.",
	"role_created":    "The custom role is created.",
	"role_deleted":    "The custom role is deleted.",
	"org_created":     "The Organization is created.",
	"promoted":        "The member is now an admin of the Organization.",
	"ea_member_added": "The member is added to the Enterprise Account.",
	"ea_member_gone":  "The member is removed from the Enterprise Account.",
	"admin_key_gone":  "The Admin API key is deleted.",
}

// done redirects, after a change, to a page that shows the notice code.
func done(w http.ResponseWriter, r *http.Request, path, code string) error {
	http.Redirect(w, r, path+"?done="+code, http.StatusSeeOther)
	return nil
}
