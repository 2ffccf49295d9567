package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/steward"
)

// Keys whose principals carry an allow list of models.
const (
	onlyMKey = "sk-only-m"
	noneKey  = "sk-no-model"
)

// listAuth is fakeAuth, with two more keys: one that may call model m only,
// one that may call no model.
type listAuth struct{ fakeAuth }

func (a listAuth) WorkspaceKey(r *http.Request) (steward.Principal, error) {
	p := testKey
	switch r.Header.Get("Authorization") {
	case "Bearer " + onlyMKey:
		p.Models = steward.NewModelAllowList([]string{"m", "not-served"})
	case "Bearer " + noneKey:
		p.Models = steward.NewModelAllowList(nil)
	default:
		return a.fakeAuth.WorkspaceKey(r)
	}
	return p, nil
}

func (a listAuth) Reporter(r *http.Request) (steward.Principal, error) { return a.WorkspaceKey(r) }

// send sends a request with a fixed request id, so that two answers can be
// compared byte for byte, and returns its status, headers and body.
func (h *harness) send(t *testing.T, method, path, token, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, h.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("x-request-id", "req-model-access")
	resp, err := h.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	resp.Header.Del("Date")
	return resp.StatusCode, resp.Header, readAll(t, resp)
}

// listed returns the ids of a model list, checked against Mistral's schema.
func listed(t *testing.T, raw string) []string {
	t.Helper()
	apitest.CheckModelSchema(t, "ModelList", []byte(raw))
	var list struct {
		Data []struct{ ID string }
	}
	if err := json.Unmarshal([]byte(raw), &list); err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

// TestModelAccess: a key that may not call a model is answered exactly as
// a gateway that does not serve it answers, and its model list leaves the
// model out; the check API refuses the model as one it does not serve.
func TestModelAccess(t *testing.T) {
	up := newUpstream(t, jsonAnswer(chatAnswer))
	h := newHarnessAuth(t, Config{Models: []Model{chatModel("m", up)}, DemoModel: true}, listAuth{})
	// The same gateway without the demo model: how an unknown model is
	// answered.
	without := newHarnessAuth(t, Config{Models: []Model{chatModel("m", up)}}, listAuth{})

	demo := `{"model":"steward-demo","messages":[{"role":"user","content":"hello"}]}`
	status, header, body := h.send(t, http.MethodPost, "/v1/chat/completions", onlyMKey, demo)
	wantStatus, wantHeader, wantBody := without.send(t, http.MethodPost, "/v1/chat/completions", goodKey, demo)
	if status != http.StatusNotFound || status != wantStatus || body != wantBody {
		t.Fatalf("a model the key may not call: %d %s\nwant as an unknown model: %d %s", status, body, wantStatus, wantBody)
	}
	if !sameHeader(header, wantHeader) {
		t.Errorf("headers %v, want those of an unknown model %v", header, wantHeader)
	}
	var e struct{ Code, Message string }
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Code != "model_not_found" || e.Message != `model "steward-demo" does not exist` {
		t.Errorf("error %+v (%v)", e, err)
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/chat/completions", onlyMKey, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`); status != http.StatusOK {
		t.Fatalf("an allowed model: %d %s", status, body)
	}
	if n := up.calls.Load(); n != 1 {
		t.Fatalf("the upstream got %d requests, want 1 (the allowed one)", n)
	}
	h.rec.next(t)

	for _, c := range []struct {
		token string
		want  []string
	}{
		{goodKey, []string{"m", DemoModelName}},
		{onlyMKey, []string{"m"}},
		{noneKey, []string{}},
	} {
		status, _, raw := h.send(t, http.MethodGet, "/v1/models", c.token, "")
		if got := listed(t, raw); status != http.StatusOK || !slices.Equal(got, c.want) {
			t.Errorf("%s lists %d %v, want %v", c.token, status, got, c.want)
		}
	}
	if status, _, body := h.send(t, http.MethodPost, "/v1/chat/completions", noneKey, `{"model":"m","messages":[]}`); status != http.StatusNotFound ||
		!strings.Contains(body, `"message":"model \"m\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"`) {
		t.Errorf("a key that may call no model: %d %s", status, body)
	}

	// The check API: refused as a model it does not serve.
	status, _, body = h.send(t, http.MethodGet, "/v1/check?model=steward-demo", onlyMKey, "")
	wantStatus, _, wantBody = without.send(t, http.MethodGet, "/v1/check?model=steward-demo", goodKey, "")
	if status != http.StatusUnprocessableEntity || status != wantStatus || body != wantBody {
		t.Errorf("check of a model the key may not call: %d %s, want %d %s", status, body, wantStatus, wantBody)
	}
	if status, _, body := h.send(t, http.MethodGet, "/v1/check?model=m", onlyMKey, ""); status != http.StatusOK {
		t.Errorf("check of an allowed model: %d %s", status, body)
	}
	if n := len(h.limits.res); n != 2 {
		t.Errorf("%d reservations, want 2: the allowed chat and check", n)
	}
}

// sameHeader reports whether a and b hold the same fields and values.
func sameHeader(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}
