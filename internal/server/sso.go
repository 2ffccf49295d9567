package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
)

// Single sign-on (a Steward extension): package sso keeps the one
// connection of an Organization (GET/PUT/DELETE /sso under the Admin API)
// and of an Enterprise Account's Backoffice (the same under the
// Backoffice API). Secrets are never part of an answer: the OpenID Connect
// client secret is only named (an environment variable or a file), and
// the SAML service provider's private key stays in Steward.

type ssoOIDCOut struct {
	Issuer           string   `json:"issuer"`
	ClientID         string   `json:"client_id"`
	ClientSecretEnv  *string  `json:"client_secret_env"`
	ClientSecretFile *string  `json:"client_secret_file"`
	Scopes           []string `json:"scopes"`
	RedirectURI      string   `json:"redirect_uri"`
}

type ssoSAMLOut struct {
	IDPMetadataURL *string `json:"idp_metadata_url"`
	IDPMetadataXML *string `json:"idp_metadata_xml"`
	EntityID       string  `json:"entity_id"`
	ACSURL         string  `json:"acs_url"`
	MetadataURL    string  `json:"metadata_url"`
	Certificate    string  `json:"certificate"`
}

type ssoJIT struct {
	Domains     []string `json:"domains"`
	DefaultRole string   `json:"default_role"`
}

type ssoOut struct {
	ID                string      `json:"id"`
	Protocol          string      `json:"protocol"`
	OIDC              *ssoOIDCOut `json:"oidc"`
	SAML              *ssoSAMLOut `json:"saml"`
	ExternalIDClaim   *string     `json:"external_id_claim"`
	JIT               ssoJIT      `json:"jit"`
	Enforce           bool        `json:"enforce"`
	BreakGlassUserIDs []string    `json:"break_glass_user_ids"`
	StartURL          string      `json:"start_url"`
	CreatedAt         string      `json:"created_at"`
	UpdatedAt         string      `json:"updated_at"`
}

func (s *Server) newSSOOut(c sso.Connection) ssoOut {
	out := ssoOut{ID: c.ID, Protocol: c.Protocol, ExternalIDClaim: optional(c.ExternalIDClaim), Enforce: c.Enforce,
		JIT: ssoJIT{Domains: c.JIT.Domains, DefaultRole: c.JIT.RoleID}, BreakGlassUserIDs: c.BreakGlass,
		StartURL: s.sso.StartURL(c.ID), CreatedAt: formatTime(c.CreatedAt), UpdatedAt: formatTime(c.UpdatedAt)}
	switch c.Protocol {
	case sso.ProtocolOIDC:
		out.OIDC = &ssoOIDCOut{Issuer: c.OIDC.Issuer, ClientID: c.OIDC.ClientID, ClientSecretEnv: optional(c.OIDC.ClientSecretEnv),
			ClientSecretFile: optional(c.OIDC.ClientSecretFile), Scopes: c.OIDC.Scopes, RedirectURI: s.sso.RedirectURI()}
	case sso.ProtocolSAML:
		out.SAML = &ssoSAMLOut{IDPMetadataURL: optional(c.SAML.MetadataURL), IDPMetadataXML: optional(c.SAML.MetadataXML),
			EntityID: s.sso.EntityID(c.ID), ACSURL: s.sso.ACSURL(c.ID), MetadataURL: s.sso.MetadataURL(c.ID), Certificate: c.SAML.SPCertificate}
	}
	return out
}

type ssoIn struct {
	Protocol string `json:"protocol"`
	OIDC     struct {
		Issuer           string   `json:"issuer"`
		ClientID         string   `json:"client_id"`
		ClientSecretEnv  string   `json:"client_secret_env"`
		ClientSecretFile string   `json:"client_secret_file"`
		Scopes           []string `json:"scopes"`
	} `json:"oidc"`
	SAML struct {
		IDPMetadataURL string `json:"idp_metadata_url"`
		IDPMetadataXML string `json:"idp_metadata_xml"`
	} `json:"saml"`
	ExternalIDClaim string `json:"external_id_claim"`
	JIT             struct {
		Domains     []string `json:"domains"`
		DefaultRole string   `json:"default_role"`
	} `json:"jit"`
	Enforce           bool     `json:"enforce"`
	BreakGlassUserIDs []string `json:"break_glass_user_ids"`
}

func (in ssoIn) input() sso.Input {
	return sso.Input{Protocol: in.Protocol, Issuer: in.OIDC.Issuer, ClientID: in.OIDC.ClientID, ClientSecretEnv: in.OIDC.ClientSecretEnv,
		ClientSecretFile: in.OIDC.ClientSecretFile, Scopes: in.OIDC.Scopes, IDPMetadataURL: in.SAML.IDPMetadataURL, IDPMetadataXML: in.SAML.IDPMetadataXML,
		ExternalIDClaim: in.ExternalIDClaim, JITDomains: in.JIT.Domains, JITRole: in.JIT.DefaultRole, Enforce: in.Enforce, BreakGlass: in.BreakGlassUserIDs}
}

// ssoScope is the scope of the principal's route: its Organization under
// the Admin API, its Enterprise Account under the Backoffice API.
func ssoScope(p steward.Principal) sso.Scope {
	if p.Kind == steward.CredentialBackofficeKey {
		return sso.EAScope(p.EnterpriseAccountID)
	}
	return sso.OrgScope(p.OrganizationID)
}

func (s *Server) handleGetSSO(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	c, err := s.sso.Get(r.Context(), ssoScope(p))
	return writeResult(w, s.newSSOOut(c), err)
}

func (s *Server) handlePutSSO(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in ssoIn
	if err := decode(r, &in); err != nil {
		return err
	}
	c, err := s.sso.Put(r.Context(), p.Actor(), ssoScope(p), in.input())
	return writeResult(w, s.newSSOOut(c), err)
}

func (s *Server) handleDeleteSSO(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.sso.Delete(r.Context(), p.Actor(), ssoScope(p)))
}
