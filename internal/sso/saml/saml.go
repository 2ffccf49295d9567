// Package saml is Steward's SAML 2.0 service provider: it starts a sign-in
// at an identity provider (an AuthnRequest), checks what the identity
// provider posts back (a signed Response), and describes Steward to the
// identity provider (the SP metadata). It keeps no state and touches no
// database: the caller keeps the request ids it issued, stores the key pair
// and the identity provider's metadata, and supplies the replay guard.
//
// The protocol work (XML signatures, decryption, the checks of conditions,
// audience, recipient and InResponseTo) is github.com/crewjam/saml's; this
// package configures it strictly and turns its verdicts into plain reasons.
package saml

import (
	"context"
	"crypto/rsa"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	crewjam "github.com/crewjam/saml"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
)

// MaxResponseSize caps the base64 SAMLResponse form field Finish accepts. A
// signed response with one assertion and a few attributes is a few
// kilobytes; the cap keeps a hostile post from costing much XML parsing.
const MaxResponseSize = 256 << 10

// Config is one SAML connection between Steward (the service provider) and
// one identity provider.
type Config struct {
	// EntityID is Steward's entity id for this connection, usually its
	// metadata URL.
	EntityID string
	// ACSURL is the absolute URL the identity provider posts responses to.
	ACSURL string
	// MetadataURL is the absolute URL of Steward's SP metadata.
	MetadataURL string
	// KeyPair decrypts the assertions an identity provider encrypts to its
	// certificate; GenerateKeyPair makes one. Steward does not sign its
	// AuthnRequests: they carry nothing secret, the checks that matter are
	// on the response, and the HTTP-Redirect binding's query signature is
	// lost by identity providers that re-post the request from their login
	// form.
	KeyPair KeyPair
	// IDPMetadata is the identity provider's metadata XML; CheckMetadata
	// tells whether it will do, FetchMetadata fetches it from a URL.
	IDPMetadata []byte
	// ExternalIDAttribute, if set, names the assertion attribute that
	// carries the user's SCIM externalId (for example
	// http://schemas.microsoft.com/identity/claims/objectidentifier).
	ExternalIDAttribute string
	// Now, if set, replaces the clock for every time check; tests set it.
	Now func() time.Time
}

// ServiceProvider is a configured connection, ready to begin and finish
// sign-ins. It is cheap to build, so callers build one per request from the
// stored Config.
type ServiceProvider struct {
	sp          *crewjam.ServiceProvider
	externalIDs string
}

// New checks cfg and builds the service provider. Its errors name the
// field at fault.
func New(cfg Config) (*ServiceProvider, error) {
	idp, err := parseMetadata(cfg.IDPMetadata)
	if err != nil {
		return nil, err
	}
	sp, err := cfg.serviceProvider(idp)
	if err != nil {
		return nil, err
	}
	return &ServiceProvider{sp: sp, externalIDs: cfg.ExternalIDAttribute}, nil
}

// Metadata returns Steward's SP metadata XML for the identity provider:
// entity id, ACS URL (HTTP-POST), the certificate assertions may be
// encrypted to, and the NameID format asked for. It needs no identity
// provider metadata (cfg.IDPMetadata is not read), so that an
// administrator can register Steward at the identity provider first.
func Metadata(cfg Config) ([]byte, error) {
	sp, err := cfg.serviceProvider(nil)
	if err != nil {
		return nil, err
	}
	return xml.MarshalIndent(sp.Metadata(), "", "  ")
}

// serviceProvider checks Steward's side of cfg and configures the library
// with it and the identity provider idp.
func (cfg Config) serviceProvider(idp *crewjam.EntityDescriptor) (*crewjam.ServiceProvider, error) {
	if cfg.EntityID == "" {
		return nil, errors.New("saml: the service provider's entity id is empty")
	}
	acs, err := absoluteURL("ACS URL", cfg.ACSURL)
	if err != nil {
		return nil, err
	}
	metadataURL, err := absoluteURL("metadata URL", cfg.MetadataURL)
	if err != nil {
		return nil, err
	}
	pair, err := cfg.KeyPair.parse()
	if err != nil {
		return nil, err
	}
	var clock *dsig.Clock
	if cfg.Now != nil {
		clock = dsig.NewFakeClock(nowClock{Clock: clockwork.NewRealClock(), now: cfg.Now})
	}
	return &crewjam.ServiceProvider{
		EntityID:    cfg.EntityID,
		Key:         pair.PrivateKey.(*rsa.PrivateKey),
		Certificate: pair.Leaf,
		MetadataURL: *metadataURL,
		AcsURL:      *acs,
		IDPMetadata: idp,
		// Steward asks for the e-mail address as NameID, since that is
		// what it matches members by; identity providers that cannot send
		// it still send the e-mail as an attribute.
		AuthnNameIDFormat: crewjam.EmailAddressNameIDFormat,
		// Only HTTP-POST: no artifact resolution, so Steward never calls
		// the identity provider from the server side.
		AssertionConsumerServiceBindings: []string{crewjam.HTTPPostBinding},
		MetadataOmitValidUntil:           true,
		LimitRelayStateLength:            true,
		RejectSHA1Signatures:             true,
		RejectUnknownConditions:          true,
		Clock:                            clock,
	}, nil
}

