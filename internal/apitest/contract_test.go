package apitest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatals []string
}

func (r *recorder) Helper() {}

func (r *recorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}

func (r *recorder) failures() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(append(append([]string(nil), r.errors...), r.fatals...), "\n")
}

// check runs c.Check on a synthetic response and returns the recorder.
// header holds extra response header names and values, in pairs.
func check(t *testing.T, c *Contract, method, target string, status int, contentType, body string, header ...string) *recorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	w := httptest.NewRecorder()
	if contentType != "" {
		w.Header().Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		w.Header().Set(header[i], header[i+1])
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
	resp := w.Result()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{TB: t}
	c.Check(rec, req, resp, raw)

	again, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != body {
		t.Errorf("resp.Body after Check = %q, want the original body", again)
	}
	return rec
}

func expectPass(t *testing.T, rec *recorder) {
	t.Helper()
	if f := rec.failures(); f != "" {
		t.Errorf("valid response was rejected:\n%s", f)
	}
}

func expectFailure(t *testing.T, rec *recorder, wants ...string) {
	t.Helper()
	if len(rec.fatals) > 0 {
		t.Errorf("Check called Fatalf, want Errorf: %s", strings.Join(rec.fatals, "\n"))
	}
	if len(rec.errors) == 0 {
		t.Fatalf("invalid response was not reported")
	}
	all := strings.Join(rec.errors, "\n")
	for _, w := range wants {
		if !strings.Contains(all, w) {
			t.Errorf("report does not mention %q:\n%s", w, all)
		}
	}
}

// auditLog returns a valid audit-log entry; edit changes it before encoding.
func auditLog(edit func(e map[string]any)) map[string]any {
	e := map[string]any{
		"created_at":        "2026-01-02T03:04:05Z",
		"actor_type":        "HUMAN",
		"actor_metadata":    map[string]any{"email": "ada@example.com"},
		"event_type":        "user.create",
		"event_metadata":    map[string]any{},
		"target_type":       "USER",
		"target_metadata":   map[string]any{"user_id": "7a1d3c4e-1111-4a2b-9c3d-0123456789ab"},
		"log_id":            42,
		"organization_uuid": "0f8fad5b-d9cb-469f-a165-70867728950e",
		"workspace_uuid":    nil,
	}
	if edit != nil {
		edit(e)
	}
	return e
}

// auditLogs encodes entries as the bare JSON array the endpoint returns.
func auditLogs(t *testing.T, entries ...map[string]any) string {
	t.Helper()
	if entries == nil {
		entries = []map[string]any{}
	}
	b, err := json.Marshal(entries)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func set(key string, value any) func(map[string]any) {
	return func(e map[string]any) { e[key] = value }
}

func del(keys ...string) func(map[string]any) {
	return func(e map[string]any) {
		for _, k := range keys {
			delete(e, k)
		}
	}
}

func TestCheckAcceptsValidAuditLogs(t *testing.T) {
	c := Load(t)
	cases := []struct {
		name        string
		contentType string
		body        string
	}{
		{"one entry", "application/json", auditLogs(t, auditLog(nil))},
		{"empty list", "application/json", auditLogs(t)},
		{"uuids omitted", "application/json", auditLogs(t, auditLog(del("organization_uuid", "workspace_uuid")))},
		{"uuids null", "application/json", auditLogs(t, auditLog(set("organization_uuid", nil)))},
		{"workspace uuid set", "application/json", auditLogs(t, auditLog(set("workspace_uuid", "9b2e1c0a-7d4f-4e8a-b1c2-3d4e5f607182")))},
		{"other enums", "application/json", auditLogs(t, auditLog(func(e map[string]any) {
			e["actor_type"], e["event_type"], e["target_type"] = "API_KEY", "api_key.rotate", "API_KEY"
		}))},
		{"charset in media type", "application/json; charset=utf-8", auditLogs(t, auditLog(nil))},
		{"two entries", "application/json", auditLogs(t, auditLog(nil), auditLog(set("log_id", 41)))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectPass(t, check(t, c, http.MethodGet, "/v1/admin/audit-logs?limit=2", http.StatusOK, tc.contentType, tc.body))
		})
	}
}

