package web_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	opstorage "github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"
	"golang.org/x/text/language"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// The OpenID Connect provider of these tests is zitadel's: its OP
// (pkg/op) with the example's in-memory storage and login page, served
// over TLS in the test process. Steward talks to it through its own
// production code (go-oidc, x/oauth2); the only thing between them is
// tokenRewriter, which can swap the ID token of a token response for the
// refusals a real provider does not produce.

const (
	opClientID = "steward"
	opSecret   = "op-client-secret"
	// opOtherClient is a second client of the provider, whose ID tokens
	// are for another audience.
	opOtherClient = "other-app"
	opPassword    = "verysecure"
)

// opUsers is the provider's user store.
type opUsers map[string]*opstorage.User

func (u opUsers) GetUserByID(id string) *opstorage.User { return u[id] }
func (u opUsers) GetUserByUsername(name string) *opstorage.User {
	for _, user := range u {
		if user.Username == name {
			return user
		}
	}
	return nil
}
func (u opUsers) ExampleClientID() string { return opstorage.ServiceUserID }

// testOP is the OpenID Connect provider, and what Steward's requests to
// it go through.
type testOP struct {
	t      *testing.T
	srv    *httptest.Server
	issuer string
	users  opUsers
	rw     *tokenRewriter
	// clients are the provider's clients, which its storage reads.
	clients map[string]*opstorage.Client
	storage *opstorage.Storage
}

// tokenRewriter is Steward's transport to the provider: it keeps the last
// ID token the token endpoint issued and, when told, answers the next
// token response with another ID token.
type tokenRewriter struct {
	base    http.RoundTripper
	mu      sync.Mutex
	last    string
	replace func(idToken string) string
}

func (rw *tokenRewriter) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rw.base.RoundTrip(req)
	if err != nil || req.URL.Path != "/oauth/token" || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var tok map[string]any
	if err := json.Unmarshal(body, &tok); err != nil {
		return nil, err
	}
	rw.mu.Lock()
	if id, ok := tok["id_token"].(string); ok {
		rw.last = id
		if rw.replace != nil {
			tok["id_token"] = rw.replace(id)
			rw.replace = nil
		}
	}
	rw.mu.Unlock()
	body, _ = json.Marshal(tok)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

// swapNext makes the next token response carry what fn makes of its ID
// token.
func (rw *tokenRewriter) swapNext(fn func(string) string) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	rw.replace = fn
}

func (rw *tokenRewriter) lastIDToken() string {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	return rw.last
}

// newTestOP starts the provider with the users, and Steward's client
// whose redirect URI is redirect.
func newTestOP(t *testing.T, redirect string, users ...*opstorage.User) *testOP {
	t.Helper()
	op := &testOP{t: t, users: opUsers{}}
	for _, u := range users {
		u.Password, u.PreferredLanguage = opPassword, language.English
		op.users[u.ID] = u
	}
	op.srv = httptest.NewUnstartedServer(nil)
	op.srv.StartTLS()
	t.Cleanup(op.srv.Close)
	op.issuer = op.srv.URL
	op.clients = map[string]*opstorage.Client{
		opClientID:    opstorage.WebClient(opClientID, opSecret, redirect),
		opOtherClient: opstorage.WebClient(opOtherClient, opSecret, "https://other.example/callback"),
	}
	op.storage = opstorage.NewStorageWithClients(op.users, op.clients)
	// The provider logs each request: into the test's output, shown
	// when it fails.
	op.srv.Config.Handler = exampleop.SetupServer(op.issuer, op.storage, slog.New(slog.NewTextHandler(t.Output(), nil)), false)
	op.rw = &tokenRewriter{base: op.srv.Client().Transport}
	return op
}

// service is Steward's single sign-on, talking to the provider through
// the rewriter, with the clock now.
func (op *testOP) service(db *store.DB, now func() time.Time) func(base string) *sso.Service {
	return func(base string) *sso.Service {
		return sso.New(sso.Config{DB: db, PublicURL: base, Client: &http.Client{Transport: op.rw, Timeout: 10 * time.Second},
			Getenv: func(k string) string {
				if strings.HasPrefix(k, "STEWARD_SSO_") {
					return opSecret
				}
				return ""
			}, Now: now, Log: slog.New(slog.NewTextHandler(op.t.Output(), nil))})
	}
}

// login signs username in at the provider's login page, from authorize
// (the URL Steward sent the browser to), and returns where the provider
// sends the browser back.
func (op *testOP) login(authorize, username string) string {
	op.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := op.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	follow := func(resp *http.Response, err error) string {
		op.t.Helper()
		if err != nil {
			op.t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusFound && resp.StatusCode != http.StatusSeeOther {
			op.t.Fatalf("provider answered %d: %s", resp.StatusCode, body)
		}
		loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
		if err != nil {
			op.t.Fatal(err)
		}
		return loc.String()
	}
	loginPage := follow(c.Get(authorize))
	u, _ := url.Parse(loginPage)
	id := u.Query().Get("authRequestID")
	if id == "" {
		op.t.Fatalf("the provider did not send to its login page: %s", loginPage)
	}
	callback := follow(c.PostForm(op.issuer+"/login/username", url.Values{"id": {id}, "username": {username}, "password": {opPassword}}))
	return follow(c.Get(callback))
}

// idTokenFor returns an ID token the provider issues to its other client
// for username: a real token, for another audience.
func (op *testOP) idTokenFor(username string) string {
	op.t.Helper()
	conf := &oauth2.Config{ClientID: opOtherClient, ClientSecret: opSecret, RedirectURL: "https://other.example/callback",
		Endpoint: oauth2.Endpoint{AuthURL: op.issuer + "/auth", TokenURL: op.issuer + "/oauth/token"}, Scopes: []string{"openid", "email"}}
	back := op.login(conf.AuthCodeURL("s", oauth2.SetAuthURLParam("nonce", "n")), username)
	u, _ := url.Parse(back)
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, op.srv.Client())
	tok, err := conf.Exchange(ctx, u.Query().Get("code"))
	if err != nil {
		op.t.Fatal(err)
	}
	return tok.Extra("id_token").(string)
}

