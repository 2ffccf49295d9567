package web

import (
	"net/http"
	"net/url"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

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
	// perms are what the person may do in the Organization.
	perms steward.PermissionSet
}

func (c *reqCtx) page(title, active string) page {
	p := page{Title: title, Active: active, Session: &c.sess, Org: c.org, EA: c.ea, CSRF: auth.CSRFToken(c.token), Backoffice: c.backoffice,
		perms: c.perms, Nav: pagesFor(c.perms)}
	switch {
	case c.org != nil:
		p.Base = Prefix + "/o/" + c.org.ID
	case c.ea != nil:
		p.Base = Prefix + "/ea/" + c.ea.ID
	}
	return p
}

type pageFunc func(w http.ResponseWriter, r *http.Request, c *reqCtx) error

var errNotSignedIn = &steward.Error{Kind: steward.KindUnauthenticated, Message: "you are not signed in: sign in again"}

// signedIn runs fn for a request with a live session (auth.Authenticator
// finds it from its cookie), with the principal of the person, not yet
// scoped. A page asked for without one sends the browser to sign in; a
// form posted without one, or without the session's anti-forgery token,
// is refused. A cookie that names no live session is dropped.
func (h *Handler) signedIn(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.cfg.Auth.Session(r)
		switch {
		case err != nil:
			h.setCookie(w, r, auth.SessionCookie, "", -1)
			if r.Method == http.MethodGet && steward.IsKind(err, steward.KindUnauthenticated) {
				h.toSignIn(w, r)
				return
			}
			h.fail(w, r, nil, err)
			return
		case s.Token == "":
			if r.Method == http.MethodGet {
				h.toSignIn(w, r)
				return
			}
			h.fail(w, r, nil, errNotSignedIn)
			return
		}
		c := &reqCtx{sess: s.Session, token: s.Token, p: s.Principal}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := checkSessionForm(r, c.token); err != nil {
				h.fail(w, r, c, err)
				return
			}
		}
		if err := fn(w, r, c); err != nil {
			h.fail(w, r, c, err)
		}
	}
}

// toSignIn sends the browser to sign in, and then back to this page.
func (h *Handler) toSignIn(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, Prefix+"/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
}

// errNoOrganization answers for an Organization in which the person has
// no page, whether or not it exists.
var errNoOrganization = steward.Errorf(steward.KindNotFound, "there is no Organization here that you administer")

// errNotYourPage answers for a page of an Organization that the person's
// roles there do not open.
var errNotYourPage = steward.Errorf(steward.KindForbidden, "your roles in this Organization do not allow this page")

// panel runs fn for a member of the Organization in the path whose
// Organization roles hold one of the permissions of action
// (actionPermissions), with a principal authorized for action as an Admin
// API key would be.
func (h *Handler) panel(action steward.Action, fn pageFunc) http.HandlerFunc {
	return h.panelFor(action, actionPermissions[action], fn)
}

// panelFor is panel for a page that needs one of perms. Someone with no
// permission in the Organization is answered as for an Organization that
// does not exist (404); a member whose roles hold none of perms, 403.
func (h *Handler) panelFor(action steward.Action, perms []steward.Permission, fn pageFunc) http.HandlerFunc {
	return h.signedIn(func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		orgID := r.PathValue("org")
		err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
			var err error
			if c.perms, err = directory.OrganizationPermissions(r.Context(), tx, orgID, c.sess.UserID); err != nil || c.perms == 0 {
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
		if !hasAny(c.perms, perms) {
			return errNotYourPage
		}
		if redirected, err := h.ssoGate(w, r, c, sso.OrgScope(c.org.ID)); err != nil || redirected {
			return err
		}
		c.p.OrganizationID, c.p.EnterpriseAccountID = c.org.ID, c.org.EnterpriseAccountID
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
		if redirected, err := h.ssoGate(w, r, c, sso.EAScope(c.ea.ID)); err != nil || redirected {
			return err
		}
		c.p.EnterpriseAccountID = c.ea.ID
		if err := steward.Authorize(c.p, steward.ActionBackoffice); err != nil {
			return err
		}
		return fn(w, r.WithContext(steward.WithPrincipal(r.Context(), c.p)), c)
	})
}
