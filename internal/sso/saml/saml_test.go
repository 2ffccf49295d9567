package saml

import (
	"context"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	crewjam "github.com/crewjam/saml"

	"github.com/stewardhq/steward/internal/sso/saml/samltest"
)

const stewardURL = "https://steward.example.com/web/sso/saml/acme"

func TestSignIn(t *testing.T) {
	for _, encrypt := range []bool{true, false} {
		name := "plain assertion"
		if encrypt {
			name = "encrypted assertion"
		}
		t.Run(name, func(t *testing.T) {
			idp := newIdP(t)
			sp := newSP(t, idp, stewardURL, func(c *Config) {
				c.ExternalIDAttribute = "urn:oid:0.9.2342.19200300.100.1.1"
			})
			idp.register(t, "steward", sp, encrypt)

			req, err := sp.Begin("relay-123")
			if err != nil {
				t.Fatal(err)
			}
			if req.Method != http.MethodGet || !strings.HasPrefix(req.URL, idp.URL+"/sso?") || req.ID == "" {
				t.Fatalf("Begin = %+v, want a GET to the identity provider's /sso with an id", req)
			}
			acs, posted := signIn(t, samltest.Browser(t), req, "alice", alicePassword)
			if acs != stewardURL+"/acs" {
				t.Errorf("the identity provider posts to %q, want %q", acs, stewardURL+"/acs")
			}
			if got := posted.Get("RelayState"); got != "relay-123" {
				t.Errorf("RelayState = %q, want relay-123", got)
			}
			if doc := decode(t, posted.Get("SAMLResponse")); (doc.Root().SelectElement("EncryptedAssertion") != nil) != encrypt {
				t.Fatalf("the identity provider did not encrypt as asked (encrypt=%v)", encrypt)
			}

			guard := &memoryGuard{}
			got, err := sp.Finish(context.Background(), posted.Get("SAMLResponse"), req.ID, guard)
			if err != nil {
				t.Fatalf("Finish: %v (%v)", err, errors.Unwrap(err))
			}
			if got.Email != aliceEmail || got.NameID != aliceEmail || got.NameIDFormat != string(crewjam.EmailAddressNameIDFormat) {
				t.Errorf("e-mail, NameID, format = %q, %q, %q; want %s as an e-mail NameID", got.Email, got.NameID, got.NameIDFormat, aliceEmail)
			}
			if got.GivenName != "Alice" || got.FamilyName != "Liddell" || got.ExternalID != "alice" {
				t.Errorf("names, external id = %q %q %q, want Alice Liddell alice", got.GivenName, got.FamilyName, got.ExternalID)
			}
			if got.SessionIndex == "" || got.ID == "" {
				t.Errorf("session index %q, id %q: want both", got.SessionIndex, got.ID)
			}
			until, ok := guard.used[got.ID]
			if !ok || len(guard.used) != 1 {
				t.Fatalf("the guard recorded %v, want the assertion id %s", guard.used, got.ID)
			}
			if now := time.Now(); until.Before(now) || until.After(now.Add(10*time.Minute)) {
				t.Errorf("the guard keeps the id until %v, want a few minutes from now", until)
			}
		})
	}
}

// TestSignInPostBinding signs in through an identity provider that offers
// only the HTTP-POST binding for AuthnRequests.
func TestSignInPostBinding(t *testing.T) {
	idp := newIdP(t)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(idp.Metadata(t)); err != nil {
		t.Fatal(err)
	}
	for _, sso := range doc.FindElements("//SingleSignOnService") {
		if sso.SelectAttrValue("Binding", "") != crewjam.HTTPPostBinding {
			sso.Parent().RemoveChild(sso)
		}
	}
	postOnly, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	sp := newSP(t, idp, stewardURL, func(c *Config) { c.IDPMetadata = postOnly })
	idp.register(t, "steward", sp, true)
	req, err := sp.Begin("relay")
	if err != nil {
		t.Fatal(err)
	}
	if req.Method != http.MethodPost || req.URL != idp.URL+"/sso" || req.Form.Get("SAMLRequest") == "" || req.Form.Get("RelayState") != "relay" {
		t.Fatalf("Begin = %+v, want a POST of SAMLRequest and RelayState to /sso", req)
	}
	_, posted := signIn(t, samltest.Browser(t), req, "alice", alicePassword)
	got, err := sp.Finish(context.Background(), posted.Get("SAMLResponse"), req.ID, &memoryGuard{})
	if err != nil || got.Email != aliceEmail {
		t.Fatalf("Finish = %+v, %v; want alice", got, err)
	}
}