// ssoFixture is Steward with an Organization whose connection is the
// provider, and the people of the tests.
type ssoFixture struct {
	*env
	op   *testOP
	conn sso.Connection
	// clock is what ID tokens' expiry is checked against: the time the
	// fixture was made, moved by the test.
	clock  *clock
	member string // a member of the Organization with a password
}

func newSSOFixture(t *testing.T, db *store.DB) *ssoFixture {
	t.Helper()
	var f ssoFixture
	f.clock = &clock{t: time.Now()}
	// The redirect URI is Steward's, whose address is known only once its
	// server listens.
	op := newTestOP(t, "https://steward.invalid/callback",
		&opstorage.User{ID: "sub-admin", Username: "admin", Email: "admin@example.com", EmailVerified: true, FirstName: "Ada", LastName: "Admin"},
		&opstorage.User{ID: "sub-member", Username: "member", Email: "member@example.com", EmailVerified: true},
		&opstorage.User{ID: "sub-gone", Username: "gone", Email: "gone@example.com", EmailVerified: true},
		&opstorage.User{ID: "sub-stranger", Username: "stranger", Email: "stranger@elsewhere.example", EmailVerified: true},
		&opstorage.User{ID: "sub-new", Username: "newcomer", Email: "newcomer@jit.example", EmailVerified: true, FirstName: "New", LastName: "Comer"},
		&opstorage.User{ID: "sub-unverified", Username: "unverified", Email: "member@example.com", EmailVerified: false},
	)
	f.op = op
	f.env = newEnvWith(t, db, web.Config{}, op.service(db, f.clock.now))
	// Now that Steward listens, register its redirect URI at the provider.
	op.clients[opClientID] = opstorage.WebClient(opClientID, opSecret, f.http.URL+sso.CallbackPath)
	ctx := context.Background()
	org := f.boot.Organization
	f.member = f.addMember("member@example.com", "member password 123")
	gone := f.addMember("gone@example.com", "")
	err := db.Transact(ctx, func(tx *store.Tx) error {
		return directory.SetMemberActive(ctx, tx, steward.SystemActor("test"), org, gone, false)
	})
	if err != nil {
		t.Fatal(err)
	}
	f.conn, err = f.sso.Put(ctx, steward.SystemActor("test"), sso.OrgScope(org.ID), sso.Input{Protocol: sso.ProtocolOIDC,
		Issuer: op.issuer, ClientID: opClientID, ClientSecretEnv: sso.SecretName(sso.OrgScope(org.ID)), JITDomains: []string{"jit.example"}})
	if err != nil {
		t.Fatalf("put connection: %v", err)
	}
	return &f
}

// followRE finds the start link that the answer to "Sign in with SSO"
// follows at once.
var followRE = regexp.MustCompile(`<a href="(/web/sso/[^"]+/start[^"]*)" data-follow>`)

// startSSO posts "Sign in with SSO" for email and returns the provider's
// URL that Steward sends the browser to.
func (f *ssoFixture) startSSO(b *browser, email string) string {
	f.t.Helper()
	r := b.post("/web/sso", url.Values{"csrf": {b.csrf("/web/signin")}, "email": {email}, "next": {"/web/"}})
	m := followRE.FindStringSubmatch(r.body)
	if r.status != http.StatusOK || m == nil {
		f.t.Fatalf("sign in with SSO as %s: %d %s, want the link to follow", email, r.status, r.body)
	}
	r = b.get(html.UnescapeString(m[1]))
	if r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, f.op.issuer+"/auth?") {
		f.t.Fatalf("the start link of %s: %d %q %s", email, r.status, r.location, r.body)
	}
	return r.location
}

// callback brings the provider's answer (back) to Steward in browser b.
func (f *ssoFixture) callback(b *browser, back string) reply {
	f.t.Helper()
	if !strings.HasPrefix(back, f.http.URL+sso.CallbackPath+"?") {
		f.t.Fatalf("the provider sent the browser to %s, not to Steward's callback", back)
	}
	return b.get(strings.TrimPrefix(back, f.http.URL))
}

// signInAs signs in with SSO: email on Steward's sign-in page, username at
// the provider's login page; the reply is Steward's to the callback.
func (f *ssoFixture) signInAs(b *browser, email, username string) reply {
	f.t.Helper()
	return f.callback(b, f.op.login(f.startSSO(b, email), username))
}

