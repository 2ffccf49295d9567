// Package samltest runs a real SAML 2.0 identity provider (crewjam's
// samlidp, with its own login form) inside a test, and drives its login
// form as a browser would, so that tests of Steward's service provider go
// through the protocol as it is, not through a fake of it. Only tests
// import it.
package samltest

import (
	"crypto/tls"
	"encoding/json"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"
)

// IdP is an identity provider serving at URL, signing with the key pair it
// was started with.
type IdP struct {
	URL    string
	Server *samlidp.Server
}

// Start starts an identity provider that signs with the PEM certificate
// and private key given; it stops when the test ends.
func Start(t testing.TB, certificatePEM, privateKeyPEM string) *IdP {
	t.Helper()
	return StartOn(t, "", certificatePEM, privateKeyPEM)
}

// StartOn is Start with the identity provider named by host (for example
// localhost) instead of 127.0.0.1, so that a browser sees it as another
// site than a service provider on 127.0.0.1, as it would be in production.
func StartOn(t testing.TB, host, certificatePEM, privateKeyPEM string) *IdP {
	t.Helper()
	pair, err := tls.X509KeyPair([]byte(certificatePEM), []byte(privateKeyPEM))
	if err != nil {
		t.Fatal(err)
	}
	idp := &IdP{}
	var handler http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	if host != "" {
		u.Host = host + ":" + u.Port()
	}
	idp.URL = u.String()
	idp.Server, err = samlidp.New(samlidp.Options{
		URL:         *u,
		Key:         pair.PrivateKey,
		Certificate: pair.Leaf,
		Store:       &samlidp.MemoryStore{},
		Logger:      log.New(io.Discard, "", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	handler = idp.Server
	return idp
}

// User is a person the identity provider knows. An empty Email makes the
// identity provider send a transient NameID and no e-mail attribute.
type User struct {
	Name, Password, Email, GivenName, Surname string
}

// AddUser adds (or replaces) a user, through the administrative API. The
// password is sent hashed at bcrypt's lowest cost, as a plain one would be
// hashed at its default cost, which takes most of a second a sign-in under
// the race detector.
func (idp *IdP) AddUser(t testing.TB, u User) {
	t.Helper()
	hash, err := bcrypt.GenerateFromPassword([]byte(u.Password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(map[string]any{"hashed_password": hash, "email": u.Email, "given_name": u.GivenName, "surname": u.Surname})
	if err != nil {
		t.Fatal(err)
	}
	idp.Put(t, "/users/"+u.Name, string(body))
}

// Put sends body to the identity provider's administrative API at path.
func (idp *IdP) Put(t testing.TB, path, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, idp.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
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

// Metadata returns the identity provider's metadata, as served.
func (idp *IdP) Metadata(t testing.TB) []byte {
	t.Helper()
	resp, err := http.Get(idp.URL + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	return ReadBody(t, resp)
}

// Register registers a service provider by its metadata under name. If
// encrypt is false, the metadata's encryption key is left out, so that the
// identity provider sends the assertion in the clear, as many do, and
// tests can read and alter it.
func (idp *IdP) Register(t testing.TB, name string, spMetadata []byte, encrypt bool) {
	t.Helper()
	if !encrypt {
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(spMetadata); err != nil {
			t.Fatal(err)
		}
		for _, kd := range doc.FindElements("//KeyDescriptor[@use='encryption']") {
			kd.Parent().RemoveChild(kd)
		}
		var err error
		if spMetadata, err = doc.WriteToBytes(); err != nil {
			t.Fatal(err)
		}
	}
	idp.Put(t, "/services/"+name, string(spMetadata))
}

var (
	formAction = regexp.MustCompile(`<form method="post" action="([^"]*)"`)
	formInput  = regexp.MustCompile(`<input type="hidden" name="([A-Za-z]+)" value="([^"]*)"`)
)

// Form reads the action and the hidden inputs of the form on a page of the
// identity provider (its login form, or the form that posts its response).
func Form(t testing.TB, page []byte) (string, url.Values) {
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

// Browser returns a client with a cookie jar, as a browser has.
func Browser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// SignIn follows an AuthnRequest to the identity provider (a GET of
// redirect, or, if form is not nil, a POST of form to it), fills in its
// login form as user, and returns what the identity provider would have
// the browser post to the ACS: the form's action and its fields
// (SAMLResponse and RelayState).
func SignIn(t testing.TB, client *http.Client, redirect string, form url.Values, user, password string) (acs string, posted url.Values) {
	t.Helper()
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = client.Get(redirect)
	} else {
		resp, err = client.PostForm(redirect, form)
	}
	if err != nil {
		t.Fatal(err)
	}
	page := ReadBody(t, resp)
	action, fields := Form(t, page)
	if fields.Get("SAMLRequest") == "" {
		t.Fatalf("the login page carries no SAMLRequest:\n%s", page)
	}
	fields.Set("user", user)
	fields.Set("password", password)
	resp, err = client.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	page = ReadBody(t, resp)
	acs, posted = Form(t, page)
	if posted.Get("SAMLResponse") == "" {
		t.Fatalf("the identity provider posts no SAMLResponse:\n%s", page)
	}
	return acs, posted
}

// ReadBody reads the body of a 200 response, or fails the test.
func ReadBody(t testing.TB, resp *http.Response) []byte {
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