// TestRefusals takes real responses of the identity provider and checks
// that Finish refuses each kind of bad one, for the reason it gives.
func TestRefusals(t *testing.T) {
	idp := newIdP(t)
	sp := newSP(t, idp, stewardURL, nil)
	idp.register(t, "steward", sp, false)
	other := newSP(t, idp, "https://other.example.com/saml", nil)
	idp.register(t, "other", other, false)

	// fresh signs alice in through sp (or another service provider) and
	// returns the response and the request id it answers.
	fresh := func(t *testing.T, via testSP) (string, string) {
		t.Helper()
		req, err := via.Begin("")
		if err != nil {
			t.Fatal(err)
		}
		_, posted := signIn(t, samltest.Browser(t), req, "alice", alicePassword)
		return posted.Get("SAMLResponse"), req.ID
	}
	ctx := context.Background()
	attacker := mustKeyPair(t, "attacker")

	tests := []struct {
		name string
		// finish posts a response, perhaps altered, and returns the verdict.
		finish func(t *testing.T) error
		want   Reason
	}{
		{"unsigned", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			return finishErr(sp.Finish(ctx, resign(t, resp, nil, nil), id, &memoryGuard{}))
		}, ReasonUnsigned},
		{"tampered", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			doc := decode(t, resp)
			nameID := doc.FindElement("//Subject/NameID")
			nameID.SetText("mallory@example.com")
			return finishErr(sp.Finish(ctx, encode(t, doc), id, &memoryGuard{}))
		}, ReasonSignature},
		{"signed with another key", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			return finishErr(sp.Finish(ctx, resign(t, resp, &attacker, nil), id, &memoryGuard{}))
		}, ReasonSignature},
		{"assertion for another service provider", func(t *testing.T) error {
			// The other service provider's response, posted to Steward's
			// ACS: only its audience (and issuer-side destination) differs.
			resp, id := fresh(t, other)
			resp = resign(t, resp, &idp.keys, func(r *etree.Element) {
				r.CreateAttr("Destination", stewardURL+"/acs")
				r.FindElement("//SubjectConfirmationData").CreateAttr("Recipient", stewardURL+"/acs")
			})
			return finishErr(sp.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonAudience},
		{"wrong destination", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			elsewhere := newSP(t, idp, stewardURL, func(c *Config) { c.ACSURL = stewardURL + "/elsewhere" })
			return finishErr(elsewhere.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonDestination},
		{"wrong recipient", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			resp = resign(t, resp, &idp.keys, func(r *etree.Element) {
				r.FindElement("//SubjectConfirmationData").CreateAttr("Recipient", "https://evil.example.com/acs")
			})
			return finishErr(sp.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonDestination},
		{"expired", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			later := newSP(t, idp, stewardURL, func(c *Config) {
				c.Now = func() time.Time { return time.Now().Add(10 * time.Minute) }
			})
			return finishErr(later.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonExpired},
		{"from the future", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			earlier := newSP(t, idp, stewardURL, func(c *Config) {
				c.Now = func() time.Time { return time.Now().Add(-10 * time.Minute) }
			})
			return finishErr(earlier.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonNotYetValid},
		{"replayed", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			guard := &memoryGuard{}
			if _, err := sp.Finish(ctx, resp, id, guard); err != nil {
				t.Fatalf("first use: %v", err)
			}
			return finishErr(sp.Finish(ctx, resp, id, guard))
		}, ReasonReplayed},
		{"unknown InResponseTo", func(t *testing.T) error {
			resp, _ := fresh(t, sp)
			other, err := sp.Begin("")
			if err != nil {
				t.Fatal(err)
			}
			return finishErr(sp.Finish(ctx, resp, other.ID, &memoryGuard{}))
		}, ReasonRequest},
		{"no request id kept", func(t *testing.T) error {
			resp, _ := fresh(t, sp)
			return finishErr(sp.Finish(ctx, resp, "", &memoryGuard{}))
		}, ReasonRequest},
		{"another identity provider", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			stranger := newIdPWithKey(t, "stranger")
			trusting := newSP(t, stranger, stewardURL, nil)
			return finishErr(trusting.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonSignature},
		{"not base64", func(t *testing.T) error {
			return finishErr(sp.Finish(ctx, "<Response/>", "id-1", &memoryGuard{}))
		}, ReasonMalformed},
		{"too large", func(t *testing.T) error {
			return finishErr(sp.Finish(ctx, strings.Repeat("A", MaxResponseSize+1), "id-1", &memoryGuard{}))
		}, ReasonMalformed},
		{"identity provider refused", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			resp = resign(t, resp, &idp.keys, func(r *etree.Element) {
				r.FindElement("Status/StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Requester")
			})
			return finishErr(sp.Finish(ctx, resp, id, &memoryGuard{}))
		}, ReasonStatus},
		{"no e-mail address", func(t *testing.T) error {
			req, err := sp.Begin("")
			if err != nil {
				t.Fatal(err)
			}
			_, posted := signIn(t, samltest.Browser(t), req, "bob", alicePassword)
			return finishErr(sp.Finish(ctx, posted.Get("SAMLResponse"), req.ID, &memoryGuard{}))
		}, ReasonNoEmail},
		{"guard down", func(t *testing.T) error {
			resp, id := fresh(t, sp)
			return finishErr(sp.Finish(ctx, resp, id, brokenGuard{}))
		}, ReasonInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.finish(t)
			var refused *Error
			if !errors.As(err, &refused) {
				t.Fatalf("Finish error = %v, want a *saml.Error", err)
			}
			if refused.Reason != tt.want {
				t.Fatalf("reason = %s (%s; cause %v), want %s", refused.Reason, refused.Message, refused.Err, tt.want)
			}
			if refused.Message == "" || strings.Contains(refused.Message, "<") {
				t.Errorf("message %q: want plain words", refused.Message)
			}
		})
	}
}

// TestIdPInitiatedRefused posts an unsolicited response, which samlidp
// sends for its shortcut links, and checks that Finish refuses it.
func TestIdPInitiatedRefused(t *testing.T) {
	idp := newIdP(t)
	sp := newSP(t, idp, stewardURL, nil)
	idp.register(t, "steward", sp, false)
	idp.Put(t, "/shortcuts/steward", `{"url_suffix_as_relay_state": false, "service_provider": "`+stewardURL+`/metadata"}`)
	client := samltest.Browser(t)
	// Sign in at the identity provider first, then follow the shortcut.
	req, err := sp.Begin("")
	if err != nil {
		t.Fatal(err)
	}
	signIn(t, client, req, "alice", alicePassword)
	resp, err := client.Get(idp.URL + "/login/steward")
	if err != nil {
		t.Fatal(err)
	}
	_, posted := samltest.Form(t, samltest.ReadBody(t, resp))
	if posted.Get("SAMLResponse") == "" {
		t.Fatal("the shortcut posts no SAMLResponse")
	}
	if decode(t, posted.Get("SAMLResponse")).Root().SelectAttrValue("InResponseTo", "") != "" {
		t.Fatal("the unsolicited response answers a request")
	}
	_, err = sp.Finish(context.Background(), posted.Get("SAMLResponse"), req.ID, &memoryGuard{})
	var refused *Error
	if !errors.As(err, &refused) || refused.Reason != ReasonRequest {
		t.Fatalf("Finish = %v, want refused for %s", err, ReasonRequest)
	}
}

// TestMetadata checks the SP metadata an identity provider imports.
func TestMetadata(t *testing.T) {
	idp := newIdP(t)
	sp := newSP(t, idp, stewardURL, nil)
	md, err := Metadata(sp.cfg)
	if err != nil {
		t.Fatal(err)
	}
	var got crewjam.EntityDescriptor
	if err := xml.Unmarshal(md, &got); err != nil {
		t.Fatalf("the metadata does not parse: %v\n%s", err, md)
	}
	if got.EntityID != stewardURL+"/metadata" || len(got.SPSSODescriptors) != 1 {
		t.Fatalf("entity %q with %d SP descriptors, want %s with one", got.EntityID, len(got.SPSSODescriptors), stewardURL+"/metadata")
	}
	d := got.SPSSODescriptors[0]
	if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Location != stewardURL+"/acs" || d.AssertionConsumerServices[0].Binding != crewjam.HTTPPostBinding {
		t.Errorf("ACS = %+v, want one HTTP-POST at %s/acs", d.AssertionConsumerServices, stewardURL)
	}
	if d.WantAssertionsSigned == nil || !*d.WantAssertionsSigned {
		t.Errorf("WantAssertionsSigned = %v, want true", d.WantAssertionsSigned)
	}
	if len(d.KeyDescriptors) != 1 || d.KeyDescriptors[0].Use != "encryption" || len(d.KeyDescriptors[0].KeyInfo.X509Data.X509Certificates) != 1 {
		t.Errorf("key descriptors %+v, want one encryption certificate", d.KeyDescriptors)
	}
	if len(d.NameIDFormats) != 1 || d.NameIDFormats[0] != crewjam.EmailAddressNameIDFormat {
		t.Errorf("NameID formats %v, want the e-mail address", d.NameIDFormats)
	}
	if !got.ValidUntil.IsZero() {
		t.Errorf("validUntil %v: want none, so that an imported copy does not expire", got.ValidUntil)
	}
	if strings.Contains(string(md), "PRIVATE KEY") {
		t.Error("the metadata carries the private key")
	}
	alone := sp.cfg
	alone.IDPMetadata = nil
	if again, err := Metadata(alone); err != nil || string(again) != string(md) {
		t.Errorf("Metadata without the identity provider's metadata = %v, want the same metadata", err)
	}
}

func TestCheckMetadata(t *testing.T) {
	idp := newIdP(t)
	good := idp.Metadata(t)
	got, err := CheckMetadata(good)
	if err != nil {
		t.Fatal(err)
	}
	if got.EntityID != idp.URL+"/metadata" || got.SignOnURL != idp.URL+"/sso" || got.Certificates != 1 {
		t.Errorf("CheckMetadata = %+v", got)
	}
	withoutCert := strings.NewReplacer("<KeyDescriptor", "<!--", "</KeyDescriptor>", "-->").Replace(string(good))
	for _, tt := range []struct {
		name, data, want string
	}{
		{"empty", "", "empty"},
		{"not XML", "hello", "not SAML metadata"},
		{"too large", strings.Repeat(" ", MaxMetadataSize+1), "larger than"},
		{"no signing certificate", withoutCert, "no signing certificate"},
		{"a service provider", string(mustSPMetadata(t, idp)), "no identity provider"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := CheckMetadata([]byte(tt.data))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckMetadata error = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func mustSPMetadata(t *testing.T, idp *testIdP) []byte {
	t.Helper()
	md, err := Metadata(newSP(t, idp, stewardURL, nil).cfg)
	if err != nil {
		t.Fatal(err)
	}
	return md
}

func TestFetchMetadata(t *testing.T) {
	idp := newIdP(t)
	good := idp.Metadata(t)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/metadata":
			w.Write(good)
		case "/huge":
			w.Write([]byte(strings.Repeat(" ", MaxMetadataSize+1)))
		case "/slow":
			<-r.Context().Done()
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	got, err := FetchMetadata(ctx, srv.Client(), srv.URL+"/metadata")
	if err != nil || string(got) != string(good) {
		t.Fatalf("FetchMetadata = %d bytes, %v; want the metadata", len(got), err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	for _, tt := range []struct {
		name, url, want string
		ctx             context.Context
	}{
		{"http", "http://idp.example.com/metadata", "not an absolute https URL", ctx},
		{"relative", "/metadata", "not an absolute https URL", ctx},
		{"not found", srv.URL + "/nothing", "HTTP status 404", ctx},
		{"too large", srv.URL + "/huge", "larger than", ctx},
		{"slow", srv.URL + "/slow", "deadline exceeded", short},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := FetchMetadata(tt.ctx, srv.Client(), tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("FetchMetadata error = %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestNewRefusesBadConfig(t *testing.T) {
	idp := newIdP(t)
	good := Config{
		EntityID:    stewardURL + "/metadata",
		ACSURL:      stewardURL + "/acs",
		MetadataURL: stewardURL + "/metadata",
		KeyPair:     mustKeyPair(t, "sp"),
		IDPMetadata: idp.Metadata(t),
	}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	other := mustKeyPair(t, "other")
	for _, tt := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no entity id", func(c *Config) { c.EntityID = "" }, "entity id"},
		{"relative ACS", func(c *Config) { c.ACSURL = "/acs" }, "ACS URL"},
		{"mismatched key", func(c *Config) { c.KeyPair.PrivateKeyPEM = other.PrivateKeyPEM }, "key pair"},
		{"no metadata", func(c *Config) { c.IDPMetadata = nil }, "metadata is empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.change(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New error = %v, want one about %q", err, tt.want)
			}
		})
	}
}

func TestKeyPairString(t *testing.T) {
	k := mustKeyPair(t, "sp")
	if s := k.String(); strings.Contains(s, "PRIVATE") || strings.Contains(s, k.PrivateKeyPEM[40:80]) {
		t.Fatalf("KeyPair.String() = %q leaks the key", s)
	}
}

func TestRelayStateTooLong(t *testing.T) {
	idp := newIdP(t)
	sp := newSP(t, idp, stewardURL, nil)
	if _, err := sp.Begin(strings.Repeat("r", 81)); err == nil {
		t.Fatal("Begin accepted an 81-byte relay state")
	}
}

// finishErr keeps Finish's error.
func finishErr(_ Assertion, err error) error { return err }

// brokenGuard is a replay guard whose store is down.
type brokenGuard struct{}

func (brokenGuard) Use(context.Context, string, time.Time) error {
	return errors.New("connection refused")
}

// encode serializes doc for posting, unsigned changes and all.
func encode(t *testing.T, doc *etree.Document) string {
	t.Helper()
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return base64Encode(b)
}