// auditEvents returns the Organization's audit entries of event.
func (f *ssoFixture) auditEvents(event string) []audit.Entry {
	f.t.Helper()
	ctx := context.Background()
	var out []audit.Entry
	err := f.db.View(ctx, func(tx *store.Tx) error {
		all, err := audit.List(ctx, tx, audit.Filter{OrganizationID: f.boot.Organization.ID, Ascending: true, Limit: audit.MaxLimit})
		for _, e := range all {
			if e.EventType == event {
				out = append(out, e)
			}
		}
		return err
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// refusedWith checks that r is the sign-in page saying want.
func refusedWith(t *testing.T, r reply, want string) {
	t.Helper()
	if r.status != http.StatusUnauthorized || !strings.Contains(r.body, want) || !strings.Contains(r.body, `action="/web/sso"`) {
		t.Fatalf("got %d %q, want 401 on the sign-in page saying %q: %s", r.status, r.location, want, r.body)
	}
}

func TestSSOSignIn(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newSSOFixture(t, db)
		ctx := context.Background()
		orgID := f.boot.Organization.ID

		t.Run("a member signs in through the provider's login page", func(t *testing.T) {
			b := f.browser()
			if r := f.signInAs(b, "admin@example.com", "admin"); r.status != http.StatusSeeOther || r.location != "/web/" {
				t.Fatalf("callback: %d %q %s", r.status, r.location, r.body)
			}
			if r := b.get(f.org() + "/members"); r.status != http.StatusOK {
				t.Fatalf("members page after SSO: %d %s", r.status, r.body)
			}
			var method, scope, subject string
			err := db.View(ctx, func(tx *store.Tx) error {
				return tx.QueryRow(ctx, `SELECT method, sso_scope, sso_subject FROM web_sessions WHERE user_id = ?`, f.boot.Admin.ID).Scan(&method, &scope, &subject)
			})
			if err != nil || method != "sso" || scope != "org:"+orgID || subject != "sub-admin" {
				t.Fatalf("session: %q %q %q %v, want sso org:%s sub-admin", method, scope, subject, err, orgID)
			}
			logins := f.auditEvents(audit.EventUserLoginSSO)
			if len(logins) != 1 || logins[0].Actor.UserID != f.boot.Admin.ID || logins[0].TargetMetadata["email"] != "admin@example.com" {
				t.Fatalf("user.login.sso entries: %+v", logins)
			}
		})

		t.Run("a provider's sign-in opens its own Organization only", func(t *testing.T) {
			// The admin is a member of a second Organization too, which
			// the first one's provider has no say over.
			var other steward.Organization
			err := db.Transact(ctx, func(tx *store.Tx) error {
				o, ows, err := directory.CreateOrganization(ctx, tx, steward.SystemActor("test"), f.boot.EnterpriseAccount.ID, "Aardvark Elsewhere")
				if err != nil {
					return err
				}
				other = o
				_, err = directory.AddOrganizationAdmin(ctx, tx, steward.SystemActor("test"), o, ows, "admin@example.com")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			b := f.browser()
			if r := f.signInAs(b, "admin@example.com", "admin"); r.status != http.StatusSeeOther {
				t.Fatalf("callback: %d %s", r.status, r.body)
			}
			if r := b.get("/web/"); r.status != http.StatusSeeOther || r.location != f.org()+"/" {
				t.Fatalf("home: %d %q, want the signed-in Organization's overview (not the first by name)", r.status, r.location)
			}
			if r := b.get("/web/o/" + other.ID + "/members"); r.status != http.StatusForbidden || !strings.Contains(r.body, "single sign-on of another Organization") {
				t.Fatalf("the other Organization's page: %d %s", r.status, r.body)
			}
			if r := b.get("/web/organizations"); strings.Contains(r.body, "Aardvark Elsewhere") {
				t.Fatalf("the other Organization is listed: %s", r.body)
			}
			pw := f.browser()
			pw.mustSignIn()
			if r := pw.get("/web/o/" + other.ID + "/members"); r.status != http.StatusOK {
				t.Fatalf("the other Organization after a password sign-in: %d %s", r.status, r.body)
			}
		})

		t.Run("a callback used twice is refused", func(t *testing.T) {
			b := f.browser()
			back := f.op.login(f.startSSO(b, "admin@example.com"), "admin")
			if r := f.callback(b, back); r.status != http.StatusSeeOther {
				t.Fatalf("first callback: %d %s", r.status, r.body)
			}
			// The same browser, its state cookie put back, brings the same
			// answer again.
			u, _ := url.Parse(back)
			b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "steward_sso", Value: u.Query().Get("state"), Path: "/web/"}})
			refusedWith(t, f.callback(b, back), "expired or was already used")
		})

		t.Run("a callback in another browser than the one that started is refused", func(t *testing.T) {
			back := f.op.login(f.startSSO(f.browser(), "admin@example.com"), "admin")
			refusedWith(t, f.callback(f.browser(), back), "not started in this browser")
		})

		t.Run("someone who is no member is refused and audited", func(t *testing.T) {
			b := f.browser()
			back := f.op.login(f.startSSO(b, "admin@example.com"), "stranger")
			refusedWith(t, f.callback(b, back), "you are not a member here")
			failed := f.auditEvents(audit.EventUserLoginSSOFailed)
			if len(failed) == 0 || !strings.Contains(failed[len(failed)-1].EventMetadata["reason"], "not a member") ||
				failed[len(failed)-1].TargetMetadata["email"] != "stranger@elsewhere.example" {
				t.Fatalf("user.login.sso_failed entries: %+v", failed)
			}
		})

		t.Run("a member deactivated by SCIM is refused", func(t *testing.T) {
			b := f.browser()
			refusedWith(t, f.callback(b, f.op.login(f.startSSO(b, "gone@example.com"), "gone")), "deactivated")
		})

		t.Run("an address the provider does not say is verified is refused", func(t *testing.T) {
			b := f.browser()
			refusedWith(t, f.callback(b, f.op.login(f.startSSO(b, "member@example.com"), "unverified")), "verified")
		})

		t.Run("a newcomer of a JIT domain becomes a member", func(t *testing.T) {
			b := f.browser()
			if r := f.signInAs(b, "newcomer@jit.example", "newcomer"); r.status != http.StatusSeeOther {
				t.Fatalf("JIT sign-in: %d %s", r.status, r.body)
			}
			var roles []string
			err := db.View(ctx, func(tx *store.Tx) error {
				page, err := directory.ListMembers(ctx, tx, orgID, "newcomer@jit.example", 1, 10)
				if err == nil && len(page.Members) == 1 {
					roles = page.Members[0].RoleIDs
					if page.Members[0].User.FirstName != "New" {
						t.Errorf("first name %q, want the provider's", page.Members[0].User.FirstName)
					}
				}
				return err
			})
			if err != nil || len(roles) != 1 || roles[0] != steward.RoleIDOrganizationMember {
				t.Fatalf("newcomer's roles %v (%v), want member", roles, err)
			}
			created := f.auditEvents(audit.EventUserCreate)
			last := created[len(created)-1]
			if last.TargetMetadata["email"] != "newcomer@jit.example" || !strings.Contains(last.Actor.Metadata["name"], "just-in-time") {
				t.Fatalf("user.create of the newcomer: %+v", last)
			}
		})

		t.Run("an expired ID token is refused", func(t *testing.T) {
			b := f.browser()
			back := f.op.login(f.startSSO(b, "admin@example.com"), "admin")
			f.clock.advance(48 * time.Hour)
			defer f.clock.advance(-48 * time.Hour)
			refusedWith(t, f.callback(b, back), "expired")
		})

		t.Run("an ID token with a bad signature is refused", func(t *testing.T) {
			b := f.browser()
			back := f.op.login(f.startSSO(b, "admin@example.com"), "admin")
			f.op.rw.swapNext(func(tok string) string {
				parts := strings.Split(tok, ".")
				// Another base64url letter in the middle: a signature of the
				// right length whose bytes differ.
				sig := []byte(parts[2])
				if sig[10] == 'A' {
					sig[10] = 'B'
				} else {
					sig[10] = 'A'
				}
				return parts[0] + "." + parts[1] + "." + string(sig)
			})
			refusedWith(t, f.callback(b, back), "signature")
		})

		t.Run("an ID token for another client is refused", func(t *testing.T) {
			other := f.op.idTokenFor("admin")
			b := f.browser()
			back := f.op.login(f.startSSO(b, "admin@example.com"), "admin")
			f.op.rw.swapNext(func(string) string { return other })
			refusedWith(t, f.callback(b, back), "audience")
		})

		t.Run("an ID token used before is refused", func(t *testing.T) {
			b := f.browser()
			if r := f.signInAs(b, "admin@example.com", "admin"); r.status != http.StatusSeeOther {
				t.Fatalf("sign-in: %d %s", r.status, r.body)
			}
			used := f.op.rw.lastIDToken()
			b = f.browser()
			back := f.op.login(f.startSSO(b, "admin@example.com"), "admin")
			f.op.rw.swapNext(func(string) string { return used })
			refusedWith(t, f.callback(b, back), "nonce")
		})

		t.Run("a member is matched by the SCIM externalId when the connection names its claim", func(t *testing.T) {
			// The provider's user "unverified" has no verified address, but its
			// preferred_username is the externalId SCIM gave the member.
			err := db.Transact(ctx, func(tx *store.Tx) error {
				_, err := tx.Exec(ctx, `INSERT INTO scim_users (organization_id, user_id, user_name, user_name_lower, external_id, email, active, created_at, updated_at)
					VALUES (?, ?, 'member', 'member', 'unverified', 'member@example.com', ?, 0, 0)`, orgID, f.member, true)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.sso.Put(ctx, steward.SystemActor("test"), sso.OrgScope(orgID), sso.Input{Protocol: sso.ProtocolOIDC,
				Issuer: f.op.issuer, ClientID: opClientID, ClientSecretEnv: sso.SecretName(sso.OrgScope(orgID)), ExternalIDClaim: "preferred_username"})
			if err != nil {
				t.Fatal(err)
			}
			b := f.browser()
			if r := f.signInAs(b, "member@example.com", "unverified"); r.status != http.StatusSeeOther {
				t.Fatalf("sign-in matched by externalId: %d %s", r.status, r.body)
			}
			logins := f.auditEvents(audit.EventUserLoginSSO)
			if last := logins[len(logins)-1]; last.Actor.UserID != f.member {
				t.Fatalf("signed in as %s, want the member %s", last.Actor.UserID, f.member)
			}
		})

		t.Run("signing out ends the provider's session too", func(t *testing.T) {
			b := f.browser()
			if r := f.signInAs(b, "admin@example.com", "admin"); r.status != http.StatusSeeOther {
				t.Fatalf("sign-in: %d %s", r.status, r.body)
			}
			r := b.post("/web/signout", url.Values{"csrf": {b.csrf(f.org() + "/members")}})
			u, err := url.Parse(r.location)
			if r.status != http.StatusSeeOther || err != nil || !strings.HasPrefix(r.location, f.op.issuer+"/") {
				t.Fatalf("sign out: %d %q, want the provider's end_session_endpoint", r.status, r.location)
			}
			q := u.Query()
			if q.Get("client_id") != opClientID || q.Get("id_token_hint") != f.op.rw.lastIDToken() || q.Get("post_logout_redirect_uri") != f.http.URL+"/web/signin?done=signed_out" {
				t.Fatalf("logout parameters: %v", q)
			}
			if r := b.get("/web/"); r.status != http.StatusSeeOther {
				t.Fatalf("after sign out: %d, want sent to sign in", r.status)
			}
		})
	})
}

func TestSSOReplay(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		g := sso.NewReplay(db)
		if err := g.Use(ctx, "assertion-1", time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("first use: %v", err)
		}
		if err := g.Use(ctx, "assertion-1", time.Now().Add(time.Hour)); err != sso.ErrReplayed {
			t.Fatalf("second use: %v, want ErrReplayed", err)
		}
		if err := g.Use(ctx, "assertion-2", time.Now().Add(-time.Second)); err != nil {
			t.Fatalf("first use of an expired key: %v", err)
		}
		if err := g.Use(ctx, "assertion-2", time.Now().Add(time.Hour)); err != nil {
			t.Fatalf("a key whose use expired: %v, want usable again", err)
		}
	})
}

