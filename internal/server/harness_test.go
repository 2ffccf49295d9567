package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// harness is a real server over a real database, bootstrapped, whose every
// response is checked against the OpenAPI documents.
type harness struct {
	t        *testing.T
	db       *store.DB
	srv      *server.Server
	http     *httptest.Server
	boot     bootstrap.Result
	lastUsed *keys.LastUsed
	contract *apitest.Contract
}

func newHarness(t *testing.T, db *store.DB) *harness {
	t.Helper()
	return newHarnessWith(t, db, nil)
}

// newHarnessWith is newHarness with deps completed by more, when not nil.
func newHarnessWith(t *testing.T, db *store.DB, more func(*server.Deps)) *harness {
	t.Helper()
	boot, err := bootstrap.Run(context.Background(), db, bootstrap.Options{Actor: "test"})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	lastUsed := keys.NewLastUsed()
	authn, err := auth.New(auth.Config{DB: db, LastUsed: lastUsed})
	if err != nil {
		t.Fatal(err)
	}
	deps := server.Deps{
		DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Auth: authn, MaxBodyBytes: 1 << 20,
		Invitations: directory.InviteSettings{TTL: 7 * 24 * time.Hour, AcceptURL: "http://steward.test/invitations/accept"},
	}
	if more != nil {
		more(&deps)
	}
	srv, err := server.New(deps)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	h := &harness{t: t, db: db, srv: srv, http: httptest.NewServer(srv.Handler()), boot: boot, lastUsed: lastUsed, contract: apitest.Load(t)}
	t.Cleanup(h.http.Close)
	return h
}

// forEachEngine runs fn with a fresh harness on every engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) { fn(t, newHarness(t, db)) })
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// decode unmarshals the body into v, failing the test if it cannot.
func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

// do sends a request with the given headers and checks the response against
// the contract.
func (h *harness) do(method, path string, body []byte, headers ...string) response {
	h.t.Helper()
	req, resp, b := apitest.Send(h.t, h.http.Client(), method, h.http.URL+path, bytes.NewReader(body), headers...)
	h.contract.Check(h.t, req, resp, b)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// send sends a JSON body with the admin key.
func (h *harness) send(method, path string, body any) response {
	h.t.Helper()
	return h.do(method, path, mustJSON(h.t, body), "x-api-key", h.boot.AdminKeySecret, "Content-Type", "application/json")
}

// ok fails the test unless r is a 200, and decodes it into v when v is not
// nil.
func ok(t *testing.T, r response, v any) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200; body %s", r.status, r.body)
	}
	if v != nil {
		r.decode(t, v)
	}
}

// invite invites one address and returns the invitation's id.
func (h *harness) invite(email string) string {
	h.t.Helper()
	ok(h.t, h.send("POST", "/v1/admin/users-invite", map[string]any{"email": email}), nil)
	var invites []struct {
		InviteUUID string `json:"invite_uuid"`
		Email      string `json:"email"`
	}
	ok(h.t, h.get("/v1/admin/users-invite", h.boot.AdminKeySecret), &invites)
	for _, inv := range invites {
		if inv.Email == email {
			return inv.InviteUUID
		}
	}
	h.t.Fatalf("invitation of %s not listed: %+v", email, invites)
	return ""
}

// customRole creates a custom role and returns its id.
func (h *harness) customRole(name, scope string, permissions ...string) string {
	h.t.Helper()
	var out struct {
		UUID string `json:"uuid"`
	}
	ok(h.t, h.send("POST", "/v1/admin/custom-roles", map[string]any{"name": name, "scope": scope, "permissions": permissions}), &out)
	return out.UUID
}

// workspace creates a Workspace administered by the bootstrap admin and
// returns its id.
func (h *harness) workspace(name string) string {
	h.t.Helper()
	var out struct {
		UUID string `json:"uuid"`
	}
	ok(h.t, h.send("POST", "/v1/admin/workspaces", map[string]any{"name": name, "admin_user_id": h.boot.Admin.ID}), &out)
	return out.UUID
}

// group creates a user group and returns its id.
func (h *harness) group(name string, extra ...any) string {
	h.t.Helper()
	body := map[string]any{"name": name}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i].(string)] = extra[i+1]
	}
	var out struct {
		UUID string `json:"uuid"`
	}
	ok(h.t, h.send("POST", "/v1/admin/user-groups", body), &out)
	return out.UUID
}

// apiKey creates a Workspace API key for the bootstrap admin and returns
// its id and secret.
func (h *harness) apiKey(ws string) (string, string) {
	h.t.Helper()
	var out struct {
		KeyID string `json:"key_id"`
		Key   string `json:"key"`
	}
	ok(h.t, h.send("POST", "/v1/admin/api-keys", map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "name": "walker"}), &out)
	return out.KeyID, out.Key
}

// get sends an authenticated GET with the admin key.
func (h *harness) get(path, key string) response {
	h.t.Helper()
	return h.do("GET", path, nil, "x-api-key", key)
}

// secondOrganization creates another Organization in the same Enterprise
// Account with its own admin and Admin API key.
func (h *harness) secondOrganization(name string) (steward.Organization, string) {
	h.t.Helper()
	ctx := context.Background()
	actor := steward.SystemActor("test")
	var org steward.Organization
	var secret string
	err := h.db.Transact(ctx, func(tx *store.Tx) error {
		var ws steward.Workspace
		var err error
		if org, ws, err = directory.CreateOrganization(ctx, tx, actor, h.boot.EnterpriseAccount.ID, name); err != nil {
			return err
		}
		if _, err = directory.AddOrganizationAdmin(ctx, tx, actor, org, ws, "admin@"+name+".example"); err != nil {
			return err
		}
		_, secret, err = keys.CreateAdminKey(ctx, tx, actor, org, "key of "+name, nil)
		return err
	})
	if err != nil {
		h.t.Fatalf("second organization: %v", err)
	}
	return org, secret
}

// mistralError is Mistral's error object.
type mistralError struct {
	Object  string  `json:"object"`
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// expectError checks the status and the error object's type.
func expectError(t *testing.T, r response, status int, typ string) mistralError {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d, want %d; body %s", r.status, status, r.body)
	}
	var e mistralError
	r.decode(t, &e)
	if e.Object != "error" || e.Type != typ || e.Message == "" {
		t.Fatalf("error body = %s, want object=error type=%s and a message", r.body, typ)
	}
	return e
}

type validationError struct {
	Detail []struct {
		Loc  []string `json:"loc"`
		Msg  string   `json:"msg"`
		Type string   `json:"type"`
	} `json:"detail"`
}

// expectValidation checks a 422 that names exactly the given locations,
// each written as its parts joined by dots ("query.limit", "body.0.email").
func expectValidation(t *testing.T, r response, fields ...string) validationError {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status = %d, want 422; body %s", r.status, r.body)
	}
	var v validationError
	r.decode(t, &v)
	var got []string
	for _, d := range v.Detail {
		if d.Msg == "" || len(d.Loc) == 0 || d.Type == "" {
			t.Errorf("detail %+v lacks a message, a type or a location", d)
		}
		got = append(got, strings.Join(d.Loc, "."))
	}
	if len(got) != len(fields) {
		t.Fatalf("422 names %v, want %v; body %s", got, fields, r.body)
	}
	for i := range fields {
		if got[i] != fields[i] {
			t.Fatalf("422 names %v, want %v; body %s", got, fields, r.body)
		}
	}
	return v
}