func TestCheckRejectsInvalidResponses(t *testing.T) {
	c := Load(t)
	cases := []struct {
		name        string
		method      string
		target      string
		status      int
		contentType string
		body        string
		wants       []string
	}{
		{
			name: "wrong type", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 200,
			contentType: "application/json", body: auditLogs(t, auditLog(set("log_id", "42"))),
			wants: []string{"log_id", "GET /v1/admin/audit-logs -> 200"},
		},
		{
			name: "missing required field", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 200,
			contentType: "application/json", body: auditLogs(t, auditLog(del("event_type"))),
			wants: []string{"event_type"},
		},
		{
			name: "event type outside the enum", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 200,
			contentType: "application/json", body: auditLogs(t, auditLog(set("event_type", "user.teleport"))),
			wants: []string{"event_type"},
		},
		{
			name: "bad uuid format", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 200,
			contentType: "application/json", body: auditLogs(t, auditLog(set("organization_uuid", "not-a-uuid"))),
			wants: []string{"organization_uuid"},
		},
		{
			name: "object instead of bare array", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 200,
			contentType: "application/json", body: `{"data":` + auditLogs(t, auditLog(nil)) + `}`,
		},
		{
			name: "undocumented path", method: http.MethodGet, target: "/v1/admin/no-such-thing", status: 200,
			contentType: "application/json", body: `{}`,
			wants: []string{"GET /v1/admin/no-such-thing is not documented"},
		},
		{
			name: "trailing slash", method: http.MethodGet, target: "/healthz/", status: 200,
			contentType: "application/json", body: `{"status":"ok"}`,
			wants: []string{"GET /healthz/ is not documented"},
		},
		{
			name: "undocumented method", method: http.MethodDelete, target: "/v1/admin/audit-logs", status: 204,
			wants: []string{"DELETE /v1/admin/audit-logs is not documented"},
		},
		{
			name: "undocumented status", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 418,
			contentType: "application/json", body: `{}`,
			wants: []string{"418"},
		},
		{
			name: "error body missing type", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 401,
			contentType: "application/json", body: `{"object":"error","message":"no key","param":null,"code":null}`,
			wants: []string{"type"},
		},
		{
			name: "error type outside the enum", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 403,
			contentType: "application/json", body: `{"object":"error","message":"no","type":"forbidden"}`,
			wants: []string{"type"},
		},
		{
			name: "validation error without detail items shape", method: http.MethodGet, target: "/v1/admin/audit-logs?limit=500", status: 422,
			contentType: "application/json", body: `{"detail":[{"loc":["query","limit"],"type":"less_than_equal"}]}`,
			wants: []string{"msg"},
		},
		{
			name: "wrong content type", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 200,
			contentType: "text/plain", body: auditLogs(t, auditLog(nil)),
		},
		{
			name: "rate limited without Retry-After", method: http.MethodGet, target: "/v1/admin/audit-logs", status: 429,
			contentType: "application/json", body: `{"object":"error","message":"slow down","type":"rate_limit_error"}`,
			wants: []string{"Retry-After"},
		},
		{
			name: "health status wrong", method: http.MethodGet, target: "/healthz", status: 200,
			contentType: "application/json", body: `{"status":"fine"}`,
		},
		{
			name: "readiness missing status", method: http.MethodGet, target: "/readyz", status: 503,
			contentType: "application/json", body: `{"error":"database down"}`,
			wants: []string{"status"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			expectFailure(t, check(t, c, tc.method, tc.target, tc.status, tc.contentType, tc.body), tc.wants...)
		})
	}
}

func TestCheckAcceptsDocumentedErrorsAndExtensions(t *testing.T) {
	c := Load(t)
	cases := []struct {
		target string
		status int
		body   string
		header []string
	}{
		{"/v1/admin/audit-logs", 401, `{"object":"error","message":"missing API key","type":"authentication_error","param":null,"code":null}`, nil},
		{"/v1/admin/audit-logs", 403, `{"object":"error","message":"a Workspace key never grants admin access","type":"permission_error"}`, nil},
		{"/v1/admin/audit-logs?limit=500", 422, `{"detail":[{"loc":["query","limit"],"msg":"must be at most 100","type":"less_than_equal","input":"500","ctx":{"le":100}}]}`, nil},
		{"/v1/admin/audit-logs", 429, `{"object":"error","message":"slow down","type":"rate_limit_error","param":null,"code":"too_many_requests"}`, []string{"Retry-After", "3"}},
		{"/v1/admin/audit-logs", 500, `{"object":"error","message":"boom","type":"server_error"}`, nil},
		{"/healthz", 200, `{"status":"ok"}`, nil},
		{"/readyz", 200, `{"status":"ok"}`, nil},
		{"/readyz", 503, `{"status":"unavailable","error":"database unreachable"}`, nil},
		{"/v1/admin/openapi.json", 200, `{"openapi":"3.1.0"}`, nil},
		{"/api/admin/openapi.json", 200, `{"openapi":"3.1.0"}`, nil},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s %d", tc.target, tc.status), func(t *testing.T) {
			expectPass(t, check(t, c, http.MethodGet, tc.target, tc.status, "application/json", tc.body, tc.header...))
		})
	}
}

