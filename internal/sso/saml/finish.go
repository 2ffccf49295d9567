package saml

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"
)

// Assertion is what Steward takes from an accepted assertion.
type Assertion struct {
	// ID is the assertion's id, as given to the ReplayGuard.
	ID string
	// NameID is the subject's identifier, and NameIDFormat its format.
	NameID       string
	NameIDFormat string
	// Email is the NameID if its format is the e-mail address one, else the
	// first e-mail attribute (mail, email, emailaddress and their URI
	// names); empty if neither holds an address.
	Email string
	// ExternalID is the value of Config.ExternalIDAttribute, if set and
	// present.
	ExternalID string
	// GivenName and FamilyName come from the usual name attributes.
	GivenName  string
	FamilyName string
	// SessionIndex is the identity provider's session, for single logout.
	SessionIndex string
	// SessionNotOnOrAfter, if not zero, is when the identity provider wants
	// the session it opened to end.
	SessionNotOnOrAfter time.Time
}

// Reason says, in a word, why a response was refused; the caller audits it.
type Reason string

// The reasons Finish refuses a response for.
const (
	ReasonMalformed   Reason = "malformed"
	ReasonUnsigned    Reason = "unsigned"
	ReasonSignature   Reason = "bad_signature"
	ReasonIssuer      Reason = "wrong_issuer"
	ReasonAudience    Reason = "wrong_audience"
	ReasonDestination Reason = "wrong_destination"
	ReasonRequest     Reason = "unknown_request"
	ReasonExpired     Reason = "expired"
	ReasonNotYetValid Reason = "not_yet_valid"
	ReasonReplayed    Reason = "replayed"
	ReasonStatus      Reason = "idp_refused"
	ReasonDecryption  Reason = "decryption"
	ReasonUnsupported Reason = "unsupported"
	ReasonNoEmail     Reason = "no_email"
	ReasonInternal    Reason = "internal"
	ReasonInvalid     Reason = "invalid"
)

// Error is a refused response. Message is plain English, safe to show to
// the user and to write to the audit log (no XML, no secrets); Err, the
// library's diagnosis, may quote the response and is for the server's log
// only.
type Error struct {
	Reason  Reason
	Message string
	Err     error
}

func (e *Error) Error() string { return "saml: " + e.Message }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// reasons maps the library's error classes to reasons and messages, in the
// order they are tested: the first that matches wins.
var reasons = []struct {
	class   error
	reason  Reason
	message string
}{
	{crewjam.ErrInvalidSignature, ReasonSignature, "the signature does not verify with the identity provider's certificate"},
	{crewjam.ErrIssuerMismatch, ReasonIssuer, "the response comes from another identity provider than the one configured"},
	{crewjam.ErrAudienceMismatch, ReasonAudience, "the assertion is meant for another service provider (audience)"},
	{crewjam.ErrDestinationMismatch, ReasonDestination, "the response is addressed to another URL than this connection's ACS URL (destination or recipient)"},
	{crewjam.ErrRequestIDMismatch, ReasonRequest, "the response does not answer a sign-in started here (InResponseTo)"},
	{crewjam.ErrExpired, ReasonExpired, "the assertion has expired"},
	{crewjam.ErrNotYetValid, ReasonNotYetValid, "the assertion is not valid yet; check the clocks of Steward and the identity provider"},
	{crewjam.ErrDecryptionFailed, ReasonDecryption, "the encrypted assertion cannot be decrypted with this connection's key"},
	{crewjam.ErrUnsupported, ReasonUnsupported, "the response uses something Steward does not support (SAML version, SHA-1 signature or unknown condition)"},
	{crewjam.ErrMalformedMessage, ReasonMalformed, "the response is not a well-formed SAML response"},
	{crewjam.ErrMissingElement, ReasonMalformed, "the response lacks an element SAML requires"},
}

// Finish checks samlResponse, the base64 SAMLResponse posted to the ACS URL,
// and returns its assertion. It accepts it only if the response or its
// assertion is signed by the identity provider, the assertion is for this
// service provider (audience) at this ACS URL (destination and recipient),
// answers requestID (IdP-initiated sign-ins are refused: they cannot be tied
// to a browser that asked, so they open the door to login CSRF), is within
// its time conditions (three minutes of clock skew allowed), and guard
// accepts its id. Every refusal is an *Error.
func (p *ServiceProvider) Finish(ctx context.Context, samlResponse, requestID string, guard ReplayGuard) (Assertion, error) {
	if len(samlResponse) > MaxResponseSize {
		return Assertion{}, &Error{Reason: ReasonMalformed, Message: fmt.Sprintf("the response is larger than %d bytes", MaxResponseSize)}
	}
	if requestID == "" {
		return Assertion{}, &Error{Reason: ReasonRequest, Message: "no sign-in was started here for this response"}
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(samlResponse))
	if err != nil {
		return Assertion{}, &Error{Reason: ReasonMalformed, Message: "the SAMLResponse field is not base64", Err: err}
	}
	if !signed(raw) {
		return Assertion{}, &Error{Reason: ReasonUnsigned, Message: "neither the response nor its assertion is signed"}
	}
	sp := *p.sp
	sp.ReplayCache = replayCache{ctx: ctx, guard: guard}
	got, err := sp.ParseXMLResponse(raw, []string{requestID}, sp.AcsURL)
	if err != nil {
		return Assertion{}, refusal(err)
	}
	a := p.summary(got)
	if a.Email == "" {
		return Assertion{}, &Error{Reason: ReasonNoEmail, Message: "the assertion carries no e-mail address, neither as NameID nor as an attribute"}
	}
	return a, nil
}

