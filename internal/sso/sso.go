// Package sso signs people in to the Admin Panel and the Backoffice through
// their company's identity provider: OpenID Connect (here) or SAML 2.0
// (package saml, plugged in through the flow seam).
//
// Each Organization, and each Enterprise Account's Backoffice, may have one
// Connection. A sign-in starts with Begin, which stores a Pending sign-in
// named by a random state and sends the browser to the provider; the
// provider sends it back to a callback, where Finish uses the Pending up
// (once), has the protocol's flow check what the provider says, and
// decides who comes in: a member of the scope matched by the SCIM
// externalId or a verified e-mail address, or a new member created just in
// time. The web pages then start the session, as for a password.
package sso

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

// Protocols a Connection speaks.
const (
	ProtocolOIDC = "oidc"
	ProtocolSAML = "saml"
)

// Scope names what a Connection signs in to: "org:<id>" for an
// Organization's Admin Panel, "ea:<id>" for an Enterprise Account's
// Backoffice, as the audit log names its chains.
type Scope string

// OrgScope is the scope of an Organization.
func OrgScope(orgID string) Scope { return Scope("org:" + orgID) }

// EAScope is the scope of an Enterprise Account's Backoffice.
func EAScope(eaID string) Scope { return Scope("ea:" + eaID) }

// Organization returns the Organization of an "org:" scope, "" otherwise.
func (s Scope) Organization() string {
	id, _ := strings.CutPrefix(string(s), "org:")
	if id == string(s) {
		return ""
	}
	return id
}

// EnterpriseAccount returns the Enterprise Account of an "ea:" scope, ""
// otherwise.
func (s Scope) EnterpriseAccount() string {
	id, _ := strings.CutPrefix(string(s), "ea:")
	if id == string(s) {
		return ""
	}
	return id
}

// Connection is a scope's identity provider and who it lets in.
type Connection struct {
	ID       string
	Scope    Scope
	Protocol string
	OIDC     OIDCSettings
	SAML     SAMLSettings
	// ExternalIDClaim names the claim (OIDC) or attribute (SAML) that holds
	// the person's SCIM externalId; "" matches by verified e-mail only.
	ExternalIDClaim string
	JIT             JIT
	// Enforce refuses password sign-in and reset to the scope's members,
	// except the BreakGlass users.
	Enforce    bool
	BreakGlass []string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// OIDCSettings are an OpenID Connect provider and Steward's client there.
// The client secret is read, at each use, from the environment variable
// ClientSecretEnv or the file ClientSecretFile (one of them is set); it is
// never stored.
type OIDCSettings struct {
	Issuer           string
	ClientID         string
	ClientSecretEnv  string
	ClientSecretFile string
	Scopes           []string
}

// SAMLSettings are a SAML identity provider, by its metadata (MetadataURL
// or MetadataXML), and Steward's service provider key pair, generated when
// the connection is made. SPPrivateKey is PEM (PKCS #8) and never leaves
// Steward; SPCertificate is the PEM certificate the metadata publishes.
type SAMLSettings struct {
	MetadataURL   string
	MetadataXML   string
	SPCertificate string
	SPPrivateKey  string
}

// JIT is just-in-time creation: someone the provider vouches for whose
// verified address is in one of Domains, and who is not a member yet,
// becomes one with RoleID. No Domains, no creation.
type JIT struct {
	Domains []string
	RoleID  string
}

// Identity is what a provider says about the person signing in.
type Identity struct {
	// Subject is the provider's identifier of the person (sub, NameID).
	Subject       string
	Email         string
	EmailVerified bool
	// ExternalID is the value of the connection's ExternalIDClaim.
	ExternalID string
	GivenName  string
	FamilyName string
	// SessionID is the provider's session (OIDC sid, SAML SessionIndex),
	// which a back-channel logout names.
	SessionID string
	// IDToken is the OpenID Connect ID token, kept with the session as the
	// id_token_hint of its logout; never logged nor audited.
	IDToken string
}

// Pending is a sign-in under way: what the callback must find again. It
// is stored under the hash of State, lives PendingTTL and is used once.
type Pending struct {
	State        string
	ConnectionID string
	// Nonce (OIDC) binds the ID token to this sign-in.
	Nonce string
	// Verifier is the PKCE code verifier (OIDC).
	Verifier string
	// RequestID is the SAML AuthnRequest's ID, which the response must
	// answer (InResponseTo).
	RequestID string
	// Next is the page to open once signed in.
	Next      string
	ExpiresAt time.Time
}

// PendingTTL is how long a sign-in may take at the provider.
const PendingTTL = 10 * time.Minute

// flow is one protocol's half of a sign-in. begin fills in what p must
// remember (nonce, verifier, request id) and returns where to send the
// browser; finish checks the provider's answer to p, the callback request
// r, and returns who the provider vouches for. Both return an error whose
// message can be shown (a *steward.Error of KindUnauthenticated or
// KindInvalid) for what the provider or the person did, and any other
// error for what went wrong in Steward.
type flow interface {
	begin(ctx context.Context, c Connection, p *Pending) (redirectURL string, err error)
	finish(ctx context.Context, c Connection, r *http.Request, p Pending) (Identity, error)
}

// refused is a sign-in the provider's answer does not allow, with the
// reason for the audit log and the log (never a token).
func refused(format string, args ...any) *steward.Error {
	return steward.Errorf(steward.KindUnauthenticated, format, args...)
}
