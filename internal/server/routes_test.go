package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// publicRoutes are the only routes that answer without a credential.
var publicRoutes = map[string]bool{
	"GET /{$}":                            true, // a browser is sent to /web/
	"GET /healthz":                        true,
	"GET /readyz":                         true,
	"GET /v1/admin/openapi.json":          true,
	"GET /api/admin/openapi.json":         true,
	"GET /invitations/accept":             true, // the invitation token is the credential
	"POST /invitations/accept":            true,
	"POST /v1/admin/users-invite/accept":  true,
	"POST /api/admin/users-invite/accept": true,
	// The web pages that come before a session: signing in, and choosing
	// a password (the reset token is the credential).
	"GET /web/assets/":          true,
	"GET /web/signin":           true,
	"POST /web/signin":          true,
	"GET /web/password/forgot":  true,
	"POST /web/password/forgot": true,
	"GET /web/password/reset":   true,
	"POST /web/password/reset":  true,
	// Single sign-on before a session: the identity provider vouches.
	"POST /web/sso":                   true,
	"GET /web/sso/{connection}/start": true,
	"GET /web/sso/oidc/callback":      true,
	// The provider's signed logout token is the credential.
	"POST /web/sso/oidc/backchannel-logout": true,
	// A SAML connection's service provider: its metadata is public (the
	// identity provider imports it), and what its identity provider posts
	// carries its own credential (a signed response, for a sign-in this
	// browser started).
	"POST /web/sso/saml/{connection}/acs":     true,
	"GET /web/sso/saml/{connection}/metadata": true,
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// tenant is another Enterprise Account with its own Organization, its
// admin, and the admin's credentials.
type tenant struct {
	adminKey, backofficeKey, scimToken string
	adminID                            string
}

// otherTenant is another Enterprise Account with its own Organization,
// Admin API key, Backoffice key and SCIM token.
func (h *harness) otherTenant() tenant {
	h.t.Helper()
	ctx := context.Background()
	actor := steward.SystemActor("test")
	var o tenant
	err := h.db.Transact(ctx, func(tx *store.Tx) error {
		ea, err := directory.CreateEnterpriseAccount(ctx, tx, actor, "Elsewhere")
		if err != nil {
			return err
		}
		org, ws, err := directory.CreateOrganization(ctx, tx, actor, ea.ID, "Elsewhere Org")
		if err != nil {
			return err
		}
		admin, err := directory.AddOrganizationAdmin(ctx, tx, actor, org, ws, "root@elsewhere.example")
		if err != nil {
			return err
		}
		o.adminID = admin.ID
		if _, o.adminKey, err = keys.CreateAdminKey(ctx, tx, actor, org, "elsewhere", nil); err != nil {
			return err
		}
		if _, o.scimToken, err = keys.CreateSCIMToken(ctx, tx, actor, org, "elsewhere", nil); err != nil {
			return err
		}
		_, o.backofficeKey, err = keys.CreateBackofficeKey(ctx, tx, actor, ea.ID, "elsewhere", nil)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return o
}

// samples holds one object of this tenant for every path parameter.
type samples struct {
	// admin and backoffice map the path parameters of the Admin API's and
	// the Backoffice API's routes to an object of this tenant; web those
	// of the web pages.
	admin, backoffice, web map[string]string
	// workspaceKey is the secret of a Workspace API key of the admin;
	// scimToken the secret of a SCIM token of the Organization.
	workspaceKey, scimToken string
}

// samples creates one object of this tenant for every path parameter.
func (h *harness) samples() samples {
	h.t.Helper()
	invite := h.invite("walk@example.com")
	role := h.customRole("walker", "organization", "audit.read")
	ws := h.workspace("walked")
	group := h.group("walkers")
	if r := h.do("POST", "/v1/admin/user-groups/"+group+"/workspaces", []byte(`{"workspace_uuid":"`+ws+`"}`), "x-api-key", h.boot.AdminKeySecret); r.status != http.StatusCreated {
		h.t.Fatalf("assign: %d %s", r.status, r.body)
	}
	key, workspaceKey := h.apiKey(ws)
	var token struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	ok(h.t, h.send("POST", "/v1/admin/scim-tokens", map[string]any{"name": "walker"}), &token)
	var webhook struct {
		ID string `json:"id"`
	}
	ok(h.t, h.send("POST", "/v1/admin/webhooks", map[string]any{"url": "https://8.8.8.8/walk", "events": []string{"*"}}), &webhook)
	var run struct {
		RunID string `json:"run_id"`
	}
	if r := h.send("POST", "/v1/admin/scim/sync", map[string]any{}); r.status != http.StatusAccepted {
		h.t.Fatalf("scim sync: %d %s", r.status, r.body)
	} else {
		r.decode(h.t, &run)
	}
	return samples{
		admin: map[string]string{"user_id": h.boot.Admin.ID, "invite_uuid": invite, "role_uuid": role, "workspace_uuid": ws, "group_uuid": group, "key_id": key,
			"token_id": token.ID, "run_id": run.RunID, "webhook_id": webhook.ID},
		backoffice: map[string]string{"organization_id": h.boot.Organization.ID, "user_id": h.boot.Admin.ID, "key_id": h.boot.AdminKey.ID},
		web: map[string]string{"org": h.boot.Organization.ID, "ea": h.boot.EnterpriseAccount.ID, "ws": ws, "user": h.boot.Admin.ID, "group": group,
			"key": key, "role": role, "id": invite, "hook": webhook.ID},
		workspaceKey: workspaceKey,
		scimToken:    token.Token,
	}
}

// reportToken is the check API's report token in the walk.
const reportToken = "report-token-of-the-walk-0123456789"

// forEachSurfaceEngine runs fn with a harness that serves every surface
// (surfaceDeps).
func forEachSurfaceEngine(t *testing.T, fn func(t *testing.T, h *harness, authn *auth.Authenticator)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		more, authn := surfaceDeps(t, db)
		fn(t, newHarnessWith(t, db, more), authn)
	})
}

// surfaceDeps returns what completes a harness's deps so that it serves
// every surface, all authenticated by one auth.Authenticator as serve
// wires them: the Admin and Backoffice APIs, SCIM, the model API (the
// check API included, whose requests are refused before its limits),
// product events and the web pages.
func surfaceDeps(t *testing.T, db *store.DB) (func(*server.Deps), *auth.Authenticator) {
	t.Helper()
	checker, err := keys.NewChecker(context.Background(), db, directory.NewAccess(db))
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{DB: db, LastUsed: keys.NewLastUsed(), WorkspaceKeys: checker, ReportToken: reportToken})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := gateway.New(gateway.Config{Currency: "USD", DemoModel: true}, authn, unreachedLimits{t}, discardUsage{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := analytics.NewRecorder(db, nil)
	go events.Run()
	t.Cleanup(events.Close)
	pages, err := web.New(web.Config{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Auth: authn})
	if err != nil {
		t.Fatal(err)
	}
	return func(d *server.Deps) { d.Auth, d.Gateway, d.Analytics, d.Web = authn, gw.Routes(), events, pages }, authn
}

// unreachedLimits fails the test if a request is admitted far enough to
// reserve.
type unreachedLimits struct{ t *testing.T }

func (l unreachedLimits) Reserve(context.Context, steward.Principal, string, billing.Quantity) (inference.Ticket, error) {
	l.t.Error("a request reached the limits")
	return nil, errors.New("not admitted")
}

// discardUsage records nothing.
type discardUsage struct{}

func (discardUsage) Record(context.Context, inference.Usage) error { return nil }

func (d discardUsage) Intend(inference.Usage) (inference.Intent, error) {
	return inference.Direct(d), nil
}

// session starts a web session for the user and returns it with its
// secret.
func (h *harness) session(authn *auth.Authenticator, userID string) (auth.Session, string) {
	h.t.Helper()
	ctx := context.Background()
	var sess auth.Session
	var token string
	err := h.db.Transact(ctx, func(tx *store.Tx) error {
		var err error
		sess, token, err = authn.StartSession(ctx, tx, auth.Identity{UserID: userID, Method: auth.MethodPassword})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return sess, token
}

// raw sends a request without following redirects, for the surfaces that
// Steward's OpenAPI document does not describe (SCIM, the model API, the
// web pages).
func (h *harness) raw(method, path string, body []byte, headers ...string) response {
	h.t.Helper()
	client := &http.Client{Transport: h.http.Client().Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	_, resp, b := apitest.Send(h.t, client, method, h.http.URL+path, bytes.NewReader(body), headers...)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// walk is what the route walk presents: a credential of every kind.
type walk struct {
	h      *harness
	sample samples
	other  tenant
	// session and otherSession are web sessions of this tenant's admin and
	// of the other tenant's.
	session, otherSession string
	// mine are identifiers of this tenant that another tenant's credential
	// must never see.
	mine []string
}

// cookie is the Cookie header of a web session.
func cookie(token string) []string { return []string{"Cookie", auth.SessionCookie + "=" + token} }

// TestEveryRouteIsGuarded walks every registered route of every surface: a
// public one must be on the list above; any other must refuse anonymous
// callers, unknown credentials and credentials of the wrong kind, each
// surface as it answers them (the Admin and Backoffice APIs and product
// events in Mistral's format, SCIM in SCIM's, the web pages with a
// redirect to sign in or an error page), and must answer another tenant's
// credential without any of this tenant's identifiers and without
// changing anything of it.
func TestEveryRouteIsGuarded(t *testing.T) {
	forEachSurfaceEngine(t, func(t *testing.T, h *harness, authn *auth.Authenticator) {
		w := walk{h: h, other: h.otherTenant(), sample: h.samples()}
		_, w.session = h.session(authn, h.boot.Admin.ID)
		_, w.otherSession = h.session(authn, w.other.adminID)
		w.mine = []string{h.boot.Organization.ID, h.boot.DefaultWorkspace.ID, h.boot.AdminKey.ID, h.boot.EnterpriseAccount.ID}
		for _, id := range w.sample.admin {
			w.mine = append(w.mine, id)
		}
		adminParams := w.sample.admin
		invite, role, group, key := adminParams["invite_uuid"], adminParams["role_uuid"], adminParams["group_uuid"], adminParams["key_id"]
		walked := map[server.Surface]int{}
		for _, rt := range h.srv.Routes() {
			name := rt.Method + " " + rt.Path
			walked[rt.Surface]++
			t.Run(name, func(t *testing.T) {
				if publicRoutes[name] {
					if rt.Action != "" {
						t.Fatalf("%s is on the public list but authorizes %s", name, rt.Action)
					}
					return
				}
				switch rt.Surface {
				case server.SurfaceAPI:
					w.api(t, rt)
				case server.SurfaceSCIM:
					w.scim(t, rt)
				case server.SurfaceModels, server.SurfaceEvents:
					w.workspaceKeys(t, rt)
				case server.SurfaceWeb:
					w.web(t, rt)
				default:
					t.Fatalf("%s: the walk knows no surface %q", name, rt.Surface)
				}
			})
		}
		for _, s := range []server.Surface{server.SurfaceAPI, server.SurfaceSCIM, server.SurfaceModels, server.SurfaceEvents, server.SurfaceWeb} {
			if walked[s] == 0 {
				t.Errorf("no route of the %s was walked", s)
			}
		}
		// Nothing of this tenant was changed by the walk.
		if r := h.get("/v1/admin/users/"+h.boot.Admin.ID, h.boot.AdminKeySecret); r.status != 200 {
			t.Errorf("the admin is gone after the walk: %d", r.status)
		}
		if r := h.get("/v1/admin/custom-roles/"+role, h.boot.AdminKeySecret); r.status != 200 {
			t.Errorf("the custom role is gone after the walk: %d", r.status)
		}
		if r := h.get("/v1/admin/api-keys/"+key, h.boot.AdminKeySecret); r.status != 200 {
			t.Errorf("the API key is gone after the walk: %d", r.status)
		}
		var assignments struct {
			Total int `json:"total"`
		}
		ok(t, h.get("/v1/admin/user-groups/"+group+"/workspaces", h.boot.AdminKeySecret), &assignments)
		var workspaces struct {
			Total int `json:"total"`
		}
		ok(t, h.get("/v1/admin/workspaces", h.boot.AdminKeySecret), &workspaces)
		if assignments.Total != 1 || workspaces.Total != 2 {
			t.Errorf("after the walk: %d assignments, %d active Workspaces; want 1 and 2", assignments.Total, workspaces.Total)
		}
		var invites []struct {
			InviteUUID string `json:"invite_uuid"`
		}
		h.get("/v1/admin/users-invite", h.boot.AdminKeySecret).decode(t, &invites)
		if len(invites) != 1 || invites[0].InviteUUID != invite {
			t.Errorf("the invitation is gone after the walk: %+v", invites)
		}
		if r := h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret); r.status != 200 {
			t.Errorf("this tenant's admin key no longer works after the walk: %d", r.status)
		}
		if r := h.raw("GET", "/web/o/"+h.boot.Organization.ID+"/members", nil, cookie(w.session)...); r.status != 200 {
			t.Errorf("this tenant's admin's session no longer works after the walk: %d", r.status)
		}
	})
}

// fill replaces the path parameters of path with params' objects.
func fill(t *testing.T, path string, params map[string]string) string {
	t.Helper()
	return pathParam.ReplaceAllStringFunc(path, func(m string) string {
		v, ok := params[m[1:len(m)-1]]
		if !ok {
			t.Fatalf("no sample object for %s in %s", m, path)
		}
		return v
	})
}

// leaks fails the test when an answer to another tenant's credential names
// an identifier of this tenant that the request did not.
func (w walk) leaks(t *testing.T, path string, r response) {
	t.Helper()
	for _, id := range w.mine {
		// A 404 may repeat the id the caller sent; anything else is a leak.
		if strings.Contains(string(r.body), id) && !strings.Contains(path, id) {
			t.Errorf("another tenant's credential got %s, which names %s of this tenant", r.body, id)
		}
	}
}

// api walks an Admin API or Backoffice API route: 401 without a key (a
// session's cookie is none), 403 for the wrong kind of key, and nothing of
// this tenant for another tenant's key.
func (w walk) api(t *testing.T, rt server.Route) {
	h := w.h
	name := rt.Method + " " + rt.Path
	if rt.Action == "" {
		t.Fatalf("%s answers without a credential but is not on the public list", name)
	}
	if err := steward.Authorize(steward.Principal{}, rt.Action); !steward.IsKind(err, steward.KindUnauthenticated) {
		t.Errorf("Authorize(anonymous, %s) = %v, want unauthenticated", rt.Action, err)
	}
	params, wrongKinds, other := w.sample.admin, []string{h.boot.BackofficeSecret, w.sample.workspaceKey, w.sample.scimToken}, w.other.adminKey
	if strings.HasPrefix(rt.Path, "/v1/backoffice/") {
		params, wrongKinds, other = w.sample.backoffice, []string{h.boot.AdminKeySecret, w.sample.workspaceKey, w.sample.scimToken}, w.other.backofficeKey
	}
	path := fill(t, rt.Path, params)
	var body []byte
	if rt.Method != "GET" && rt.Method != "DELETE" {
		body = []byte("{}")
	}
	expectError(t, h.do(rt.Method, path, body), http.StatusUnauthorized, "authentication_error")
	expectError(t, h.do(rt.Method, path, body, cookie(w.session)...), http.StatusUnauthorized, "authentication_error")
	expectError(t, h.do(rt.Method, path, body, "x-api-key", keys.New(keys.PrefixAdmin)), http.StatusUnauthorized, "authentication_error")
	for _, wrong := range wrongKinds {
		expectError(t, h.do(rt.Method, path, body, "x-api-key", wrong), http.StatusForbidden, "permission_error")
	}
	r := h.do(rt.Method, path, body, "x-api-key", other)
	w.leaks(t, path, r)
	if strings.Contains(rt.Path, "{") && r.status != http.StatusNotFound && r.status != http.StatusUnprocessableEntity {
		t.Errorf("another tenant's key on %s got %d, want 404 (or 422 for a body it cannot parse)", path, r.status)
	}
}

// scimError is the body of a SCIM error.
type scimError struct {
	Schemas []string `json:"schemas"`
	Status  string   `json:"status"`
	Detail  string   `json:"detail"`
}

// expectSCIMError checks a SCIM error of the status whose detail holds
// detail.
func expectSCIMError(t *testing.T, r response, status int, detail string) {
	t.Helper()
	var e scimError
	if r.status != status || json.Unmarshal(r.body, &e) != nil || len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" ||
		e.Status != fmt.Sprint(status) || !strings.Contains(e.Detail, detail) {
		t.Fatalf("%d %s, want a SCIM error %d saying %q", r.status, r.body, status, detail)
	}
	if status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") != `Bearer realm="SCIM"` {
		t.Errorf("WWW-Authenticate = %q", r.header.Get("WWW-Authenticate"))
	}
}

// scim walks a route of the SCIM service provider: only a SCIM token in
// Authorization: Bearer is read; any other key is refused 403, and
// another Organization's token sees nothing of this one.
func (w walk) scim(t *testing.T, rt server.Route) {
	h := w.h
	if rt.Action != steward.ActionSCIMProvision {
		t.Fatalf("a SCIM route authorizes %q, want %s", rt.Action, steward.ActionSCIMProvision)
	}
	method, path := rt.Method, strings.ReplaceAll(rt.Path, "{id}", h.boot.Admin.ID)
	if method == "ANY" {
		method = "GET"
	}
	const missing = "send the Organization's SCIM token as Authorization: Bearer <token>"
	expectSCIMError(t, h.raw(method, path, nil), http.StatusUnauthorized, missing)
	expectSCIMError(t, h.raw(method, path, nil, "x-api-key", w.sample.scimToken), http.StatusUnauthorized, missing)
	expectSCIMError(t, h.raw(method, path, nil, "Authorization", "Basic "+w.sample.scimToken), http.StatusUnauthorized, missing)
	expectSCIMError(t, h.raw(method, path, nil, cookie(w.session)...), http.StatusUnauthorized, missing)
	expectSCIMError(t, h.raw(method, path, nil, "Authorization", "Bearer "+keys.New(keys.PrefixSCIM)), http.StatusUnauthorized, "invalid API key")
	for _, wrong := range []string{h.boot.AdminKeySecret, h.boot.BackofficeSecret, w.sample.workspaceKey} {
		expectSCIMError(t, h.raw(method, path, nil, "Authorization", "Bearer "+wrong), http.StatusForbidden, "this route requires a SCIM token")
	}
	r := h.raw(method, path, nil, "Authorization", "Bearer "+w.other.scimToken)
	w.leaks(t, path, r)
	if strings.Contains(rt.Path, "{id}") && r.status != http.StatusNotFound && r.status != http.StatusBadRequest {
		t.Errorf("another Organization's SCIM token on %s got %d, want 404 (or 400 for a body it cannot parse)", path, r.status)
	}
}

// workspaceKeys walks a route of the model API (the check API included) or
// of product events: only a Workspace key in Authorization: Bearer is
// read; any other kind of key is refused 403 before any lookup, and the
// report token is no key.
func (w walk) workspaceKeys(t *testing.T, rt server.Route) {
	h := w.h
	method, path := rt.Method, strings.ReplaceAll(rt.Path, "{check_id}", "walked-check")
	if method == "ANY" {
		method = "GET"
	}
	send, missing := h.raw, "missing API key: send Authorization: Bearer <key>"
	if rt.Surface == server.SurfaceEvents {
		send, missing = h.do, "missing API key: send Authorization: Bearer <Workspace API key>"
	}
	refused := func(r response, status int, typ, msg string) {
		t.Helper()
		if e := expectError(t, r, status, typ); e.Message != msg {
			t.Errorf("%s %s: %q, want %q", method, path, e.Message, msg)
		}
	}
	body := []byte("{}")
	refused(send(method, path, body), http.StatusUnauthorized, "authentication_error", missing)
	refused(send(method, path, body, "x-api-key", w.sample.workspaceKey), http.StatusUnauthorized, "authentication_error", missing)
	refused(send(method, path, body, "Authorization", "Basic "+w.sample.workspaceKey), http.StatusUnauthorized, "authentication_error", missing)
	refused(send(method, path, body, cookie(w.session)...), http.StatusUnauthorized, "authentication_error", missing)
	refused(send(method, path, body, "Authorization", "Bearer "+keys.New(keys.PrefixWorkspace)), http.StatusUnauthorized, "authentication_error", "invalid API key")
	if !strings.HasSuffix(rt.Path, "/report") {
		refused(send(method, path, body, "Authorization", "Bearer "+reportToken), http.StatusUnauthorized, "authentication_error", "invalid API key")
	}
	for _, wrong := range []string{h.boot.AdminKeySecret, h.boot.BackofficeSecret, w.sample.scimToken, w.other.adminKey} {
		refused(send(method, path, body, "Authorization", "Bearer "+wrong), http.StatusForbidden, "permission_error",
			"only a Workspace API key can call the models: Admin API and Backoffice keys cannot")
	}
}

// web walks a web page: without a session (keys are no session) a page
// sends the browser to sign in and a form post is refused; a cookie that
// names no session is dropped; another tenant's admin finds no
// Organization or Enterprise Account here.
func (w walk) web(t *testing.T, rt server.Route) {
	h := w.h
	if rt.Action != "" {
		t.Fatalf("a web page authorizes %q in the route table, which its pages do themselves", rt.Action)
	}
	path := fill(t, strings.Replace(rt.Path, "{$}", "", 1), w.sample.web)
	refused := func(r response, status int, msg string) {
		t.Helper()
		if r.status != status || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") || !strings.Contains(html.UnescapeString(string(r.body)), msg) {
			t.Fatalf("%s %s: %d %q, want a %d page saying %q", rt.Method, path, r.status, r.body, status, msg)
		}
	}
	toSignIn := func(r response) {
		t.Helper()
		if want := "/web/signin?next=" + url.QueryEscape(path); r.status != http.StatusSeeOther || r.header.Get("Location") != want {
			t.Fatalf("GET %s: %d to %q, want 303 to %q", path, r.status, r.header.Get("Location"), want)
		}
	}
	for _, none := range [][]string{nil, {"x-api-key", h.boot.AdminKeySecret}, {"Authorization", "Bearer " + w.sample.workspaceKey}} {
		r := h.raw(rt.Method, path, nil, none...)
		if rt.Method == "GET" {
			toSignIn(r)
		} else {
			refused(r, http.StatusUnauthorized, "you are not signed in: sign in again")
		}
	}
	r := h.raw(rt.Method, path, nil, cookie("not-a-session")...)
	if rt.Method == "GET" {
		toSignIn(r)
	} else {
		refused(r, http.StatusUnauthorized, "you are not signed in, or your session has ended: sign in again")
	}
	if c := r.header.Get("Set-Cookie"); !strings.HasPrefix(c, auth.SessionCookie+"=;") || !strings.Contains(c, "Max-Age=0") {
		t.Errorf("a cookie that names no session is kept: Set-Cookie %q", c)
	}
	var form []byte
	headers := cookie(w.otherSession)
	if rt.Method != "GET" {
		form = []byte("csrf=" + url.QueryEscape(auth.CSRFToken(w.otherSession)))
		headers = append(headers, "Content-Type", "application/x-www-form-urlencoded")
	}
	switch {
	case strings.HasPrefix(rt.Path, "/web/o/"):
		refused(h.raw(rt.Method, path, form, headers...), http.StatusNotFound, "there is no Organization here that you administer")
	case strings.HasPrefix(rt.Path, "/web/ea/"):
		refused(h.raw(rt.Method, path, form, headers...), http.StatusNotFound, "there is no Enterprise Account here that you are a member of")
	}
}

func TestAuthorizeDeniesUnknownActions(t *testing.T) {
	p := steward.Principal{Kind: steward.CredentialAdminAPIKey, OrganizationID: "o"}
	if err := steward.Authorize(p, "nobody.may"); !steward.IsKind(err, steward.KindForbidden) {
		t.Fatalf("Authorize(unknown action) = %v, want forbidden", err)
	}
	if err := steward.Authorize(steward.Principal{Kind: steward.CredentialAdminAPIKey}, steward.ActionAuditRead); !steward.IsKind(err, steward.KindForbidden) {
		t.Fatalf("Authorize(admin key without Organization) = %v, want forbidden", err)
	}
	ws := steward.Principal{Kind: steward.CredentialWorkspaceAPIKey, OrganizationID: "o"}
	err := steward.Authorize(ws, steward.ActionAuditRead)
	if !steward.IsKind(err, steward.KindForbidden) || !strings.Contains(err.Error(), "never grants admin access") {
		t.Fatalf("Authorize(workspace key, admin action) = %v, want forbidden saying so", err)
	}
}

func TestRequestIDs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		r := h.do("GET", "/healthz", nil, "x-request-id", "trace-123")
		if got := r.header.Get("x-request-id"); got != "trace-123" {
			t.Errorf("x-request-id = %q, want the client's trace-123", got)
		}
		a := h.do("GET", "/healthz", nil).header.Get("x-request-id")
		b := h.do("GET", "/healthz", nil).header.Get("x-request-id")
		if len(a) != 32 || a == b {
			t.Errorf("generated request ids %q and %q: want distinct 32-hex ids", a, b)
		}
		if got := h.do("GET", "/healthz", nil, "x-request-id", strings.Repeat("x", 200)).header.Get("x-request-id"); len(got) != 32 {
			t.Errorf("an over-long client id was kept: %q", got)
		}
	})
}