func TestSSOEnforce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newSSOFixture(t, db)
		ctx := context.Background()
		scope := sso.OrgScope(f.boot.Organization.ID)
		adminActor := steward.Actor{Type: steward.ActorHuman, UserID: f.boot.Admin.ID}
		enforce := sso.Input{Protocol: sso.ProtocolOIDC, Issuer: f.op.issuer, ClientID: opClientID, ClientSecretEnv: sso.SecretName(scope),
			Enforce: true, BreakGlass: []string{f.boot.Admin.ID}}

		// A second admin signs in with a password before enforcement.
		f.addMember("bob@example.com", "bob password 1234", steward.RoleOrganizationAdmin)
		bob := f.browser()
		if r := bob.signIn("bob@example.com", "bob password 1234"); r.status != http.StatusSeeOther {
			t.Fatalf("bob's password sign-in before enforcement: %d %s", r.status, r.body)
		}

		if _, err := f.sso.Put(ctx, adminActor, scope, enforce); !steward.IsKind(err, steward.KindConflict) || !strings.Contains(err.Error(), "you have signed in") {
			t.Fatalf("enforce before the admin's own SSO sign-in: %v, want a conflict saying to sign in first", err)
		}
		sso1 := f.browser()
		if r := f.signInAs(sso1, "admin@example.com", "admin"); r.status != http.StatusSeeOther {
			t.Fatalf("admin's SSO sign-in: %d %s", r.status, r.body)
		}
		if _, err := f.sso.Put(ctx, adminActor, scope, enforce); err != nil {
			t.Fatalf("enforce after the admin's SSO sign-in: %v", err)
		}

		t.Run("a member's password is refused", func(t *testing.T) {
			r := f.browser().signIn("member@example.com", "member password 123")
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "single sign-on") {
				t.Fatalf("member's password sign-in: %d %s, want 403 saying to use single sign-on", r.status, r.body)
			}
		})
		t.Run("the break-glass admin's password works", func(t *testing.T) {
			b := f.browser()
			b.mustSignIn()
			if r := b.get(f.org() + "/members"); r.status != http.StatusOK {
				t.Fatalf("break-glass password session on the panel: %d %s", r.status, r.body)
			}
		})
		t.Run("a member's password reset is refused", func(t *testing.T) {
			b := f.browser()
			r := b.post("/web/password/forgot", url.Values{"csrf": {b.csrf("/web/password/forgot")}, "email": {"member@example.com"}})
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "single sign-on") {
				t.Fatalf("member's reset request: %d %s, want 403 saying to use single sign-on", r.status, r.body)
			}
			var link string
			err := db.Transact(ctx, func(tx *store.Tx) error {
				var err error
				link, err = auth.ResetLink(ctx, tx, f.member, auth.ResetSettings{TTL: time.Hour, URL: "/web/password/reset"})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			token := strings.TrimPrefix(link, "/web/password/reset?token=")
			token, _ = url.QueryUnescape(token)
			r = b.post("/web/password/reset", url.Values{"csrf": {b.csrf("/web/password/forgot")}, "token": {token},
				"password": {"a new password 123"}, "password_confirm": {"a new password 123"}})
			if r.status != http.StatusForbidden || !strings.Contains(r.body, "single sign-on") {
				t.Fatalf("member's reset through a link sent before: %d %s, want 403", r.status, r.body)
			}
		})
		t.Run("a session not started by the Organization's SSO is sent to it", func(t *testing.T) {
			r := bob.get(f.org() + "/members")
			want := "/web/sso/" + f.conn.ID + "/start?next=" + url.QueryEscape("/web/o/"+f.boot.Organization.ID+"/members")
			if r.status != http.StatusSeeOther || r.location != want {
				t.Fatalf("bob's password session: %d %q, want sent to %q", r.status, r.location, want)
			}
			form := bob.post(f.org()+"/invitations", url.Values{"csrf": {"x"}, "email": {"x@example.com"}})
			if form.status == http.StatusSeeOther {
				t.Fatalf("a form of a password session was accepted: %d", form.status)
			}
		})
		t.Run("the SSO session opens the panel", func(t *testing.T) {
			if r := sso1.get(f.org() + "/members"); r.status != http.StatusOK {
				t.Fatalf("SSO session: %d %s", r.status, r.body)
			}
		})
	})
}

