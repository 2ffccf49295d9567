package saml

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/stewardhq/steward/internal/sso/saml/samltest"
)

// testIdP is a real SAML identity provider serving in the test process
// (package samltest), with two users: alice, and bob who has no e-mail
// address.
type testIdP struct {
	*samltest.IdP
	keys KeyPair
}

const (
	alicePassword = "correct horse battery staple"
	aliceEmail    = "alice@example.com"
)

// newIdP starts an identity provider with the users, signing with the key
// pair "idp".
func newIdP(t *testing.T) *testIdP {
	t.Helper()
	return newIdPWithKey(t, "idp")
}

// newIdPWithKey starts an identity provider signing with the key pair
// named keyName.
func newIdPWithKey(t *testing.T, keyName string) *testIdP {
	t.Helper()
	keys := mustKeyPair(t, keyName)
	idp := &testIdP{IdP: samltest.Start(t, keys.CertificatePEM, keys.PrivateKeyPEM), keys: keys}
	idp.AddUser(t, samltest.User{Name: "alice", Password: alicePassword, Email: aliceEmail, GivenName: "Alice", Surname: "Liddell"})
	idp.AddUser(t, samltest.User{Name: "bob", Password: alicePassword})
	return idp
}

// register registers sp with the identity provider under name.
func (idp *testIdP) register(t *testing.T, name string, sp testSP, encrypt bool) {
	t.Helper()
	md, err := Metadata(sp.cfg)
	if err != nil {
		t.Fatal(err)
	}
	idp.Register(t, name, md, encrypt)
}

// keyPairs caches the key pairs tests generate, by name: RSA key
// generation is most of the tests' time.
var keyPairs sync.Map

// mustKeyPair returns the key pair named name, generating it the first
// time, or fails the test.
func mustKeyPair(t *testing.T, name string) KeyPair {
	t.Helper()
	if k, ok := keyPairs.Load(name); ok {
		return k.(KeyPair)
	}
	k, err := GenerateKeyPair(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := keyPairs.LoadOrStore(name, k)
	return k2.(KeyPair)
}

// newSP builds a service provider for idp at base (a URL that is never
// requested: the test carries the responses).
func newSP(t *testing.T, idp *testIdP, base string, change func(*Config)) testSP {
	t.Helper()
	cfg := Config{
		EntityID:    base + "/metadata",
		ACSURL:      base + "/acs",
		MetadataURL: base + "/metadata",
		KeyPair:     mustKeyPair(t, base),
		IDPMetadata: idp.Metadata(t),
	}
	if change != nil {
		change(&cfg)
	}
	sp, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return testSP{sp, cfg}
}

// testSP is a service provider with the configuration it was built from.
type testSP struct {
	*ServiceProvider
	cfg Config
}

// signIn follows req to the identity provider and signs in there as user.
func signIn(t *testing.T, client *http.Client, req Request, user, password string) (acs string, posted url.Values) {
	t.Helper()
	return samltest.SignIn(t, client, req.URL, req.Form, user, password)
}

// memoryGuard is a ReplayGuard in memory, recording what it was given.
type memoryGuard struct {
	mu   sync.Mutex
	used map[string]time.Time
}

func (g *memoryGuard) Use(_ context.Context, key string, until time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.used == nil {
		g.used = map[string]time.Time{}
	}
	if _, ok := g.used[key]; ok {
		return fmt.Errorf("assertion %s: %w", key, ErrReplayed)
	}
	g.used[key] = until
	return nil
}

// decode returns the XML of a posted SAMLResponse.
func decode(t *testing.T, samlResponse string) *etree.Document {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(samlResponse)
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	return doc
}

// resign removes the signatures of a response, lets change alter it, signs
// its assertion and then the response with keys (unless keys is nil, which
// leaves both unsigned), and returns it encoded for posting. The identity
// provider's own key stands for a compromised-looking but valid response;
// another key for a forgery.
func resign(t *testing.T, samlResponse string, keys *KeyPair, change func(*etree.Element)) string {
	t.Helper()
	doc := decode(t, samlResponse)
	response := doc.Root()
	assertion := response.SelectElement("Assertion")
	if assertion == nil {
		t.Fatal("the response has no plain Assertion")
	}
	for _, el := range []*etree.Element{response, assertion} {
		for _, sig := range el.SelectElements("Signature") {
			el.RemoveChild(sig)
		}
	}
	if change != nil {
		change(response)
	}
	if keys != nil {
		pair, err := keys.parse()
		if err != nil {
			t.Fatal(err)
		}
		ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(pair))
		ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
		for _, el := range []*etree.Element{assertion, response} {
			signedEl, err := ctx.SignEnveloped(el)
			if err != nil {
				t.Fatal(err)
			}
			// The signature goes right after the Issuer, where the schema
			// puts it.
			sig := signedEl.ChildElements()[len(signedEl.ChildElements())-1]
			el.InsertChildAt(el.SelectElement("Issuer").Index()+1, sig.Copy())
		}
	}
	var buf bytes.Buffer
	if _, err := doc.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// base64Encode encodes a response for posting.
func base64Encode(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
