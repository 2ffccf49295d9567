package web

import (
	"database/sql"
	"errors"
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// ssoForm is the connection form, as stored or as posted when the change
// was refused. Lists are typed separated by commas or spaces; break-glass
// users by e-mail address.
type ssoForm struct {
	Protocol, Issuer, ClientID, ClientSecretEnv, ClientSecretFile, Scopes string
	IDPMetadataURL, IDPMetadataXML, ExternalIDClaim                       string
	JITDomains, JITRole, BreakGlass                                       string
	Enforce                                                               bool
}

type ssoData struct {
	// Conn is the saved connection, nil before there is one.
	Conn *sso.Connection
	Form ssoForm
	// The URLs to give the identity provider.
	RedirectURI, StartURL, ACSURL, MetadataURL, EntityID string
	// SecretName is the name the client secret's variable or file must
	// have (sso.SecretName).
	SecretName string
	// Roles are the Organization's roles JIT may give; none for a
	// Backoffice.
	Roles []steward.Role
	// SignedInHere tells whether this session was started by this scope's
	// single sign-on, which turning enforcement on needs.
	SignedInHere bool
}

// ssoScopeOf is the scope of the page: its Organization, or its
// Enterprise Account's Backoffice.
func ssoScopeOf(c *reqCtx) sso.Scope {
	if c.org != nil {
		return sso.OrgScope(c.org.ID)
	}
	return sso.EAScope(c.ea.ID)
}

func (h *Handler) ssoView(r *http.Request, c *reqCtx) (page, error) {
	ctx := r.Context()
	p := c.page("Single sign-on", "sso")
	scope := ssoScopeOf(c)
	d := &ssoData{RedirectURI: h.cfg.SSO.RedirectURI(), SecretName: sso.SecretName(scope), Form: ssoForm{Protocol: sso.ProtocolOIDC, Scopes: strings.Join(sso.DefaultScopes, " ")},
		SignedInHere: c.sess.SSOScope == string(scope)}
	err := h.cfg.DB.View(ctx, func(tx *store.Tx) error {
		if orgID := scope.Organization(); orgID != "" {
			cat, err := directory.LoadCatalog(ctx, tx, orgID)
			if err != nil {
				return err
			}
			d.Roles = cat.Roles(steward.ScopeOrganization)
		}
		conn, err := sso.ConnectionOf(ctx, tx, scope)
		switch {
		case steward.IsKind(err, steward.KindNotFound):
			return nil
		case err != nil:
			return err
		}
		d.Conn = &conn
		d.StartURL, d.ACSURL, d.MetadataURL, d.EntityID = h.cfg.SSO.StartURL(conn.ID), h.cfg.SSO.ACSURL(conn.ID), h.cfg.SSO.MetadataURL(conn.ID), h.cfg.SSO.EntityID(conn.ID)
		emails, err := userEmails(r, tx, conn.BreakGlass)
		d.Form = ssoForm{Protocol: conn.Protocol, Issuer: conn.OIDC.Issuer, ClientID: conn.OIDC.ClientID, ClientSecretEnv: conn.OIDC.ClientSecretEnv,
			ClientSecretFile: conn.OIDC.ClientSecretFile, Scopes: strings.Join(conn.OIDC.Scopes, " "), IDPMetadataURL: conn.SAML.MetadataURL,
			IDPMetadataXML: conn.SAML.MetadataXML, ExternalIDClaim: conn.ExternalIDClaim, JITDomains: strings.Join(conn.JIT.Domains, ", "),
			JITRole: conn.JIT.RoleID, BreakGlass: strings.Join(emails, ", "), Enforce: conn.Enforce}
		return err
	})
	if r.Method == http.MethodPost && r.PostForm.Has("protocol") {
		d.Form = postedSSOForm(r)
	}
	p.Data = d
	return p, err
}

// userEmails returns the addresses of the users ids, in their order.
func userEmails(r *http.Request, tx *store.Tx, ids []string) ([]string, error) {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		var email string
		err := tx.QueryRow(r.Context(), `SELECT email FROM users WHERE id = ?`, id).Scan(&email)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return nil, err
		}
		out = append(out, email)
	}
	return out, nil
}

func postedSSOForm(r *http.Request) ssoForm {
	v := r.PostFormValue
	return ssoForm{Protocol: v("protocol"), Issuer: v("issuer"), ClientID: v("client_id"), ClientSecretEnv: v("client_secret_env"),
		ClientSecretFile: v("client_secret_file"), Scopes: v("scopes"), IDPMetadataURL: v("idp_metadata_url"), IDPMetadataXML: v("idp_metadata_xml"),
		ExternalIDClaim: v("external_id_claim"), JITDomains: v("jit_domains"), JITRole: v("jit_role"), BreakGlass: v("break_glass"),
		Enforce: v("enforce") != ""}
}

// list splits a typed list at commas and spaces.
func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// ssoInput reads the posted form; a break-glass address nobody has is
// KindInvalid.
func (h *Handler) ssoInput(r *http.Request) (sso.Input, error) {
	f := postedSSOForm(r)
	in := sso.Input{Protocol: f.Protocol, Issuer: strings.TrimSpace(f.Issuer), ClientID: strings.TrimSpace(f.ClientID),
		ClientSecretEnv: strings.TrimSpace(f.ClientSecretEnv), ClientSecretFile: strings.TrimSpace(f.ClientSecretFile), Scopes: list(f.Scopes),
		IDPMetadataURL: strings.TrimSpace(f.IDPMetadataURL), IDPMetadataXML: strings.TrimSpace(f.IDPMetadataXML),
		ExternalIDClaim: strings.TrimSpace(f.ExternalIDClaim), JITDomains: list(f.JITDomains), JITRole: f.JITRole, Enforce: f.Enforce}
	emails := list(f.BreakGlass)
	if len(emails) > sso.MaxBreakGlass {
		return in, steward.Invalid([]string{"body", "break_glass"}, "at most %d break-glass users, not %d", sso.MaxBreakGlass, len(emails))
	}
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		for _, email := range emails {
			id, err := auth.UserByEmail(r.Context(), tx, email)
			if err != nil {
				return err
			}
			if id == "" {
				return steward.Invalid([]string{"body", "break_glass"}, "nobody here has the address %q: break-glass users are members, named by their e-mail address", email)
			}
			in.BreakGlass = append(in.BreakGlass, id)
		}
		return nil
	})
	return in, err
}

func (h *Handler) ssoBase(c *reqCtx) string {
	if c.org != nil {
		return Prefix + "/o/" + c.org.ID
	}
	return Prefix + "/ea/" + c.ea.ID
}

func (h *Handler) saveSSO(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	in, err := h.ssoInput(r)
	if err == nil {
		_, err = h.cfg.SSO.Put(r.Context(), c.p.Actor(), ssoScopeOf(c), in)
	}
	if err != nil {
		return h.again(w, r, c, "sso", err)
	}
	return done(w, r, h.ssoBase(c)+"/sso", "sso_saved")
}

func (h *Handler) deleteSSO(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if err := h.cfg.SSO.Delete(r.Context(), c.p.Actor(), ssoScopeOf(c)); err != nil {
		return h.again(w, r, c, "sso", err)
	}
	return done(w, r, h.ssoBase(c)+"/sso", "sso_deleted")
}
