package scim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/forwarded"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// harness is the real server over a real database, bootstrapped, with a
// SCIM token of the bootstrap Organization, behind the reverse proxies
// listed in proxies.
type harness struct {
	t        testing.TB
	db       *store.DB
	svc      *scim.Service
	http     *httptest.Server
	boot     bootstrap.Result
	token    string
	contract *apitest.Contract
}

func newHarness(t testing.TB, db *store.DB, proxies forwarded.Trusted) *harness {
	t.Helper()
	boot, err := bootstrap.Run(context.Background(), db, bootstrap.Options{Actor: "test"})
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	authn, err := auth.New(auth.Config{DB: db, LastUsed: keys.NewLastUsed()})
	if err != nil {
		t.Fatal(err)
	}
	svc := scim.New(db, log, authn, proxies)
	srv, err := server.New(server.Deps{DB: db, Log: log, Auth: authn, MaxBodyBytes: 1 << 20, SCIM: svc,
		Invitations: directory.InviteSettings{TTL: time.Hour, AcceptURL: "http://steward.test/invitations/accept"}})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	h := &harness{t: t, db: db, svc: svc, http: httptest.NewServer(srv.Handler()), boot: boot, contract: apitest.Load(t)}
	t.Cleanup(func() {
		h.http.Close()
		svc.Close()
	})
	var tok struct {
		Token string `json:"token"`
	}
	h.admin("POST", "/v1/admin/scim-tokens", map[string]any{"name": "Okta"}).want(t, 200, &tok)
	h.token = tok.Token
	return h
}

func forEachEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) { fn(t, newHarness(t, db, forwarded.Trusted{})) })
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// want fails unless the status is status, and decodes the body into v.
func (r response) want(t testing.TB, status int, v any) response {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d; body %s", r.status, status, r.body)
	}
	if v != nil {
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decode %s: %v", r.body, err)
		}
	}
	return r
}

// scimError checks a SCIM error response.
func (r response) scimError(t testing.TB, status int, scimType string) string {
	t.Helper()
	var e struct {
		Schemas  []string `json:"schemas"`
		Status   string   `json:"status"`
		SCIMType string   `json:"scimType"`
		Detail   string   `json:"detail"`
	}
	r.want(t, status, &e)
	if len(e.Schemas) != 1 || e.Schemas[0] != "urn:ietf:params:scim:api:messages:2.0:Error" || e.Status != strconv.Itoa(status) ||
		e.SCIMType != scimType || e.Detail == "" {
		t.Fatalf("SCIM error %s, want status %d scimType %q and a detail", r.body, status, scimType)
	}
	return e.Detail
}

func (h *harness) request(method, path string, body any, headers ...string) response {
	h.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = bytes.NewReader([]byte(s))
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			h.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, resp, b := apitest.Send(h.t, h.http.Client(), method, h.http.URL+path, rd, headers...)
	if !strings.HasPrefix(path, scim.Prefix) {
		// The Admin API's answers are checked against the OpenAPI documents.
		h.contract.Check(h.t, req, resp, b)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// admin calls the Admin API with the bootstrap Admin API key; its answer is
// checked against Steward's and Mistral's documents.
func (h *harness) admin(method, path string, body any) response {
	h.t.Helper()
	return h.request(method, path, body, "x-api-key", h.boot.AdminKeySecret, "Content-Type", "application/json")
}

// scim calls the SCIM service provider with the harness's token.
func (h *harness) scim(method, path string, body any) response {
	h.t.Helper()
	return h.request(method, "/scim/v2"+path, body, "Authorization", "Bearer "+h.token, "Content-Type", "application/scim+json")
}

// auditCount counts the Organization's audit entries of an event type.
func (h *harness) auditCount(event string) int {
	h.t.Helper()
	var n int
	err := h.db.View(context.Background(), func(tx *store.Tx) error {
		return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM audit_log WHERE organization_id = ? AND event_type = ?`, h.boot.Organization.ID, event).Scan(&n)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

// scimUser is what tests read of a User resource.
type scimUser struct {
	ID         string `json:"id"`
	UserName   string `json:"userName"`
	ExternalID string `json:"externalId"`
	Active     bool   `json:"active"`
	Name       struct {
		GivenName  string `json:"givenName"`
		FamilyName string `json:"familyName"`
	} `json:"name"`
	Emails []struct {
		Value   string `json:"value"`
		Primary bool   `json:"primary"`
	} `json:"emails"`
	Groups []struct {
		Value string `json:"value"`
	} `json:"groups"`
	Meta struct {
		ResourceType string `json:"resourceType"`
		Location     string `json:"location"`
	} `json:"meta"`
}

type scimGroup struct {
	ID          string `json:"id"`
	DisplayName string `json:"displayName"`
	ExternalID  string `json:"externalId"`
	Members     []struct {
		Value   string `json:"value"`
		Display string `json:"display"`
	} `json:"members"`
}

type listOf[T any] struct {
	Schemas      []string `json:"schemas"`
	TotalResults int      `json:"totalResults"`
	StartIndex   int      `json:"startIndex"`
	ItemsPerPage int      `json:"itemsPerPage"`
	Resources    []T      `json:"Resources"`
}

// oktaUser is the body Okta's SCIM client sends to create a user.
func oktaUser(userName, given, family string) map[string]any {
	return map[string]any{
		"schemas":     []string{"urn:ietf:params:scim:schemas:core:2.0:User"},
		"userName":    userName,
		"name":        map[string]any{"givenName": given, "familyName": family},
		"emails":      []any{map[string]any{"primary": true, "value": userName, "type": "work"}},
		"displayName": given + " " + family,
		"locale":      "en-US",
		"externalId":  "00u" + given,
		"groups":      []any{},
		"password":    "1mz050nq",
		"active":      true,
	}
}

func (h *harness) createUser(userName string) scimUser {
	h.t.Helper()
	var u scimUser
	h.scim("POST", "/Users", oktaUser(userName, "Given", "Family")).want(h.t, http.StatusCreated, &u)
	return u
}