// apiCall sends an Admin or Backoffice API request with key.
func (e *env) apiCall(method, path, key, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.http.URL+path, strings.NewReader(body))
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	// Every answer must be the one Steward's OpenAPI document describes.
	apitest.Load(e.t).Check(e.t, req, resp, b)
	return resp.StatusCode, string(b)
}

func TestSSOAdminAPI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newSSOFixture(t, db)
		key, boKey := f.boot.AdminKeySecret, f.boot.BackofficeSecret

		t.Run("invalid bodies name each field", func(t *testing.T) {
			status, body := f.apiCall("PUT", "/v1/admin/sso", key, `{"protocol":"oidc","oidc":{"issuer":"http://idp.example","client_id":"",
				"client_secret_env":"X","client_secret_file":"/run/secret","scopes":["ok","bad scope"]},"jit":{"domains":["not a domain"],"default_role":"nope"},
				"break_glass_user_ids":["someone"]}`)
			if status != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422: %s", status, body)
			}
			for _, want := range []string{"issuer must be an https:// URL", "client_id is required", "exactly one of client_secret_env",
				`\"bad scope\" is not an OAuth scope`, `\"not a domain\" is not a domain name`, `\"nope\" is not a role`, `\"someone\" is not the id of a member`} {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q: %s", want, body)
				}
			}
			status, body = f.apiCall("PUT", "/v1/admin/sso", key, `{"protocol":"oidc","oidc":{"issuer":"https://idp.example","client_id":"c",
				"client_secret_env":"STEWARD_WEBHOOK_SECRET"}}`)
			if status != http.StatusUnprocessableEntity || !strings.Contains(body, "that name must be "+sso.SecretName(sso.OrgScope(f.boot.Organization.ID))) {
				t.Fatalf("a server variable as the client secret: %d %s", status, body)
			}
			status, body = f.apiCall("PUT", "/v1/admin/sso", key, `{"protocol":"oidc","oidc":{"issuer":"https://idp.example","client_id":"c",
				"client_secret_file":"/etc/shadow"}}`)
			if status != http.StatusUnprocessableEntity || !strings.Contains(body, "whose file is named "+sso.SecretName(sso.OrgScope(f.boot.Organization.ID))) {
				t.Fatalf("a server file as the client secret: %d %s", status, body)
			}
			status, body = f.apiCall("PUT", "/v1/admin/sso", key, `{"protocol":"ldap"}`)
			if status != http.StatusUnprocessableEntity || !strings.Contains(body, `unknown protocol \"ldap\"`) {
				t.Fatalf("unknown protocol: %d %s", status, body)
			}
			status, body = f.apiCall("PUT", "/v1/backoffice/sso", boKey, `{"protocol":"oidc","oidc":{"issuer":"https://idp.example","client_id":"c",
				"client_secret_env":"X"},"jit":{"domains":["example.com"]}}`)
			if status != http.StatusUnprocessableEntity || !strings.Contains(body, "just-in-time creation is for Organizations") {
				t.Fatalf("JIT on a Backoffice: %d %s", status, body)
			}
		})

		t.Run("an OpenID Connect connection is answered without secrets", func(t *testing.T) {
			status, body := f.apiCall("PUT", "/v1/admin/sso", key, `{"protocol":"oidc","oidc":{"issuer":"`+f.op.issuer+`","client_id":"steward",
				"client_secret_file":"/run/secrets/`+sso.SecretName(sso.OrgScope(f.boot.Organization.ID))+`"},"external_id_claim":"employee_id","jit":{"domains":["Jit.Example"],"default_role":"billing_manager"}}`)
			if status != http.StatusOK {
				t.Fatalf("put: %d %s", status, body)
			}
			var out struct {
				ID   string `json:"id"`
				OIDC struct {
					ClientSecretFile string   `json:"client_secret_file"`
					Scopes           []string `json:"scopes"`
					RedirectURI      string   `json:"redirect_uri"`
				} `json:"oidc"`
				JIT struct {
					Domains     []string `json:"domains"`
					DefaultRole string   `json:"default_role"`
				} `json:"jit"`
				StartURL string `json:"start_url"`
			}
			if err := json.Unmarshal([]byte(body), &out); err != nil {
				t.Fatal(err)
			}
			if out.ID != f.conn.ID || out.OIDC.RedirectURI != f.http.URL+sso.CallbackPath || out.OIDC.ClientSecretFile != "/run/secrets/"+sso.SecretName(sso.OrgScope(f.boot.Organization.ID)) ||
				strings.Join(out.OIDC.Scopes, " ") != "email profile" || strings.Join(out.JIT.Domains, ",") != "jit.example" ||
				out.JIT.DefaultRole != steward.RoleIDOrganizationBilling || out.StartURL != f.http.URL+"/web/sso/"+f.conn.ID+"/start" {
				t.Fatalf("answer: %s", body)
			}
			if _, got := f.apiCall("GET", "/v1/admin/sso", key, ""); got != body {
				t.Fatalf("get answers %s, want what put answered %s", got, body)
			}
			updated := f.auditEvents(audit.EventSSOConfigurationUpdated)
			last := updated[len(updated)-1]
			if last.Actor.Type != steward.ActorAPIKey || last.EventMetadata["client_id"] != "steward" || last.TargetMetadata["id"] != f.conn.ID {
				t.Fatalf("audit entry: %+v", last)
			}
		})

		t.Run("a SAML connection shows the service provider's URLs, never its key", func(t *testing.T) {
			metadata, _ := json.Marshal(string(samlIdP(t, "").Metadata(t)))
			status, body := f.apiCall("PUT", "/v1/admin/sso", key, `{"protocol":"saml","saml":{"idp_metadata_xml":`+string(metadata)+`}}`)
			if status != http.StatusOK || !strings.Contains(body, `"acs_url":"`+f.http.URL+"/web/sso/saml/"+f.conn.ID+`/acs"`) ||
				!strings.Contains(body, `"entity_id":"`+f.http.URL+"/web/sso/saml/"+f.conn.ID+`/metadata"`) || !strings.Contains(body, "BEGIN CERTIFICATE") {
				t.Fatalf("put SAML: %d %s", status, body)
			}
			if strings.Contains(body, "PRIVATE KEY") {
				t.Fatalf("the private key was answered: %s", body)
			}
			var stored string
			err := db.View(context.Background(), func(tx *store.Tx) error {
				return tx.QueryRow(context.Background(), `SELECT saml_sp_private_key FROM sso_connections WHERE id = ?`, f.conn.ID).Scan(&stored)
			})
			if err != nil || !strings.Contains(stored, "PRIVATE KEY") {
				t.Fatalf("stored key %q %v", stored, err)
			}
		})

		t.Run("enforce needs an administrator's SSO sign-in through the connection", func(t *testing.T) {
			put := `{"protocol":"oidc","oidc":{"issuer":"` + f.op.issuer + `","client_id":"steward","client_secret_env":"` + sso.SecretName(sso.OrgScope(f.boot.Organization.ID)) + `"},"enforce":true}`
			status, body := f.apiCall("PUT", "/v1/admin/sso", key, put)
			if status != http.StatusConflict || !strings.Contains(body, "enforce can be turned on only after an administrator has signed in") {
				t.Fatalf("enforce with a new provider: %d %s", status, body)
			}
			f.apiCall("PUT", "/v1/admin/sso", key, strings.Replace(put, `"enforce":true`, `"enforce":false`, 1))
			if r := f.signInAs(f.browser(), "admin@example.com", "admin"); r.status != http.StatusSeeOther {
				t.Fatalf("admin's SSO sign-in: %d %s", r.status, r.body)
			}
			if status, body := f.apiCall("PUT", "/v1/admin/sso", key, put); status != http.StatusOK || !strings.Contains(body, `"enforce":true`) {
				t.Fatalf("enforce after an admin's sign-in: %d %s", status, body)
			}
		})

		t.Run("delete", func(t *testing.T) {
			if status, body := f.apiCall("DELETE", "/v1/admin/sso", key, ""); status != http.StatusNoContent {
				t.Fatalf("delete: %d %s", status, body)
			}
			if status, body := f.apiCall("GET", "/v1/admin/sso", key, ""); status != http.StatusNotFound || !strings.Contains(body, "no single sign-on connection") {
				t.Fatalf("get after delete: %d %s", status, body)
			}
			if deleted := f.auditEvents(audit.EventSSOConfigurationDeleted); len(deleted) != 1 || deleted[0].TargetMetadata["id"] != f.conn.ID {
				t.Fatalf("sso.configuration.deleted entries: %+v", deleted)
			}
			if r := f.browser().signIn("member@example.com", "member password 123"); r.status != http.StatusSeeOther {
				t.Fatalf("password sign-in once the enforcing connection is gone: %d %s", r.status, r.body)
			}
		})

		t.Run("the Backoffice has its own connection", func(t *testing.T) {
			status, body := f.apiCall("PUT", "/v1/backoffice/sso", boKey, `{"protocol":"oidc","oidc":{"issuer":"`+f.op.issuer+`","client_id":"steward","client_secret_env":"`+sso.SecretName(sso.EAScope(f.boot.EnterpriseAccount.ID))+`"}}`)
			if status != http.StatusOK || strings.Contains(body, f.conn.ID) {
				t.Fatalf("put Backoffice connection: %d %s", status, body)
			}
			if status, body := f.apiCall("GET", "/v1/admin/sso", key, ""); status != http.StatusNotFound || !strings.Contains(body, "no single sign-on connection") {
				t.Fatalf("the Organization's connection after the Backoffice's: %d %s", status, body)
			}
		})
	})
}

