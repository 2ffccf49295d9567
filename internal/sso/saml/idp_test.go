package saml

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"
)

// testIdP is a real SAML identity provider (crewjam's samlidp) serving in
// the test process, with two users: alice, and bob who has no e-mail
// address.
type testIdP struct {
	server *samlidp.Server
	http   *httptest.Server
	keys   KeyPair
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
	idp := &testIdP{}
	var handler http.Handler
	idp.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(idp.http.Close)
	idp.keys = mustKeyPair(t, keyName)
	pair, err := idp.keys.parse()
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(idp.http.URL)
	idp.server, err = samlidp.New(samlidp.Options{
		URL:         *u,
		Key:         pair.PrivateKey,
		Certificate: pair.Leaf,
		Store:       &samlidp.MemoryStore{},
		Logger:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = idp.server
	idp.put(t, "/users/alice", fmt.Sprintf(`{"password": %q, "email": %q, "given_name": "Alice", "surname": "Liddell"}`, alicePassword, aliceEmail))
	idp.put(t, "/users/bob", fmt.Sprintf(`{"password": %q}`, alicePassword))
	return idp
}

// put sends body to the identity provider's administrative API.
func (idp *testIdP) put(t *testing.T, path, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, idp.http.URL+path, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT %s: %s: %s", path, resp.Status, b)
	}
}

// metadata returns the identity provider's metadata, as served.
func (idp *testIdP) metadata(t *testing.T) []byte {
	t.Helper()
	resp, err := http.Get(idp.http.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metadata: %v %s", err, resp.Status)
	}
	return b
}

// register registers sp with the identity provider under name. If encrypt
// is false, the metadata registered has no encryption key, so that the
// identity provider sends the assertion in the clear, as many do, and tests
// can alter it.
func (idp *testIdP) register(t *testing.T, name string, sp testSP, encrypt bool) {
	t.Helper()
	md, err := Metadata(sp.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !encrypt {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(md); err != nil {
			t.Fatal(err)
		}
		for _, kd := range doc.FindElements("//KeyDescriptor[@use='encryption']") {
			kd.Parent().RemoveChild(kd)
		}
		if md, err = doc.WriteToBytes(); err != nil {
			t.Fatal(err)
		}
	}
	idp.put(t, "/services/"+name, string(md))
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
		IDPMetadata: idp.metadata(t),
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

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	formInput  = regexp.MustCompile(`<input type="hidden" name="([A-Za-z]+)" value="([^"]*)"`)
)

// form reads the action and hidden inputs of the one form on an identity
// provider page.
func form(t *testing.T, page []byte) (string, url.Values) {
	t.Helper()
	m := formAction.FindSubmatch(page)
	if m == nil {
		t.Fatalf("no form on the page:\n%s", page)
	}
	values := url.Values{}
	for _, in := range formInput.FindAllSubmatch(page, -1) {
		values.Set(string(in[1]), html.UnescapeString(string(in[2])))
	}
	return html.UnescapeString(string(m[1])), values
}

// browser is a client with a cookie jar, as a browser would be.
func browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// signIn drives the identity provider's login form as user for the
// request req, and returns what the identity provider posts back to the
// ACS: the SAMLResponse and RelayState fields, and the form's action.
func signIn(t *testing.T, client *http.Client, req Request, user, password string) (acs string, posted url.Values) {
	t.Helper()
	var resp *http.Response
	var err error
	if req.Method == http.MethodGet {
		resp, err = client.Get(req.URL)
	} else {
		resp, err = client.PostForm(req.URL, req.Form)
	}
	if err != nil {
		t.Fatal(err)
	}
	page := readBody(t, resp)
	action, fields := form(t, page)
	if fields.Get("SAMLRequest") == "" {
		t.Fatalf("the login page carries no SAMLRequest:\n%s", page)
	}
	fields.Set("user", user)
	fields.Set("password", password)
	resp, err = client.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	page = readBody(t, resp)
	acs, posted = form(t, page)
	if posted.Get("SAMLResponse") == "" {
		t.Fatalf("the identity provider posts no SAMLResponse:\n%s", page)
	}
	return acs, posted
}

// readBody reads a 200 response's body.
func readBody(t *testing.T, resp *http.Response) []byte {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s\n%s", resp.Request.Method, resp.Request.URL, resp.Status, b)
	}
	return b
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
