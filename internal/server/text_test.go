package server_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// badText are characters that no name, path id or query value may hold,
// each with what the refusal says of it at byte 1 of a value ("x" first).
var badText = []struct {
	char, problem string
}{
	{"\x00", "must not contain control characters (U+0000 at byte 1)"},
	{"\xff", "must be valid UTF-8 (0xFF at byte 1)"},
	{"\x1b", "must not contain control characters (U+001B at byte 1)"},
	{"\n", "must not contain control characters (U+000A at byte 1)"},
	{"\u0085", "must not contain control characters (U+0085 at byte 1)"},
	{"\u2028", "must not contain line breaks (U+2028 at byte 1)"},
	{"\u202E", "must not contain bidirectional text controls (U+202E at byte 1)"},
	{"\u2067", "must not contain bidirectional text controls (U+2067 at byte 1)"},
	{"\u200F", "must not contain bidirectional text controls (U+200F at byte 1)"},
}

// jsonString quotes s as a JSON string, escaping only what JSON requires,
// so that invalid UTF-8 reaches the server as it is.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := range len(s) {
		switch c := s[i]; {
		case c < 0x20 || c == '"' || c == '\\':
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// gatewayStub stands for the model API: it answers 200 and hands over
// the bodies it received.
type gatewayStub chan []byte

// routes are the model API's, each answered by the stub.
func (g gatewayStub) routes() []inference.Route {
	var routes []inference.Route
	for _, p := range []string{"POST /v1/chat/completions", "POST /v1/fim/completions", "POST /v1/embeddings", "GET /v1/models"} {
		routes = append(routes, inference.Route{Pattern: p, Handler: g, OwnsBody: true})
	}
	return append(routes, inference.Route{Pattern: "POST /v1/check/{check_id}/report", Handler: g}, inference.Route{Pattern: "/v1/check", Handler: g})
}

func (g gatewayStub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	select {
	case g <- b:
	default:
	}
	w.WriteHeader(http.StatusOK)
}

// forEachFullEngine runs fn with a harness that serves every surface the
// server mounts: product events, and a stub of the model API.
func forEachFullEngine(t *testing.T, fn func(t *testing.T, h *harness, gateway gatewayStub)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		gateway := make(gatewayStub, 1)
		analyticsDeps := analyticsDeps(t, db)
		fn(t, newHarnessWith(t, db, func(d *server.Deps) {
			analyticsDeps(d)
			d.Gateway = gateway.routes()
		}), gateway)
	})
}

// exchange is a request and its answer, sent with the contract checked
// when the route is documented.
func (h *harness) exchange(documented bool, method, path string, body []byte, headers ...string) response {
	h.t.Helper()
	if documented {
		return h.do(method, path, body, headers...)
	}
	_, resp, b := apitest.Send(h.t, h.http.Client(), method, h.http.URL+path, bytes.NewReader(body), headers...)
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// expectRefused checks a 422 naming loc with msg: a validation error, or
// an HTML page holding msg.
func expectRefused(t *testing.T, r response, loc, msg string) {
	t.Helper()
	if r.status != http.StatusUnprocessableEntity {
		t.Fatalf("status %d, want 422 naming %s; body %q", r.status, loc, r.body)
	}
	if strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		if !strings.Contains(html.UnescapeString(string(r.body)), msg) {
			t.Fatalf("the page does not say %q: %q", msg, r.body)
		}
		return
	}
	v := expectValidation(t, r, loc)
	if v.Detail[0].Msg != msg {
		t.Fatalf("422 says %q, want %q", v.Detail[0].Msg, msg)
	}
}

// operations reads which documented operations take a request body from
// Steward's OpenAPI document, keyed "METHOD /path".
func (h *harness) operations() (documented, withBody map[string]bool) {
	h.t.Helper()
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	ok(h.t, h.do("GET", "/v1/admin/openapi.json", nil), &doc)
	documented, withBody = map[string]bool{}, map[string]bool{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			var op struct {
				RequestBody json.RawMessage `json:"requestBody"`
			}
			if json.Unmarshal(raw, &op) != nil {
				continue
			}
			name := strings.ToUpper(method) + " " + path
			documented[name], withBody[name] = true, op.RequestBody != nil
		}
	}
	return documented, withBody
}