func TestSSOPanelPage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newSSOFixture(t, db)
		page := f.org() + "/sso"
		form := func(b *browser, enforce bool, breakGlass string) url.Values {
			v := url.Values{"csrf": {b.csrf(page)}, "protocol": {"oidc"}, "issuer": {f.op.issuer}, "client_id": {opClientID},
				"client_secret_env": {sso.SecretName(sso.OrgScope(f.boot.Organization.ID))}, "scopes": {"email profile"}, "jit_domains": {"jit.example"}, "jit_role": {steward.RoleIDOrganizationMember},
				"break_glass": {breakGlass}}
			if enforce {
				v.Set("enforce", "on")
			}
			return v
		}
		pw := f.browser()
		pw.mustSignIn()
		r := pw.get(page)
		if r.status != http.StatusOK || !strings.Contains(r.body, f.http.URL+sso.CallbackPath) || !strings.Contains(r.body, f.http.URL+"/web/sso/"+f.conn.ID+"/start") ||
			!strings.Contains(r.body, `value="`+sso.SecretName(sso.OrgScope(f.boot.Organization.ID))+`"`) || !strings.Contains(r.body, ">Single sign-on</a>") {
			t.Fatalf("the page: %d %s", r.status, r.body)
		}
		bad := form(pw, false, "nobody@example.com")
		bad.Set("issuer", "http://idp.example")
		if r := pw.post(page, bad); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "nobody here has the address") {
			t.Fatalf("unknown break-glass address: %d %s", r.status, r.body)
		}
		bad.Set("break_glass", "")
		if r := pw.post(page, bad); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "issuer must be an https:// URL") ||
			!strings.Contains(r.body, `value="http://idp.example"`) {
			t.Fatalf("http issuer: %d %s, want the error and what was typed", r.status, r.body)
		}
		if r := pw.post(page, form(pw, true, "admin@example.com")); r.status != http.StatusConflict || !strings.Contains(r.body, "you have signed in") {
			t.Fatalf("enforce from a password session: %d %s", r.status, r.body)
		}
		b := f.browser()
		if r := f.signInAs(b, "admin@example.com", "admin"); r.status != http.StatusSeeOther {
			t.Fatalf("SSO sign-in: %d %s", r.status, r.body)
		}
		if r := b.post(page, form(b, true, "admin@example.com")); r.status != http.StatusSeeOther || r.location != page+"?done=sso_saved" {
			t.Fatalf("enforce after signing in with SSO: %d %q %s", r.status, r.location, r.body)
		}
		r = b.get(page)
		if !strings.Contains(r.body, `name="enforce" value="on" checked`) || !strings.Contains(r.body, `value="admin@example.com"`) {
			t.Fatalf("the saved connection: %s", r.body)
		}
		updated := f.auditEvents(audit.EventSSOConfigurationUpdated)
		if last := updated[len(updated)-1]; last.Actor.UserID != f.boot.Admin.ID || last.EventMetadata["enforce"] != "true" {
			t.Fatalf("audit entry of the page's change: %+v", last)
		}
		if r := b.get(f.org() + "/audit"); !strings.Contains(r.body, "signed in with single sign-on") || !strings.Contains(r.body, "the single sign-on connection") {
			t.Fatalf("the audit log does not say the SSO events: %s", r.body)
		}
		if r := b.post(page+"/delete", url.Values{"csrf": {b.csrf(page)}}); r.status != http.StatusSeeOther {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		// The Organization's single sign-on opens its own pages only; a
		// password session opens the Backoffice's.
		if r := b.get("/web/ea/" + f.boot.EnterpriseAccount.ID + "/sso"); r.status != http.StatusForbidden {
			t.Fatalf("the Backoffice's page in the Organization's SSO session: %d %s", r.status, r.body)
		}
		if r := pw.get("/web/ea/" + f.boot.EnterpriseAccount.ID + "/sso"); r.status != http.StatusOK || !strings.Contains(r.body, "Enforcement") || strings.Contains(r.body, "Just-in-time") {
			t.Fatalf("the Backoffice's page: %d %s", r.status, r.body)
		}
	})
}

