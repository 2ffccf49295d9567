package saml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
)

// MaxMetadataSize caps the identity provider metadata Steward reads. An
// identity provider's own metadata is a few kilobytes; federation
// aggregates, which are megabytes, are not supported.
const MaxMetadataSize = 1 << 20

// FetchTimeout bounds a metadata fetch.
const FetchTimeout = 10 * time.Second

// FetchMetadata fetches the identity provider's metadata from rawURL with
// client (http.DefaultClient if nil), within FetchTimeout and
// MaxMetadataSize, and returns it once CheckMetadata accepts it. The URL
// must be https: the metadata holds the certificate every sign-in is
// checked with, so it must not be open to tampering on the way.
func FetchMetadata(ctx context.Context, client *http.Client, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("saml: the metadata URL %q is not an absolute https URL", rawURL)
	}
	if client == nil {
		client = http.DefaultClient
	}
	ctx, cancel := context.WithTimeout(ctx, FetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("saml: fetching the metadata: %w", err)
	}
	req.Header.Set("Accept", "application/samlmetadata+xml, application/xml, text/xml")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("saml: fetching the metadata from %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("saml: fetching the metadata from %s: HTTP status %d", u.Redacted(), resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxMetadataSize+1))
	if err != nil {
		return nil, fmt.Errorf("saml: fetching the metadata from %s: %w", u.Redacted(), err)
	}
	if _, err := CheckMetadata(data); err != nil {
		return nil, err
	}
	return data, nil
}

// IdentityProvider is what CheckMetadata found in the metadata, for the
// administrator to confirm.
type IdentityProvider struct {
	EntityID string
	// SignOnURL is the single sign-on service Begin sends browsers to.
	SignOnURL string
	// Certificates counts the signing certificates.
	Certificates int
}

// CheckMetadata tells whether data is identity provider metadata Steward
// can use: at most MaxMetadataSize, one identity provider, with a signing
// certificate and an HTTP-Redirect or HTTP-POST sign-on service.
func CheckMetadata(data []byte) (IdentityProvider, error) {
	idp, err := parseMetadata(data)
	if err != nil {
		return IdentityProvider{}, err
	}
	sp := crewjam.ServiceProvider{IDPMetadata: idp}
	location := sp.GetSSOBindingLocation(crewjam.HTTPRedirectBinding)
	if location == "" {
		location = sp.GetSSOBindingLocation(crewjam.HTTPPostBinding)
	}
	return IdentityProvider{EntityID: idp.EntityID, SignOnURL: location, Certificates: signingCertificates(idp)}, nil
}

// parseMetadata parses and checks identity provider metadata.
func parseMetadata(data []byte) (*crewjam.EntityDescriptor, error) {
	if len(data) == 0 {
		return nil, errors.New("saml: the identity provider metadata is empty")
	}
	if len(data) > MaxMetadataSize {
		return nil, fmt.Errorf("saml: the identity provider metadata is larger than %d bytes", MaxMetadataSize)
	}
	idp, err := samlsp.ParseMetadata(data)
	if err != nil {
		return nil, errors.New("saml: the identity provider metadata is not SAML metadata (an EntityDescriptor of one identity provider)")
	}
	if idp.EntityID == "" || len(idp.IDPSSODescriptors) == 0 {
		return nil, errors.New("saml: the metadata describes no identity provider (no IDPSSODescriptor)")
	}
	if signingCertificates(idp) == 0 {
		return nil, errors.New("saml: the identity provider metadata has no signing certificate")
	}
	sp := crewjam.ServiceProvider{IDPMetadata: idp}
	if sp.GetSSOBindingLocation(crewjam.HTTPRedirectBinding) == "" && sp.GetSSOBindingLocation(crewjam.HTTPPostBinding) == "" {
		return nil, errors.New("saml: the identity provider metadata has no HTTP-Redirect or HTTP-POST single sign-on service")
	}
	return idp, nil
}

// signingCertificates counts the certificates of idp that may sign, those
// whose key use is signing or unset.
func signingCertificates(idp *crewjam.EntityDescriptor) int {
	n := 0
	for _, d := range idp.IDPSSODescriptors {
		for _, k := range d.KeyDescriptors {
			if k.Use == "" || k.Use == "signing" {
				n += len(k.KeyInfo.X509Data.X509Certificates)
			}
		}
	}
	return n
}

// elementBytes serializes el as an XML document.
func elementBytes(el *etree.Element) ([]byte, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