// absoluteURL parses raw, which must be an absolute http or https URL.
func absoluteURL(name, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("saml: the %s %q is not an absolute http(s) URL", name, raw)
	}
	return u, nil
}

// nowClock is a clockwork.Clock whose Now is Config.Now; the library only
// asks its clock for the time.
type nowClock struct {
	clockwork.Clock
	now func() time.Time
}

// Now returns the injected time.
func (c nowClock) Now() time.Time { return c.now() }

// Request is an AuthnRequest ready to send the browser to the identity
// provider.
type Request struct {
	// ID is the request's id: keep it with the sign-in's state and pass it
	// to Finish, which accepts only a response to it.
	ID string
	// Method is GET for the HTTP-Redirect binding (send the browser to URL)
	// and POST for the HTTP-POST binding (have the browser post Form to URL).
	Method string
	// URL is the redirect URL (GET) or the form's action (POST).
	URL string
	// Form holds SAMLRequest and RelayState for the POST binding.
	Form url.Values
}

// Begin makes an AuthnRequest carrying relayState (at most 80 bytes, as the
// SAML bindings require), for the HTTP-Redirect binding, or for the
// HTTP-POST binding if the identity provider offers only that.
func (p *ServiceProvider) Begin(relayState string) (Request, error) {
	if location := p.sp.GetSSOBindingLocation(crewjam.HTTPRedirectBinding); location != "" {
		req, err := p.sp.MakeAuthenticationRequest(location, crewjam.HTTPRedirectBinding, crewjam.HTTPPostBinding)
		if err != nil {
			return Request{}, fmt.Errorf("saml: making the AuthnRequest: %w", err)
		}
		u, err := req.Redirect(relayState, p.sp)
		if err != nil {
			return Request{}, fmt.Errorf("saml: making the AuthnRequest: %w", err)
		}
		return Request{ID: req.ID, Method: http.MethodGet, URL: u.String()}, nil
	}
	location := p.sp.GetSSOBindingLocation(crewjam.HTTPPostBinding)
	if location == "" {
		return Request{}, errors.New("saml: the identity provider's metadata has no HTTP-Redirect or HTTP-POST sign-on service")
	}
	if len(relayState) > crewjam.MaxRelayStateLength {
		return Request{}, fmt.Errorf("saml: the relay state is longer than %d bytes", crewjam.MaxRelayStateLength)
	}
	req, err := p.sp.MakeAuthenticationRequest(location, crewjam.HTTPPostBinding, crewjam.HTTPPostBinding)
	if err != nil {
		return Request{}, fmt.Errorf("saml: making the AuthnRequest: %w", err)
	}
	body, err := elementBytes(req.Element())
	if err != nil {
		return Request{}, fmt.Errorf("saml: making the AuthnRequest: %w", err)
	}
	return Request{
		ID:     req.ID,
		Method: http.MethodPost,
		URL:    location,
		Form: url.Values{
			"SAMLRequest": {base64.StdEncoding.EncodeToString(body)},
			"RelayState":  {relayState},
		},
	}, nil
}

// KeyPair is the service provider's RSA key and self-signed certificate, as
// PEM. The private key is a secret: store it as one, never show or log it.
type KeyPair struct {
	CertificatePEM string
	PrivateKeyPEM  string
}

// String names the certificate only, so that a KeyPair printed by mistake
// does not leak its key.
func (k KeyPair) String() string {
	return "saml.KeyPair{certificate, private key redacted}"
}

// parse reads the pair and checks that the key matches the certificate.
func (k KeyPair) parse() (tls.Certificate, error) {
	pair, err := tls.X509KeyPair([]byte(k.CertificatePEM), []byte(k.PrivateKeyPEM))
	if err != nil {
		return tls.Certificate{}, errors.New("saml: the service provider's key pair is not a valid PEM certificate and matching private key")
	}
	// RSA: the key also decrypts assertions, which XML encryption does
	// only with RSA keys.
	if _, ok := pair.PrivateKey.(*rsa.PrivateKey); !ok {
		return tls.Certificate{}, errors.New("saml: the service provider's private key is not an RSA key")
	}
	return pair, nil
}

// ReplayGuard remembers which assertions were used, across every Steward
// server, so that each is accepted once.
type ReplayGuard interface {
	// Use records key as used until until, after which the assertion would
	// be refused as expired anyway. It returns an error wrapping
	// ErrReplayed if key is already recorded, and any other error if it
	// cannot record it; either refuses the assertion.
	Use(ctx context.Context, key string, until time.Time) error
}

// ErrReplayed is what a ReplayGuard returns for a key already used.
var ErrReplayed = errors.New("already used")

// replayCache lets the library call a ReplayGuard, with the context of the
// request being checked, once every other check has passed.
type replayCache struct {
	ctx   context.Context
	guard ReplayGuard
}

// Consume implements crewjam.AssertionReplayCache.
func (c replayCache) Consume(id string, until time.Time) error {
	err := c.guard.Use(c.ctx, id, until)
	if err != nil && !errors.Is(err, ErrReplayed) {
		return guardError{err}
	}
	return err
}

// guardError is a ReplayGuard that failed to record a key: Steward's
// fault, not the identity provider's.
type guardError struct{ err error }

func (e guardError) Error() string { return "replay guard: " + e.err.Error() }

// Unwrap returns the guard's error.
func (e guardError) Unwrap() error { return e.err }