// logoutToken is a back-channel logout token for subject, signed with key
// (the provider's own signing key unless another is given).
func (op *testOP) logoutToken(subject string, key *rsa.PrivateKey) string {
	op.t.Helper()
	sk, err := op.storage.SigningKey(context.Background())
	if err != nil {
		op.t.Fatal(err)
	}
	signWith := sk.Key()
	if key != nil {
		signWith = key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: sk.SignatureAlgorithm(), Key: signWith},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", sk.ID()))
	if err != nil {
		op.t.Fatal(err)
	}
	now := time.Now().Unix()
	payload, _ := json.Marshal(map[string]any{"iss": op.issuer, "aud": opClientID, "iat": now, "exp": now + 120, "jti": rand.Text(), "sub": subject,
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
	obj, err := signer.Sign(payload)
	if err != nil {
		op.t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		op.t.Fatal(err)
	}
	return raw
}

func TestSSOBackChannelLogout(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		f := newSSOFixture(t, db)
		b := f.browser()
		if r := f.signInAs(b, "admin@example.com", "admin"); r.status != http.StatusSeeOther {
			t.Fatalf("sign-in: %d %s", r.status, r.body)
		}
		provider := f.browser()
		post := func(token string) reply {
			return provider.post(sso.BackChannelLogoutPath, url.Values{"logout_token": {token}})
		}
		other, _ := rsa.GenerateKey(rand.Reader, 2048)
		if r := post(f.op.logoutToken("sub-admin", other)); r.status != http.StatusBadRequest || !strings.Contains(r.body, "the logout token is not valid") {
			t.Fatalf("a logout token signed with another key: %d %s, want 400", r.status, r.body)
		}
		if r := b.get(f.org() + "/members"); r.status != http.StatusOK {
			t.Fatalf("the session after a refused logout token: %d", r.status)
		}
		token := f.op.logoutToken("sub-admin", nil)
		if r := post(token); r.status != http.StatusOK {
			t.Fatalf("the provider's logout token: %d %s", r.status, r.body)
		}
		if r := b.get(f.org() + "/members"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/web/signin") {
			t.Fatalf("the session after the provider's logout: %d %q, want sent to sign in", r.status, r.location)
		}
		if r := post(token); r.status != http.StatusBadRequest || !strings.Contains(r.body, "the logout token is not valid") {
			t.Fatalf("the same logout token again: %d %s, want 400 saying the token is not valid", r.status, r.body)
		}
	})
}
