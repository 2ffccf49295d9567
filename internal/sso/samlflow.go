package sso

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/sso/saml"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// metadataTTL is how long an identity provider's metadata fetched from its
// URL is used before it is fetched again, so that a rotated signing
// certificate is picked up within the hour.
const metadataTTL = time.Hour

// samlFlow signs in through a SAML 2.0 identity provider: an AuthnRequest
// (HTTP-Redirect binding) whose RelayState is the sign-in's state, and a
// signed response posted to the connection's ACS URL, checked by package
// saml (signature, audience, destination and recipient, InResponseTo the
// request's id, time conditions, and the assertion id used once).
type samlFlow struct {
	s *Service

	mu       sync.Mutex
	metadata map[string]cachedMetadata
}

var _ flow = (*samlFlow)(nil)

// cachedMetadata is a connection's identity provider metadata, fetched
// from url at at.
type cachedMetadata struct {
	url string
	xml []byte
	at  time.Time
}

func newSAMLFlow(s *Service) *samlFlow {
	return &samlFlow{s: s, metadata: map[string]cachedMetadata{}}
}

// spConfig is Steward's side of the connection c: its URLs, derived from
// the public URL and the connection's id, and its key pair.
func (f *samlFlow) spConfig(c Connection) saml.Config {
	return saml.Config{
		EntityID:            f.s.EntityID(c.ID),
		ACSURL:              f.s.ACSURL(c.ID),
		MetadataURL:         f.s.MetadataURL(c.ID),
		KeyPair:             saml.KeyPair{CertificatePEM: c.SAML.SPCertificate, PrivateKeyPEM: c.SAML.SPPrivateKey},
		ExternalIDAttribute: c.ExternalIDClaim,
		Now:                 f.s.now,
	}
}

// serviceProvider builds the connection's service provider with its
// identity provider's metadata.
func (f *samlFlow) serviceProvider(ctx context.Context, c Connection) (*saml.ServiceProvider, error) {
	cfg := f.spConfig(c)
	var err error
	if cfg.IDPMetadata, err = f.idpMetadata(ctx, c); err != nil {
		return nil, err
	}
	return saml.New(cfg)
}

// idpMetadata returns the connection's identity provider metadata: as
// configured, or fetched from its URL at most metadataTTL ago.
func (f *samlFlow) idpMetadata(ctx context.Context, c Connection) ([]byte, error) {
	if c.SAML.MetadataURL == "" {
		return []byte(c.SAML.MetadataXML), nil
	}
	f.mu.Lock()
	cm, ok := f.metadata[c.ID]
	f.mu.Unlock()
	if ok && cm.url == c.SAML.MetadataURL && time.Since(cm.at) < metadataTTL {
		return cm.xml, nil
	}
	xml, err := saml.FetchMetadata(ctx, f.s.client, c.SAML.MetadataURL)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.metadata[c.ID] = cachedMetadata{url: c.SAML.MetadataURL, xml: xml, at: time.Now()}
	f.mu.Unlock()
	return xml, nil
}

func (f *samlFlow) begin(ctx context.Context, c Connection, p *Pending) (string, error) {
	sp, err := f.serviceProvider(ctx, c)
	if err != nil {
		return "", err
	}
	req, err := sp.Begin(p.State)
	if err != nil {
		return "", err
	}
	if req.Method != http.MethodGet {
		return "", steward.Errorf(steward.KindUnavailable, "the identity provider accepts sign-in requests by HTTP-POST only, which Steward does not send: ask your administrator to enable the HTTP-Redirect binding")
	}
	p.RequestID = req.ID
	return req.URL, nil
}

// finish checks the SAMLResponse posted to the connection's ACS URL. The
// web page has parsed the form, bounded in size, and found the pending
// sign-in by its RelayState.
func (f *samlFlow) finish(ctx context.Context, c Connection, r *http.Request, p Pending) (Identity, error) {
	if conn := r.PathValue("connection"); conn != "" && conn != c.ID {
		return Identity{}, refused("the SAML response was posted to another connection than the one the sign-in started with")
	}
	response := r.PostFormValue("SAMLResponse")
	if response == "" {
		return Identity{}, refused("the identity provider posted no SAMLResponse")
	}
	sp, err := f.serviceProvider(ctx, c)
	if err != nil {
		return Identity{}, err
	}
	a, err := sp.Finish(ctx, response, p.RequestID, samlReplay{replay: f.s.replay, connID: c.ID})
	var se *saml.Error
	switch {
	case errors.As(err, &se) && se.Reason == saml.ReasonInternal:
		return Identity{}, err
	case errors.As(err, &se):
		f.s.log.Info("sso: SAML response refused", "request_id", steward.RequestIDFrom(ctx), "connection_id", c.ID, "reason", se.Reason, "err", se.Err)
		return Identity{}, refused("the identity provider's answer was refused: %s", se.Message)
	case err != nil:
		return Identity{}, err
	}
	// A SAML assertion has no "verified" flag: the identity provider the
	// Organization's administrator configured vouches for the address it
	// signs, as it does for the person.
	return Identity{Subject: a.NameID, Email: a.Email, EmailVerified: true, ExternalID: a.ExternalID,
		GivenName: a.GivenName, FamilyName: a.FamilyName, SessionID: a.SessionIndex}, nil
}

// samlReplay is the service's replay guard as package saml calls it: the
// assertion ids of each connection kept apart, and a replay reported as
// saml.ErrReplayed.
type samlReplay struct {
	replay *Replay
	connID string
}

func (g samlReplay) Use(ctx context.Context, key string, until time.Time) error {
	err := g.replay.Use(ctx, "saml-assertion:"+g.connID+":"+key, until)
	if errors.Is(err, ErrReplayed) {
		return fmt.Errorf("%w: %w", saml.ErrReplayed, err)
	}
	return err
}

// SAMLMetadata returns the SP metadata of the SAML connection connID, for
// its identity provider; a connection that is not SAML is not found.
func (s *Service) SAMLMetadata(ctx context.Context, connID string) ([]byte, error) {
	var c Connection
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		c, err = connectionByID(ctx, tx, connID)
		return err
	})
	if err != nil {
		return nil, err
	}
	if c.Protocol != ProtocolSAML {
		return nil, errNoConnection
	}
	return saml.Metadata(s.saml.spConfig(c))
}