// formRoutes take an HTML form instead of a JSON body.
var formRoutes = map[string]bool{"POST /invitations/accept": true}

// TestTextIsCheckedAtTheEdge walks every registered route with a refused
// character in a path id, a query value and a body string: each answers
// 422 naming the value and the character, on both engines, before the
// value reaches a handler or the database (PostgreSQL answered 500 to NUL
// and invalid UTF-8; SQLite stored NUL and bidirectional overrides).
func TestTextIsCheckedAtTheEdge(t *testing.T) {
	forEachFullEngine(t, func(t *testing.T, h *harness, _ gatewayStub) {
		sample := h.samples()
		documented, withBody := h.operations()
		n := 0
		for _, rt := range h.srv.Routes() {
			name := rt.Method + " " + rt.Path
			if rt.Surface == server.SurfaceSCIM {
				continue // package scim walks its own routes, whose errors are SCIM's
			}
			t.Run(name, func(t *testing.T) {
				method := rt.Method
				if method == "ANY" {
					method = "GET"
				}
				canonical := method + " " + strings.Replace(rt.Path, "/api/admin/", "/v1/admin/", 1)
				params, headers := sample.admin, []string{"x-api-key", h.boot.AdminKeySecret}
				switch {
				case strings.HasPrefix(rt.Path, "/v1/backoffice/"):
					params, headers = sample.backoffice, []string{"x-api-key", h.boot.BackofficeSecret}
				case rt.Path == "/v1/analytics/events":
					headers = []string{"Authorization", "Bearer " + sample.workspaceKey}
				}
				bad := func() (string, string) {
					b := badText[n%len(badText)]
					n++
					return "x" + b.char, b.problem
				}
				send := func(path string, body []byte, more ...string) response {
					return h.exchange(documented[canonical], method, path, body, append(more, headers...)...)
				}
				var first string
				path := pathParam.ReplaceAllStringFunc(rt.Path, func(m string) string {
					if first == "" {
						first = m[1 : len(m)-1]
						return "{bad}"
					}
					if v, ok := params[m[1:len(m)-1]]; ok {
						return v
					}
					return "sample"
				})
				clean := strings.Replace(path, "{bad}", "sample", 1)
				if first != "" {
					v, problem := bad()
					expectRefused(t, send(strings.Replace(path, "{bad}", url.PathEscape(v), 1), nil), "path."+first, first+" "+problem)
				}
				v, problem := bad()
				expectRefused(t, send(clean+"?name="+url.QueryEscape(v), nil), "query.name", "name "+problem)
				switch {
				case formRoutes[name]:
					v, problem := bad()
					expectRefused(t, send(clean, []byte("token=t&first_name="+url.QueryEscape(v)), "Content-Type", "application/x-www-form-urlencoded"),
						"body.first_name", "first_name "+problem)
				case withBody[canonical]:
					v, problem := bad()
					loc, msg := "body.name", "name "+problem
					if strings.Contains(problem, "UTF-8") {
						loc, msg = "body", "body "+strings.Replace(problem, "byte 1", "byte 10", 1)
					}
					expectRefused(t, send(clean, []byte(`{"name":`+jsonString(v)+`}`), "Content-Type", "application/json"), loc, msg)
				}
			})
		}
	})
}

