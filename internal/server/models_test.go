package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/apitest"
	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// servedModels are the models of forEachModelsEngine's gateway: the demo
// model, and one whose upstream no test request reaches.
var servedModels = []string{"mistral-small", gateway.DemoModelName}

// forEachModelsEngine runs fn with a harness that serves the model API as
// serve does, with servedModels, on every engine.
func forEachModelsEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		prices, err := billing.NewPrices([]billing.ModelPrice{{Model: "mistral-small"}})
		if err != nil {
			t.Fatal(err)
		}
		small := gateway.Model{Name: "mistral-small", Upstreams: []gateway.Upstream{{BaseURL: "http://127.0.0.1:9/v1"}}}
		routes := modelAPI(t, db, gateway.Config{Prices: prices, Currency: "USD", DemoModel: true, Models: []gateway.Model{small}})
		fn(t, newHarnessWith(t, db, func(d *server.Deps) { d.Gateway, d.Models = routes, servedModels }))
	})
}

// model sends a model API request with a Workspace key and returns its
// status and body.
func (h *harness) model(method, path, key, body string) (int, string) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := h.http.Client().Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// listedModels returns the ids GET /v1/models lists for key.
func (h *harness) listedModels(key string) []string {
	h.t.Helper()
	status, body := h.model("GET", "/v1/models", key, "")
	if status != http.StatusOK {
		h.t.Fatalf("GET /v1/models: %d %s", status, body)
	}
	apitest.CheckModelSchema(h.t, "ModelList", []byte(body))
	var list struct{ Data []struct{ ID string } }
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		h.t.Fatal(err)
	}
	ids := []string{}
	for _, d := range list.Data {
		ids = append(ids, d.ID)
	}
	return ids
}

// exactly fails unless r is status with exactly body.
func exactly(t *testing.T, r response, status int, body string) {
	t.Helper()
	if r.status != status || string(bytes.TrimSpace(r.body)) != body {
		t.Fatalf("%d %s\nwant %d %s", r.status, r.body, status, body)
	}
}

// unknownModel is how the model API answers a chat request for a model it
// does not serve.
func unknownModel(model string) string {
	return `{"object":"error","message":"model \"` + model + `\" does not exist","type":"not_found_error","param":"model","code":"model_not_found"}`
}

func chatWith(model string) string {
	return `{"model":"` + model + `","messages":[{"role":"user","content":"hello"}]}`
}

