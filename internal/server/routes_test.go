package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// publicRoutes are the only routes that answer without a key.
var publicRoutes = map[string]bool{
	"GET /healthz":                        true,
	"GET /readyz":                         true,
	"GET /v1/admin/openapi.json":          true,
	"GET /api/admin/openapi.json":         true,
	"GET /invitations/accept":             true, // the invitation token is the credential
	"POST /invitations/accept":            true,
	"POST /v1/admin/users-invite/accept":  true,
	"POST /api/admin/users-invite/accept": true,
}

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// otherTenant is another Enterprise Account with its own Organization,
// Admin API key and Backoffice key.
func (h *harness) otherTenant() (adminKey, backofficeKey string) {
	h.t.Helper()
	ctx := context.Background()
	actor := steward.SystemActor("test")
	err := h.db.Transact(ctx, func(tx *store.Tx) error {
		ea, err := directory.CreateEnterpriseAccount(ctx, tx, actor, "Elsewhere")
		if err != nil {
			return err
		}
		org, ws, err := directory.CreateOrganization(ctx, tx, actor, ea.ID, "Elsewhere Org")
		if err != nil {
			return err
		}
		if _, err := directory.AddOrganizationAdmin(ctx, tx, actor, org, ws, "root@elsewhere.example"); err != nil {
			return err
		}
		if _, adminKey, err = keys.CreateAdminKey(ctx, tx, actor, org, "elsewhere", nil); err != nil {
			return err
		}
		_, backofficeKey, err = keys.CreateBackofficeKey(ctx, tx, actor, ea.ID, "elsewhere", nil)
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return adminKey, backofficeKey
}

// samples holds one object of this tenant for every path parameter.
type samples struct {
	// admin and backoffice map the path parameters of the Admin API's and
	// the Backoffice API's routes to an object of this tenant.
	admin, backoffice map[string]string
	// workspaceKey is the secret of a Workspace API key of the admin.
	workspaceKey string
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
		ID string `json:"id"`
	}
	ok(h.t, h.send("POST", "/v1/admin/scim-tokens", map[string]any{"name": "walker"}), &token)
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
			"token_id": token.ID, "run_id": run.RunID},
		backoffice:   map[string]string{"organization_id": h.boot.Organization.ID, "user_id": h.boot.Admin.ID, "key_id": h.boot.AdminKey.ID},
		workspaceKey: workspaceKey,
	}
}

// TestEveryRouteIsGuarded walks every registered route: a public one must be
// on the list above; any other must refuse anonymous callers, unknown keys
// and the wrong kind of key, and must answer another tenant's key without
// any of this tenant's identifiers and without changing anything of it.
func TestEveryRouteIsGuarded(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		otherAdmin, otherBackoffice := h.otherTenant()
		sample := h.samples()
		adminParams, backofficeParams, workspaceKey := sample.admin, sample.backoffice, sample.workspaceKey
		mine := []string{h.boot.Organization.ID, h.boot.DefaultWorkspace.ID, h.boot.AdminKey.ID, h.boot.EnterpriseAccount.ID}
		for _, id := range adminParams {
			mine = append(mine, id)
		}
		invite, role, group, key := adminParams["invite_uuid"], adminParams["role_uuid"], adminParams["group_uuid"], adminParams["key_id"]
		routes := h.srv.Routes()
		if len(routes) == 0 {
			t.Fatal("no routes registered")
		}
		for _, rt := range routes {
			name := rt.Method + " " + rt.Path
			t.Run(name, func(t *testing.T) {
				if rt.Path == "/scim/v2/" {
					t.Skip("the SCIM service provider answers in SCIM's error format; package scim walks its guards")
				}
				if rt.Action == "" {
					if !publicRoutes[name] {
						t.Fatalf("%s answers without a credential but is not on the public list", name)
					}
					return
				}
				if err := steward.Authorize(steward.Principal{}, rt.Action); !steward.IsKind(err, steward.KindUnauthenticated) {
					t.Errorf("Authorize(anonymous, %s) = %v, want unauthenticated", rt.Action, err)
				}
				params, wrongKinds, other := adminParams, []string{h.boot.BackofficeSecret, workspaceKey}, otherAdmin
				if strings.HasPrefix(rt.Path, "/v1/backoffice/") {
					params, wrongKinds, other = backofficeParams, []string{h.boot.AdminKeySecret, workspaceKey}, otherBackoffice
				}
				path := pathParam.ReplaceAllStringFunc(rt.Path, func(m string) string {
					v, ok := params[m[1:len(m)-1]]
					if !ok {
						t.Fatalf("no sample object for %s in %s", m, rt.Path)
					}
					return v
				})
				var body []byte
				if rt.Method != "GET" && rt.Method != "DELETE" {
					body = []byte("{}")
				}
				expectError(t, h.do(rt.Method, path, body), http.StatusUnauthorized, "authentication_error")
				expectError(t, h.do(rt.Method, path, body, "x-api-key", keys.New(keys.PrefixAdmin)), http.StatusUnauthorized, "authentication_error")
				for _, wrong := range wrongKinds {
					expectError(t, h.do(rt.Method, path, body, "x-api-key", wrong), http.StatusForbidden, "permission_error")
				}
				r := h.do(rt.Method, path, body, "x-api-key", other)
				for _, id := range mine {
					// A 404 may repeat the id the caller sent; anything else is a leak.
					if strings.Contains(string(r.body), id) && !strings.Contains(path, id) {
						t.Errorf("another tenant's key got %s, which names %s of this tenant", r.body, id)
					}
				}
				if strings.Contains(rt.Path, "{") && r.status != http.StatusNotFound && r.status != http.StatusUnprocessableEntity {
					t.Errorf("another tenant's key on %s got %d, want 404 (or 422 for a body it cannot parse)", path, r.status)
				}
			})
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
	})
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