// TestRefusedTextOfTheIssue sends what issue 18 reported: PostgreSQL
// answered 500, SQLite stored names that spoof others.
func TestRefusedTextOfTheIssue(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ws := h.workspace("reported")
		for _, tc := range []struct {
			method, path string
			body         map[string]any
			loc, msg     string
		}{
			{"POST", "/v1/admin/workspaces", map[string]any{"name": "Spoof\x00", "admin_user_id": h.boot.Admin.ID},
				"body.name", "name must not contain control characters (U+0000 at byte 5)"},
			{"POST", "/v1/admin/workspaces", map[string]any{"name": "invoice\u202Efdp.exe", "admin_user_id": h.boot.Admin.ID},
				"body.name", "name must not contain bidirectional text controls (U+202E at byte 7)"},
			{"POST", "/v1/admin/user-groups", map[string]any{"name": "\x00"},
				"body.name", "name must not contain control characters (U+0000 at byte 0)"},
			{"POST", "/v1/admin/api-keys", map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "name": "k\x00"},
				"body.name", "name must not contain control characters (U+0000 at byte 1)"},
			{"POST", "/v1/admin/scim-tokens", map[string]any{"name": "okta\x00"},
				"body.name", "name must not contain control characters (U+0000 at byte 4)"},
			{"POST", "/v1/admin/users", map[string]any{"users": []any{map[string]any{"email": "a@example.com", "first_name": "\u202Dadmin"}}},
				"body.users.0.first_name", "users.0.first_name must not contain bidirectional text controls (U+202D at byte 0)"},
			{"GET", "/v1/admin/custom-roles/%00", nil, "path.role_uuid", "role_uuid must not contain control characters (U+0000 at byte 0)"},
			{"GET", "/v1/admin/custom-roles/%ff", nil, "path.role_uuid", "role_uuid must be valid UTF-8 (0xFF at byte 0)"},
			{"GET", "/v1/admin/users?email=%00", nil, "query.email", "email must not contain control characters (U+0000 at byte 0)"},
			{"GET", "/v1/admin/nowhere/%00", nil, "path", "path must not contain control characters (U+0000 at byte 18)"},
		} {
			var body []byte
			if tc.body != nil {
				body = mustJSON(t, tc.body)
			}
			r := h.exchange(!strings.Contains(tc.path, "nowhere"), tc.method, tc.path, body, "x-api-key", h.boot.AdminKeySecret, "Content-Type", "application/json")
			expectRefused(t, r, tc.loc, tc.msg)
		}
		var list struct {
			Items []struct {
				Name string `json:"name"`
			} `json:"items"`
		}
		ok(t, h.get("/v1/admin/workspaces", h.boot.AdminKeySecret), &list)
		for _, w := range list.Items {
			if w.Name != "Default Workspace" && w.Name != "reported" {
				t.Errorf("a refused Workspace was stored: %q", w.Name)
			}
		}
	})
}

// TestTextThatIsAccepted: the rule refuses controls, not languages;
// descriptions keep their lines, and the model API's prompts are not
// checked at all.
func TestTextThatIsAccepted(t *testing.T) {
	forEachFullEngine(t, func(t *testing.T, h *harness, gateway gatewayStub) {
		ws := h.workspace("Ünïcode 研究 👩🏽‍💻 فارسی\u200cها")
		var out struct {
			Name        string `json:"name"`
			Description string `json:"description"`
		}
		ok(t, h.send("PATCH", "/v1/admin/workspaces/"+ws, map[string]any{"description": "line one\r\n\tline two"}), &out)
		if out.Name != "Ünïcode 研究 👩🏽‍💻 فارسی\u200cها" || out.Description != "line one\r\n\tline two" {
			t.Errorf("PATCH answered %+v", out)
		}
		prompt := `{"model":"m","messages":[{"role":"user","content":"` + "\\u0000 \u202E \x1b" + `"}]}`
		_, resp, b := apitest.Send(t, h.http.Client(), "POST", h.http.URL+"/v1/chat/completions", strings.NewReader(prompt), "Content-Type", "application/json")
		if resp.StatusCode != http.StatusOK || string(<-gateway) != prompt {
			t.Errorf("a prompt with control characters: %d %s, want it passed to the model API as it is", resp.StatusCode, b)
		}
	})
}