// TestModelAccessThroughTheAPI: allow lists set through the Admin API,
// validated, audited, and held to by the model API at the next request: a
// model a key may not call is answered as one that does not exist, and is
// not listed.
func TestModelAccessThroughTheAPI(t *testing.T) {
	forEachModelsEngine(t, func(t *testing.T, h *harness) {
		ws := h.workspace("Research")
		keyID, key := h.apiKey(ws)
		_, other := h.apiKey(h.boot.DefaultWorkspace.ID)
		wsPath, keyPath := "/v1/admin/workspaces/"+ws+"/allowed-models", "/v1/admin/api-keys/"+keyID+"/allowed-models"

		exactly(t, h.get(wsPath, h.boot.AdminKeySecret), 200, `{"allowed_models":null}`)
		exactly(t, h.get(keyPath, h.boot.AdminKeySecret), 200, `{"allowed_models":null,"workspace_allowed_models":null,"effective_allowed_models":null}`)
		if got := h.listedModels(key); !slices.Equal(got, servedModels) {
			t.Fatalf("without lists the key lists %v, want %v", got, servedModels)
		}

		// Refused: no field, not a list, names the server does not serve.
		v := expectValidation(t, h.send("PUT", wsPath, map[string]any{}), "body.allowed_models")
		if !strings.Contains(v.Detail[0].Msg, "allowed_models is required") {
			t.Errorf("a body without the field: %+v", v)
		}
		expectValidation(t, h.send("PUT", wsPath, map[string]any{"allowed_models": "steward-demo"}), "body.allowed_models")
		r := h.send("PUT", wsPath, map[string]any{"allowed_models": []string{"steward-demo", "mistral-smal", "gpt-4"}})
		v = expectValidation(t, r, "body.allowed_models", "body.allowed_models")
		if len(v.Detail) != 2 || !strings.Contains(string(r.body), `\"gpt-4\" is not a model this server serves`) ||
			!strings.Contains(string(r.body), `\"mistral-smal\" is not a model this server serves`) {
			t.Fatalf("unknown names: %s", r.body)
		}
		exactly(t, h.get(wsPath, h.boot.AdminKeySecret), 200, `{"allowed_models":null}`)

		// The Workspace's list: its key may call the demo model only.
		exactly(t, h.send("PUT", wsPath, map[string]any{"allowed_models": []string{"steward-demo", "steward-demo"}}), 200, `{"allowed_models":["steward-demo"]}`)
		exactly(t, h.get(keyPath, h.boot.AdminKeySecret), 200,
			`{"allowed_models":null,"workspace_allowed_models":["steward-demo"],"effective_allowed_models":["steward-demo"]}`)
		var entries []struct {
			ActorType      string            `json:"actor_type"`
			ActorMetadata  map[string]string `json:"actor_metadata"`
			EventMetadata  map[string]string `json:"event_metadata"`
			TargetType     string            `json:"target_type"`
			TargetMetadata map[string]string `json:"target_metadata"`
			WorkspaceUUID  string            `json:"workspace_uuid"`
		}
		ok(t, h.get("/v1/admin/audit-logs?event_type=workspace.update", h.boot.AdminKeySecret), &entries)
		if len(entries) != 1 || entries[0].EventMetadata["allowed_models_before"] != "all" || entries[0].EventMetadata["allowed_models_after"] != `["steward-demo"]` ||
			entries[0].TargetType != "WORKSPACE" || entries[0].TargetMetadata["name"] != "Research" || entries[0].WorkspaceUUID != ws ||
			entries[0].ActorType != "API_KEY" || entries[0].ActorMetadata["api_key_id"] != h.boot.AdminKey.ID {
			t.Fatalf("audit entries %+v", entries)
		}
		status, body := h.model("POST", "/v1/chat/completions", key, chatWith("mistral-small"))
		if status != http.StatusNotFound || body != unknownModel("mistral-small") {
			t.Fatalf("a model the Workspace does not allow: %d %s", status, body)
		}
		if status, body := h.model("POST", "/v1/chat/completions", other, chatWith("nope")); status != http.StatusNotFound || body != unknownModel("nope") {
			t.Fatalf("a model nobody serves: %d %s", status, body)
		}
		h.chat(key, "the model the Workspace allows")
		if got := h.listedModels(key); !slices.Equal(got, []string{"steward-demo"}) {
			t.Errorf("the key lists %v, want only steward-demo", got)
		}
		// Its model cards: the allowed model's, and none of another,
		// answered exactly as a model nobody serves.
		if status, body := h.model("GET", "/v1/models/steward-demo", key, ""); status != http.StatusOK ||
			!strings.HasPrefix(body, `{"id":"steward-demo","object":"model","created":`) || !strings.HasSuffix(body, `"aliases":[],"deprecation":null,"default_model_temperature":null,"type":"base"}`) {
			t.Errorf("the allowed model's card: %d %s", status, body)
		} else {
			apitest.CheckModelResponse(t, "retrieve_model_v1_models__model_id__get", status, "application/json", []byte(body))
		}
		status, body = h.model("GET", "/v1/models/mistral-small", key, "")
		_, nobody := h.model("GET", "/v1/models/nope", other, "")
		if want := strings.Replace(unknownModel("mistral-small"), `"param":"model"`, `"param":"model_id"`, 1); status != http.StatusNotFound || body != want ||
			nobody != strings.Replace(want, "mistral-small", "nope", 1) {
			t.Errorf("the card of a model the Workspace does not allow: %d %s, want 404 %s as for an unknown model (%s)", status, body, want, nobody)
		}
		if status, body := h.model("GET", "/v1/models/mistral-small", other, ""); status != http.StatusOK || !strings.HasPrefix(body, `{"id":"mistral-small",`) {
			t.Errorf("another Workspace's key reads the card: %d %s", status, body)
		}
		if got := h.listedModels(other); !slices.Equal(got, servedModels) {
			t.Errorf("a key of another Workspace lists %v, want every model", got)
		}

		// The key's own list: empty, it may call nothing.
		exactly(t, h.send("PUT", keyPath, map[string]any{"allowed_models": []string{}}), 200,
			`{"allowed_models":[],"workspace_allowed_models":["steward-demo"],"effective_allowed_models":[]}`)
		if status, body := h.model("POST", "/v1/chat/completions", key, chatWith("steward-demo")); status != http.StatusNotFound || body != unknownModel("steward-demo") {
			t.Fatalf("a key that may call no model: %d %s", status, body)
		}
		if got := h.listedModels(key); len(got) != 0 {
			t.Errorf("a key that may call no model lists %v", got)
		}
		// Its audit entry is Steward's: in the log, not in Mistral's listing.
		var keyEntries []struct {
			EventType     string            `json:"event_type"`
			EventMetadata map[string]string `json:"event_metadata"`
		}
		ok(t, h.get("/v1/admin/audit-logs?target_type=API_KEY", h.boot.AdminKeySecret), &keyEntries)
		if len(keyEntries) != 2 {
			t.Errorf("Mistral's listing of API_KEY entries: %+v, want the two api_key.create", keyEntries)
		}
		for _, e := range keyEntries {
			if e.EventMetadata["allowed_models_after"] != "" {
				t.Errorf("Mistral's listing shows Steward's api_key.update: %+v", e)
			}
		}
		var stored []audit.Entry
		err := h.db.View(context.Background(), func(tx *store.Tx) error {
			var err error
			stored, err = audit.List(context.Background(), tx, audit.Filter{OrganizationID: h.boot.Organization.ID, EventTypes: []string{audit.EventAPIKeyUpdate}, Limit: 10})
			return err
		})
		if err != nil || len(stored) != 1 || stored[0].TargetMetadata["id"] != keyID || stored[0].EventMetadata["allowed_models_before"] != "all" ||
			stored[0].EventMetadata["allowed_models_after"] != "[]" || stored[0].WorkspaceID != ws {
			t.Fatalf("api_key.update entries %+v, %v", stored, err)
		}

		// null removes each list; the key may call every model again.
		exactly(t, h.send("PUT", keyPath, map[string]any{"allowed_models": nil}), 200,
			`{"allowed_models":null,"workspace_allowed_models":["steward-demo"],"effective_allowed_models":["steward-demo"]}`)
		exactly(t, h.send("PUT", wsPath, map[string]any{"allowed_models": nil}), 200, `{"allowed_models":null}`)
		if got := h.listedModels(key); !slices.Equal(got, servedModels) {
			t.Errorf("without lists again the key lists %v", got)
		}

		// Only an Admin API key may read or change them.
		expectError(t, h.do("GET", wsPath, nil, "x-api-key", key), http.StatusForbidden, "permission_error")
		expectError(t, h.do("PUT", keyPath, []byte(`{"allowed_models":[]}`), "x-api-key", key, "Content-Type", "application/json"), http.StatusForbidden, "permission_error")

		// An archived Workspace's list cannot change.
		if r := h.send("DELETE", "/v1/admin/workspaces/"+ws, nil); r.status != http.StatusNoContent {
			t.Fatalf("archive: %d %s", r.status, r.body)
		}
		e := expectError(t, h.send("PUT", wsPath, map[string]any{"allowed_models": []string{}}), http.StatusConflict, "invalid_request_error")
		if e.Code == nil || *e.Code != "workspace_archived" {
			t.Errorf("an archived Workspace's list: %+v", e)
		}
	})
}