// refusal turns the library's error into an *Error. The cause kept is the
// library's diagnosis, not the response it quotes.
func refusal(err error) *Error {
	var invalid *crewjam.InvalidResponseError
	if errors.As(err, &invalid) && invalid.PrivateErr != nil {
		err = invalid.PrivateErr
	}
	if errors.Is(err, ErrReplayed) {
		return &Error{Reason: ReasonReplayed, Message: "the assertion has already been used", Err: err}
	}
	var guard guardError
	if errors.As(err, &guard) {
		return &Error{Reason: ReasonInternal, Message: "the sign-in could not be recorded; try again", Err: guard.err}
	}
	var status crewjam.ErrBadStatus
	if errors.As(err, &status) {
		return &Error{Reason: ReasonStatus, Message: "the identity provider refused the sign-in (status " + statusName(status.Status) + ")", Err: err}
	}
	for _, r := range reasons {
		if errors.Is(err, r.class) {
			return &Error{Reason: r.reason, Message: r.message, Err: err}
		}
	}
	// The library refused for a reason it does not classify.
	return &Error{Reason: ReasonInvalid, Message: "the response could not be verified", Err: err}
}

// statusName is the last part of a SAML status URI
// (urn:oasis:names:tc:SAML:2.0:status:Requester gives Requester), which is
// all a person needs and keeps what the identity provider sent short.
func statusName(uri string) string {
	name := uri[strings.LastIndex(uri, ":")+1:]
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}

// signed reports whether the response, or an assertion in it, carries an
// XML signature, or holds an encrypted assertion (whose signature can only
// be seen once decrypted, which the library does). It only tells an
// unsigned response apart, to say so; the library checks every signature.
func signed(raw []byte) bool {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		// Let the library say what is wrong with it.
		return true
	}
	root := doc.Root()
	if root.SelectElement("Signature") != nil || root.SelectElement("EncryptedAssertion") != nil {
		return true
	}
	for _, a := range root.SelectElements("Assertion") {
		if a.SelectElement("Signature") != nil {
			return true
		}
	}
	return false
}

// Attribute names that carry the e-mail address and the names, as Okta,
// Microsoft Entra ID, Google Workspace, Keycloak and LDAP-style identity
// providers send them.
var (
	emailAttributes = []string{
		"email", "mail", "emailaddress", "Email", "EmailAddress",
		"urn:oid:0.9.2342.19200300.100.1.3",
		"urn:oid:1.2.840.113549.1.9.1",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
	}
	givenNameAttributes = []string{
		"givenName", "given_name", "firstName", "first_name", "FirstName",
		"urn:oid:2.5.4.42",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
	}
	familyNameAttributes = []string{
		"sn", "surname", "familyName", "family_name", "lastName", "last_name", "LastName",
		"urn:oid:2.5.4.4",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
	}
)

// summary reads what Steward needs from an accepted assertion.
func (p *ServiceProvider) summary(got *crewjam.Assertion) Assertion {
	a := Assertion{ID: got.ID}
	if id := got.Subject.NameID; id != nil {
		a.NameID = strings.TrimSpace(id.Value)
		a.NameIDFormat = id.Format
		if id.Format == string(crewjam.EmailAddressNameIDFormat) {
			a.Email = emailAddress(a.NameID)
		}
	}
	if len(got.AuthnStatements) > 0 {
		a.SessionIndex = got.AuthnStatements[0].SessionIndex
		if t := got.AuthnStatements[0].SessionNotOnOrAfter; t != nil {
			a.SessionNotOnOrAfter = *t
		}
	}
	values := attributeValues(got)
	if a.Email == "" {
		a.Email = emailAddress(first(values, emailAttributes))
	}
	a.GivenName = first(values, givenNameAttributes)
	a.FamilyName = first(values, familyNameAttributes)
	if p.externalIDs != "" {
		a.ExternalID = first(values, []string{p.externalIDs})
	}
	return a
}

// attributeValues maps each attribute name of the assertion to its first
// non-empty value. FriendlyNames are not used: they are not meant to
// identify attributes (saml-core §2.7.3.1).
func attributeValues(got *crewjam.Assertion) map[string]string {
	values := map[string]string{}
	for _, statement := range got.AttributeStatements {
		for _, attr := range statement.Attributes {
			if _, ok := values[attr.Name]; ok {
				continue
			}
			for _, v := range attr.Values {
				if s := strings.TrimSpace(v.Value); s != "" {
					values[attr.Name] = s
					break
				}
			}
		}
	}
	return values
}

// first returns the value of the first of names the assertion carries.
func first(values map[string]string, names []string) string {
	for _, name := range names {
		if v, ok := values[name]; ok {
			return v
		}
	}
	return ""
}

// emailAddress returns s if it is a bare e-mail address, else "".
func emailAddress(s string) string {
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Address != s {
		return ""
	}
	return s
}