func TestHealthReadinessAndDocument(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		if r := h.do("GET", "/healthz", nil); r.status != 200 || !strings.Contains(string(r.body), `"ok"`) {
			t.Fatalf("healthz: %d %s", r.status, r.body)
		}
		if r := h.do("GET", "/readyz", nil); r.status != 200 {
			t.Fatalf("readyz: %d %s", r.status, r.body)
		}
		for _, prefix := range []string{"/v1/admin", "/api/admin"} {
			r := h.do("GET", prefix+"/openapi.json", nil)
			var doc struct {
				OpenAPI string         `json:"openapi"`
				Paths   map[string]any `json:"paths"`
			}
			r.decode(t, &doc)
			if !strings.HasPrefix(doc.OpenAPI, "3.1") || doc.Paths["/v1/admin/audit-logs"] == nil {
				t.Fatalf("%s/openapi.json: openapi %q with %d paths", prefix, doc.OpenAPI, len(doc.Paths))
			}
		}
		if r := h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret); r.header.Get("Cache-Control") != "no-store" {
			t.Errorf("admin response Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
		}
		h.db.Close()
		r := h.do("GET", "/readyz", nil)
		var body map[string]string
		r.decode(t, &body)
		if r.status != http.StatusServiceUnavailable || body["status"] != "unavailable" || !strings.Contains(body["error"], "database") {
			t.Fatalf("readyz with the database closed: %d %s", r.status, r.body)
		}
		e := expectError(t, h.get("/v1/admin/audit-logs", h.boot.AdminKeySecret), http.StatusServiceUnavailable, "server_error")
		if strings.Contains(e.Message, "sql") {
			t.Errorf("an outage leaks driver details: %q", e.Message)
		}
	})
}