// TestModelAccessOfAnotherOrganization: another Organization's Workspace or
// key answers 404, as an unknown id does, and is left as it was.
func TestModelAccessOfAnotherOrganization(t *testing.T) {
	forEachModelsEngine(t, func(t *testing.T, h *harness) {
		ws := h.boot.DefaultWorkspace.ID
		keyID, _ := h.apiKey(ws)
		ok(t, h.send("PUT", "/v1/admin/workspaces/"+ws+"/allowed-models", map[string]any{"allowed_models": []string{"steward-demo"}}), nil)
		_, otherAdmin := h.secondOrganization("other")
		for _, c := range []struct{ method, path, body, message string }{
			{"GET", "/v1/admin/workspaces/" + ws + "/allowed-models", "", "no Workspace " + ws + " in this Organization"},
			{"PUT", "/v1/admin/workspaces/" + ws + "/allowed-models", `{"allowed_models":null}`, "no Workspace " + ws + " in this Organization"},
			{"GET", "/v1/admin/api-keys/" + keyID + "/allowed-models", "", "no API key " + keyID + " in this Organization"},
			{"PUT", "/v1/admin/api-keys/" + keyID + "/allowed-models", `{"allowed_models":[]}`, "no API key " + keyID + " in this Organization"},
		} {
			headers := []string{"x-api-key", otherAdmin}
			if c.body != "" {
				headers = append(headers, "Content-Type", "application/json")
			}
			e := expectError(t, h.do(c.method, c.path, []byte(c.body), headers...), http.StatusNotFound, "not_found_error")
			if e.Message != c.message {
				t.Errorf("%s %s: %q, want %q", c.method, c.path, e.Message, c.message)
			}
		}
		exactly(t, h.get("/v1/admin/workspaces/"+ws+"/allowed-models", h.boot.AdminKeySecret), 200, `{"allowed_models":["steward-demo"]}`)
		exactly(t, h.get("/v1/admin/api-keys/"+keyID+"/allowed-models", h.boot.AdminKeySecret), 200,
			`{"allowed_models":null,"workspace_allowed_models":["steward-demo"],"effective_allowed_models":["steward-demo"]}`)
	})
}
