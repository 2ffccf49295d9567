package web_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/web"
)

// adminPassword is the bootstrap admin's password in every test.
const adminPassword = "correct horse battery staple"

// env is the real server, with the web pages, over a real database whose
// first admin has a password.
type env struct {
	t    testing.TB
	db   *store.DB
	boot bootstrap.Result
	http *httptest.Server
	// sso is the single sign-on service of the pages and the Admin API.
	sso *sso.Service
}

func newEnv(t testing.TB, db *store.DB, cfg web.Config) *env {
	t.Helper()
	return newEnvWith(t, db, cfg, nil)
}

// newEnvWith is newEnv whose pages and Admin API get the single sign-on
// service that signOn makes for the server's base URL (nil: the default).
func newEnvWith(t testing.TB, db *store.DB, cfg web.Config, signOn func(base string) *sso.Service) *env {
	t.Helper()
	ctx := context.Background()
	boot, err := bootstrap.Run(ctx, db, bootstrap.Options{Actor: "test", AdminEmail: "admin@example.com"})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	e := &env{t: t, db: db, boot: boot}
	e.setPassword(boot.Admin.ID, adminPassword)
	var srv *httptest.Server
	srv = httptest.NewUnstartedServer(nil)
	base := "http://" + srv.Listener.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	invitations := directory.InviteSettings{TTL: 7 * 24 * time.Hour, AcceptURL: base + "/invitations/accept"}
	cfg.DB, cfg.Log, cfg.Invitations = db, log, invitations
	cfg.Reset = auth.ResetSettings{TTL: time.Hour, URL: base + web.Prefix + "/password/reset"}
	if signOn != nil {
		cfg.SSO = signOn(base)
	}
	if cfg.SSO == nil {
		cfg.SSO = sso.New(sso.Config{DB: db, PublicURL: base, Log: log})
	}
	e.sso = cfg.SSO
	pages, err := web.New(cfg)
	if err != nil {
		t.Fatalf("web.New: %v", err)
	}
	s, err := server.New(server.Deps{DB: db, Log: log, Invitations: invitations, Web: pages, SSO: cfg.SSO})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	srv.Config.Handler = s.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	e.http = srv
	return e
}

func (e *env) setPassword(userID, pw string) {
	e.t.Helper()
	ctx := context.Background()
	hash, err := auth.HashPassword(ctx, pw)
	if err != nil {
		e.t.Fatal(err)
	}
	err = e.db.Transact(ctx, func(tx *store.Tx) error {
		return auth.SetPassword(ctx, tx, steward.SystemActor("test"), userID, hash, auth.SetByReset)
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// browser is one cookie jar: one person's browser.
type browser struct {
	e *env
	c *http.Client
	// header is sent with every request, as a proxy in front would add it.
	header http.Header
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, header: http.Header{}}
}

// browserAt is a browser whose requests reach Steward through a proxy at
// 127.0.0.1 that names ip as the client.
func (e *env) browserAt(ip string) *browser {
	b := e.browser()
	b.header.Set("X-Forwarded-For", ip)
	return b
}

type reply struct {
	status   int
	location string
	body     string
	header   http.Header
}

func (b *browser) do(req *http.Request) reply {
	b.e.t.Helper()
	for k, v := range b.header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(body), header: resp.Header}
}

func (b *browser) get(path string) reply {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.e.http.URL+path, nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) reply {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.e.http.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the anti-forgery token of a page.
func (b *browser) csrf(path string) string {
	b.e.t.Helper()
	r := b.get(path)
	m := csrfRE.FindStringSubmatch(r.body)
	if m == nil {
		b.e.t.Fatalf("no csrf token on %s: %d %s", path, r.status, r.body)
	}
	return m[1]
}

// signIn signs in and returns the reply to the form.
func (b *browser) signIn(email, pw string) reply {
	b.e.t.Helper()
	return b.post("/web/signin", url.Values{"csrf": {b.csrf("/web/signin")}, "email": {email}, "password": {pw}, "next": {"/web/"}})
}

// mustSignIn signs in as the bootstrap admin.
func (b *browser) mustSignIn() {
	b.e.t.Helper()
	if r := b.signIn("admin@example.com", adminPassword); r.status != http.StatusSeeOther || r.location != "/web/" {
		b.e.t.Fatalf("sign in: %d %q %s", r.status, r.location, r.body)
	}
}

func (e *env) org() string { return "/web/o/" + e.boot.Organization.ID }

// addMember makes email a member of the bootstrap Organization with the
// roles named (none: member) and, when pw is not empty, that password; it
// returns the user's id.
func (e *env) addMember(email, pw string, roleNames ...string) string {
	e.t.Helper()
	ctx := context.Background()
	m := directory.NewMember{Email: email}
	if len(roleNames) > 0 {
		m.Roles.RoleNames = &roleNames
	}
	var id string
	err := e.db.Transact(ctx, func(tx *store.Tx) error {
		res, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization, []directory.NewMember{m})
		id = res.EmailToUserID[email]
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	if pw != "" {
		e.setPassword(id, pw)
	}
	return id
}