func TestUnknownRoutesAnswerInMistralsFormat(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, tc := range []struct {
			method, path string
			status       int
			allow, typ   string
		}{
			{"GET", "/v1/admin/nothing-here", http.StatusNotFound, "", "not_found_error"},
			{"GET", "/", http.StatusNotFound, "", "not_found_error"},
			{"DELETE", "/v1/admin/audit-logs", http.StatusMethodNotAllowed, "GET", "invalid_request_error"},
		} {
			req, _ := http.NewRequestWithContext(context.Background(), tc.method, h.http.URL+tc.path, nil)
			resp, err := h.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var e mistralError
			err = json.NewDecoder(resp.Body).Decode(&e)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.status || e.Object != "error" || e.Message == "" || e.Type != tc.typ {
				t.Errorf("%s %s: %d %+v (%v), want %d with an error object of type %s", tc.method, tc.path, resp.StatusCode, e, err, tc.status, tc.typ)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
			}
		}
	})
}

// The model API is routed once, by the server, with the routes the gateway
// lists: a method a path does not take, and a path no route has, are
// answered as an Admin API route's are, in Mistral's format; the check API
// takes every method.
func TestModelRoutesAnswerInMistralsFormat(t *testing.T) {
	forEachSurfaceEngine(t, func(t *testing.T, h *harness, _ *auth.Authenticator) {
		for _, c := range []struct {
			method, path string
			status       int
			allow, typ   string
		}{
			{"GET", "/v1/chat/completions", http.StatusMethodNotAllowed, "POST", "invalid_request_error"},
			{"DELETE", "/v1/models", http.StatusMethodNotAllowed, "GET", "invalid_request_error"},
			{"GET", "/v1/check/c1/report", http.StatusMethodNotAllowed, "POST", "invalid_request_error"},
			{"POST", "/v1/check/c1/report/again", http.StatusNotFound, "", "not_found_error"},
			{"POST", "/v1/not-an-operation", http.StatusNotFound, "", "not_found_error"},
			{"PUT", "/v1/check", http.StatusUnauthorized, "", "authentication_error"},
		} {
			t.Run(c.method+" "+c.path, func(t *testing.T) {
				r := h.raw(c.method, c.path, nil)
				expectError(t, r, c.status, c.typ)
				if got := r.header.Get("Allow"); got != c.allow {
					t.Errorf("Allow = %q, want %q", got, c.allow)
				}
				if r.header.Get("x-request-id") == "" {
					t.Error("no x-request-id")
				}
			})
		}
	})
}