func TestCheckRewritesLegacyPrefix(t *testing.T) {
	c := Load(t)
	expectPass(t, check(t, c, http.MethodGet, "/api/admin/audit-logs?sort=ascending", http.StatusOK, "application/json", auditLogs(t, auditLog(nil))))

	rec := check(t, c, http.MethodGet, "/api/admin/audit-logs", http.StatusOK, "application/json", auditLogs(t, auditLog(set("log_id", "42"))))
	expectFailure(t, rec, "log_id", "GET /api/admin/audit-logs -> 200")
	if strings.Contains(strings.Join(rec.errors, "\n"), "not documented") {
		t.Errorf("/api/admin/audit-logs was not matched to /v1/admin/audit-logs:\n%s", strings.Join(rec.errors, "\n"))
	}

	expectFailure(t, check(t, c, http.MethodGet, "/api/admin/no-such-thing", http.StatusOK, "application/json", `[]`),
		"GET /v1/admin/no-such-thing is not documented")
}

func TestCanonicalRequestLeavesOriginalUntouched(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "/api/admin/audit-logs?limit=1", nil)
	clone := canonicalRequest(req)
	if clone.URL.Path != "/v1/admin/audit-logs" || clone.URL.RawQuery != "limit=1" {
		t.Errorf("canonical URL = %s, want /v1/admin/audit-logs?limit=1", clone.URL)
	}
	if req.URL.Path != "/api/admin/audit-logs" {
		t.Errorf("original request path changed to %s", req.URL.Path)
	}
	other := canonicalRequest(httptest.NewRequest(http.MethodGet, "/api/adminx/y", nil))
	if other.URL.Path != "/api/adminx/y" {
		t.Errorf("unrelated path rewritten to %s", other.URL.Path)
	}
}

// Synthetic documents exercising the Mistral cross-check independently of
// the real ones.
const fakeSteward = `openapi: 3.1.0
info: {title: s, version: "1"}
paths:
  /v1/admin/things:
    get:
      operationId: list_things
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: object}
        '404':
          description: missing
          content:
            application/json:
              schema: {type: object}
  /v1/admin/local:
    get:
      operationId: local_only
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: object}
  /v1/admin/ext:
    get:
      operationId: ext
      x-steward-extension: true
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {type: object}
`

const fakeMistral = `openapi: 3.1.0
info: {title: m, version: "1"}
paths:
  /v1/admin/things:
    get:
      operationId: list_things
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema:
                type: object
                required: [id]
                properties:
                  id: {type: integer}
`

func TestCheckAppliesMistralDocument(t *testing.T) {
	c, err := newContract([]byte(fakeSteward), []byte(fakeMistral))
	if err != nil {
		t.Fatal(err)
	}
	const ct = "application/json"

	expectPass(t, check(t, c, http.MethodGet, "/v1/admin/things", 200, ct, `{"id":1}`))
	expectFailure(t, check(t, c, http.MethodGet, "/v1/admin/things", 200, ct, `{"id":"x"}`), "Mistral: ")
	expectFailure(t, check(t, c, http.MethodGet, "/api/admin/things", 200, ct, `{}`), "Mistral: ", "id")

	// Mistral does not define 404, so Steward's document alone governs it.
	expectPass(t, check(t, c, http.MethodGet, "/v1/admin/things", 404, ct, `{"anything":true}`))

	expectFailure(t, check(t, c, http.MethodGet, "/v1/admin/local", 200, ct, `{}`),
		`operationId "local_only"`, "Mistral's document has no such operation")

	expectPass(t, check(t, c, http.MethodGet, "/v1/admin/ext", 200, ct, `{}`))

	withoutMistral, err := newContract([]byte(fakeSteward), nil)
	if err != nil {
		t.Fatal(err)
	}
	if withoutMistral.HasMistral() {
		t.Error("HasMistral() = true without Mistral's document")
	}
	expectPass(t, check(t, withoutMistral, http.MethodGet, "/v1/admin/local", 200, ct, `{}`))
}

func TestCheckConcurrent(t *testing.T) {
	c := Load(t)
	valid, invalid := auditLogs(t, auditLog(nil)), auditLogs(t, auditLog(set("log_id", "x")))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			rec := &recorder{TB: t}
			body := valid
			if i%2 == 1 {
				body = invalid
			}
			req := httptest.NewRequest(http.MethodGet, "/api/admin/audit-logs", nil)
			resp := &http.Response{
				StatusCode: http.StatusOK,
				Header:     http.Header{"Content-Type": []string{"application/json"}},
				Body:       io.NopCloser(strings.NewReader(body)),
			}
			c.Check(rec, req, resp, []byte(body))
			if got := len(rec.errors) > 0; got != (i%2 == 1) {
				t.Errorf("response %d: reported = %v", i, got)
			}
		})
	}
	wg.Wait()
}

func TestLoadIsCached(t *testing.T) {
	if Load(t) != Load(t) {
		t.Error("Load returned different contracts")
	}
}
