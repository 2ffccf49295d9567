package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/webhooks"
)

type webhookBody struct {
	ID                      string   `json:"id"`
	URL                     string   `json:"url"`
	Description             string   `json:"description"`
	Events                  []string `json:"events"`
	Enabled                 bool     `json:"enabled"`
	DisabledReason          *string  `json:"disabled_reason"`
	PreviousSecretExpiresAt *string  `json:"previous_secret_expires_at"`
	Secret                  string   `json:"secret"`
}

// The webhook endpoints' operations, through the real handler: the secret
// is shown on creation and rotation only, every change is audited, another
// Organization's endpoint is not found, and input is checked.
func TestWebhooksAPI(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		h := newHarnessWith(t, db, func(d *server.Deps) { d.Webhooks = webhooks.NewService(db, webhooks.Guard{}, nil) })
		var created webhookBody
		ok(t, h.send("POST", "/v1/admin/webhooks", map[string]any{"url": "https://8.8.8.8/hook?token=t", "events": []string{"api_key.*", "limit.*"}, "description": " alerts "}), &created)
		if !strings.HasPrefix(created.Secret, "whsec_") || !created.Enabled || created.Description != "alerts" || len(created.Events) != 2 {
			t.Fatalf("created %+v", created)
		}
		var got webhookBody
		ok(t, h.send("GET", "/v1/admin/webhooks/"+created.ID, nil), &got)
		if got.Secret != "" || got.URL != "https://8.8.8.8/hook?token=t" {
			t.Errorf("get %+v: want no secret", got)
		}
		var list struct {
			Items []webhookBody `json:"items"`
			Total int           `json:"total"`
		}
		ok(t, h.send("GET", "/v1/admin/webhooks?page_size=10", nil), &list)
		if list.Total != 1 || len(list.Items) != 1 || list.Items[0].Secret != "" {
			t.Errorf("list %+v", list)
		}

		var updated webhookBody
		ok(t, h.send("PATCH", "/v1/admin/webhooks/"+created.ID, map[string]any{"enabled": false, "events": []string{"*"}}), &updated)
		if updated.Enabled || updated.DisabledReason == nil || len(updated.Events) != 1 || updated.URL != created.URL {
			t.Errorf("updated %+v", updated)
		}
		var rotated webhookBody
		ok(t, h.send("POST", "/v1/admin/webhooks/"+created.ID+"/rotate-secret", nil), &rotated)
		if rotated.Secret == created.Secret || !strings.HasPrefix(rotated.Secret, "whsec_") || rotated.PreviousSecretExpiresAt == nil {
			t.Errorf("rotated %+v", rotated)
		}
		if r := h.send("POST", "/v1/admin/webhooks/"+created.ID+"/test", nil); r.status != http.StatusAccepted || !strings.Contains(string(r.body), `"event_type":"webhook.test"`) {
			t.Errorf("test: %d %s", r.status, r.body)
		}
		var deliveries struct {
			Items []struct {
				EventType string `json:"event_type"`
				Status    string `json:"status"`
			} `json:"items"`
			Total int `json:"total"`
		}
		ok(t, h.send("GET", "/v1/admin/webhooks/"+created.ID+"/deliveries", nil), &deliveries)
		if deliveries.Total != 1 || deliveries.Items[0].EventType != webhooks.EventTest || deliveries.Items[0].Status != webhooks.StatusPending {
			t.Errorf("deliveries %+v", deliveries)
		}

		// Another Organization sees none of it.
		other := h.otherTenant()
		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/admin/webhooks/" + created.ID}, {"PATCH", "/v1/admin/webhooks/" + created.ID},
			{"DELETE", "/v1/admin/webhooks/" + created.ID}, {"POST", "/v1/admin/webhooks/" + created.ID + "/rotate-secret"},
			{"POST", "/v1/admin/webhooks/" + created.ID + "/test"}, {"GET", "/v1/admin/webhooks/" + created.ID + "/deliveries"},
		} {
			if resp := h.do(r.method, r.path, []byte(`{}`), "x-api-key", other.adminKey, "Content-Type", "application/json"); resp.status != http.StatusNotFound {
				t.Errorf("%s %s by another Organization: %d %s, want 404", r.method, r.path, resp.status, resp.body)
			}
		}

		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"events": []string{"*"}}, "url"},
			{map[string]any{"url": "https://8.8.8.8/x"}, "events"},
			{map[string]any{"url": "https://127.0.0.1/x", "events": []string{"*"}}, "url"},
			{map[string]any{"url": "http://8.8.8.8/x", "events": []string{"*"}}, "url"},
			{map[string]any{"url": "https://169.254.169.254/x", "events": []string{"*"}}, "url"},
			{map[string]any{"url": "https://8.8.8.8/x", "events": []string{}}, "events"},
			{map[string]any{"url": "https://8.8.8.8/x", "events": []string{"API KEY"}}, "events"},
			{map[string]any{"url": "https://8.8.8.8/" + strings.Repeat("a", webhooks.MaxURLLen), "events": []string{"*"}}, "url"},
			{map[string]any{"url": "https://8.8.8.8/x", "events": []string{"*"}, "description": strings.Repeat("d", 501)}, "description"},
		} {
			r := h.send("POST", "/v1/admin/webhooks", c.body)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(string(r.body), `"`+c.field+`"`) {
				t.Errorf("POST %v: %d %s, want 422 naming %s", c.body, r.status, r.body, c.field)
			}
		}
		for i := 1; i < webhooks.MaxEndpoints; i++ {
			ok(t, h.send("POST", "/v1/admin/webhooks", map[string]any{"url": "https://8.8.8.8/more", "events": []string{"*"}}), nil)
		}
		if r := h.send("POST", "/v1/admin/webhooks", map[string]any{"url": "https://8.8.8.8/one-too-many", "events": []string{"*"}}); r.status != http.StatusConflict {
			t.Errorf("endpoint %d: %d %s, want 409", webhooks.MaxEndpoints+1, r.status, r.body)
		}
		if r := h.send("DELETE", "/v1/admin/webhooks/"+created.ID, nil); r.status != http.StatusNoContent {
			t.Errorf("delete: %d %s", r.status, r.body)
		}
		if r := h.send("GET", "/v1/admin/webhooks/"+created.ID, nil); r.status != http.StatusNotFound {
			t.Errorf("get after delete: %d", r.status)
		}

		entries, err := audit.NewService(db).List(context.Background(), audit.Filter{OrganizationID: h.boot.Organization.ID, TargetTypes: []string{audit.TargetWebhook}, Ascending: true, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var events []string
		for _, e := range entries {
			if e.TargetMetadata["id"] == created.ID {
				events = append(events, e.EventType)
				if strings.Contains(e.TargetMetadata["url"], "token") {
					t.Errorf("audit entry %s keeps the URL's query: %s", e.EventType, e.TargetMetadata["url"])
				}
			}
		}
		if want := []string{audit.EventWebhookCreate, audit.EventWebhookUpdate, audit.EventWebhookSecretRotate, audit.EventWebhookDelete}; strings.Join(events, ",") != strings.Join(want, ",") {
			t.Errorf("audited %v, want %v", events, want)
		}
		// The Mistral-compatible audit log leaves Steward's events out.
		if r := h.send("GET", "/v1/admin/audit-logs?limit=100", nil); strings.Contains(string(r.body), "webhook.") {
			t.Errorf("audit-logs lists webhook events: %s", r.body)
		}
	})
}
