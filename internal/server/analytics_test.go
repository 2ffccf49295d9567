package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/auth"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// forEachAnalyticsEngine runs fn with a harness that also takes product
// events.
func forEachAnalyticsEngine(t *testing.T, fn func(t *testing.T, h *harness)) {
	storetest.Run(t, func(t *testing.T, db *store.DB) { fn(t, newHarnessWith(t, db, analyticsDeps(t, db))) })
}

// analyticsDeps returns what completes a harness's deps so that it takes
// product events, checking Workspace keys as serve does.
func analyticsDeps(t *testing.T, db *store.DB) func(*server.Deps) {
	t.Helper()
	checker, err := keys.NewChecker(context.Background(), db, directory.NewAccess(db))
	if err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(auth.Config{DB: db, WorkspaceKeys: checker})
	if err != nil {
		t.Fatal(err)
	}
	rec := analytics.NewRecorder(db, nil)
	go rec.Run()
	t.Cleanup(rec.Close)
	return func(d *server.Deps) { d.Analytics, d.Auth = rec, authn }
}

type ingested struct {
	Object     string `json:"object"`
	Received   int    `json:"received"`
	Duplicates int    `json:"duplicates"`
}

func (h *harness) report(key string, events ...map[string]any) response {
	h.t.Helper()
	return h.do("POST", "/v1/analytics/events", mustJSON(h.t, map[string]any{"events": events}), "Authorization", "Bearer "+key, "Content-Type", "application/json")
}

func TestAnalyticsIngestionAndReports(t *testing.T) {
	forEachAnalyticsEngine(t, func(t *testing.T, h *harness) {
		ws := h.boot.DefaultWorkspace.ID
		_, key := h.apiKey(ws)
		now := time.Now().UTC()
		day := now.Truncate(24 * time.Hour)
		at := day.Add(time.Hour).Unix()
		if now.Sub(day) < 2*time.Hour {
			at = day.Add(-23 * time.Hour).Unix()
		}
		events := []map[string]any{
			{"id": "m1", "type": "chat.message", "time": at, "conversation_id": "c1", "files": 2, "images": 1},
			{"id": "m2", "type": "chat.message", "time": at, "conversation_id": "c2", "agent_id": "agent-7", "spreadsheets": 1},
			{"id": "s1", "type": "coding.session", "time": at, "client": "programmatic", "prompts": 5, "duration_seconds": 5400},
			{"id": "t1", "type": "coding.tool_call", "time": at, "tool_name": "run_command", "status": "skipped", "approval": "never"},
			{"id": "n1", "type": "coding.next_edit", "time": at, "outcome": "timeout", "surface": "widget", "lines_unchanged": 4},
		}
		var got ingested
		ok(t, h.report(key, events...), &got)
		if got != (ingested{Object: "analytics.events", Received: 5}) {
			t.Fatalf("first report = %+v", got)
		}
		ok(t, h.report(key, events[:2]...), &got)
		if got.Received != 2 || got.Duplicates != 2 {
			t.Fatalf("a retried report = %+v, want 2 received, 2 duplicates", got)
		}

		window := fmt.Sprintf("start_time=%d&end_time=%d", day.Add(-24*time.Hour).Unix(), day.Add(24*time.Hour).Unix())
		var users struct {
			StartTime int64                `json:"start_time"`
			EndTime   int64                `json:"end_time"`
			Data      []analytics.UserStat `json:"data"`
		}
		r := h.get("/v1/admin/analytics/vibe/work/usage/by_user_stats?"+window, h.boot.AdminKeySecret)
		ok(t, r, &users)
		want := analytics.UserStat{MessagesCount: 2, FilesCount: 2, ImagesCount: 1, SpreadsheetsCount: 1, UniqueConversationsCount: 2,
			UserID: h.boot.Admin.ID, LastMessageAt: time.Unix(at, 0).UTC().Format(time.RFC3339), UniqueAgentsCount: 1, MessagesToAgentsCount: 1}
		if len(users.Data) != 1 || users.Data[0] != want || users.StartTime != day.Add(-24*time.Hour).Unix() {
			t.Fatalf("by user = %+v, want %+v", users, want)
		}
		// The guide's spelling answers the same, under both prefixes.
		for _, alias := range []string{"/api/admin/analytics/lechat/usage/by_user_stats?", "/v1/admin/analytics/lechat/usage/by_user_stats?"} {
			if a := h.get(alias+window, h.boot.AdminKeySecret); a.status != 200 || !bytes.Equal(a.body, r.body) {
				t.Errorf("%s answered %d %s, want %s", alias, a.status, a.body, r.body)
			}
		}

		var agents struct {
			Data []analytics.AgentStat `json:"data"`
		}
		ok(t, h.get("/v1/admin/analytics/vibe/work/usage/by_agent_stats?"+window, h.boot.AdminKeySecret), &agents)
		if len(agents.Data) != 1 || agents.Data[0].AgentID != "agent-7" || agents.Data[0].UniqueUsersCount != 1 || agents.Data[0].SpreadsheetsCount != 1 {
			t.Errorf("by agent = %+v", agents.Data)
		}
		var times struct {
			Data []analytics.TimeStat `json:"data"`
		}
		ok(t, h.get("/api/admin/analytics/lechat/usage/by_time_stats?granularity=hour&"+window, h.boot.AdminKeySecret), &times)
		if len(times.Data) != 1 || *times.Data[0].TimeBucket != time.Unix(at, 0).UTC().Format(time.RFC3339) || times.Data[0].MessagesCount != 2 ||
			times.Data[0].UniqueUsersCount != 1 || times.Data[0].UniqueAgentsCount != 1 {
			t.Errorf("by hour = %+v", times.Data)
		}
		ok(t, h.get("/v1/admin/analytics/vibe/work/usage/by_time_stats?"+window, h.boot.AdminKeySecret), &times)
		if len(times.Data) != 1 || *times.Data[0].TimeBucket != time.Unix(at, 0).UTC().Truncate(24*time.Hour).Format(time.RFC3339) {
			t.Errorf("by day (the default) = %+v", times.Data)
		}

		var code analytics.WorkspaceStats
		ok(t, h.get("/v1/admin/analytics/vibe/code/usage/by_workspace?workspace_id="+ws+"&"+window, h.boot.AdminKeySecret), &code)
		if len(code.Sessions) != 1 || code.Sessions[0].Programmatic != 1 || code.UserPrompts[0].Total != 5 || code.ActiveUsers[0].Programmatic != 1 ||
			code.SessionDurations[0].TotalDurationHours != 1.5 || code.ToolCalls[0].StatusSkipped != 1 || code.ToolCalls[0].ApprovalNever != 1 ||
			code.ToolCallsByName[0].ToolName != "run_command" || len(code.ConsumedTokens) != 0 {
			t.Errorf("by workspace = %+v", code)
		}
		other := h.workspace("Elsewhere")
		ok(t, h.get("/v1/admin/analytics/vibe/usage/by_workspace?workspace_id="+other+"&"+window, h.boot.AdminKeySecret), &code)
		if len(code.Sessions) != 0 || code.Sessions == nil {
			t.Errorf("another Workspace's sessions = %+v", code.Sessions)
		}
		expectError(t, h.get("/v1/admin/analytics/vibe/code/usage/by_workspace?workspace_id=6f9619ff-8b86-d011-b42d-00cf4fc964ff&"+window, h.boot.AdminKeySecret),
			http.StatusNotFound, "not_found_error")
		var org analytics.OrganizationStats
		ok(t, h.get("/v1/admin/analytics/vibe/code/usage/by_organization?"+window, h.boot.AdminKeySecret), &org)
		if len(org.NextEditSuggestions) != 1 || org.NextEditSuggestions[0].OutcomeTimeout != 1 || org.NextEditSuggestions[0].ForceGeneratedFalse != 1 ||
			org.NextEditModifiedLOC[0].Total != 4 || org.NextEditActiveUsers[0].ActiveUsers != 1 {
			t.Errorf("by organization = %+v", org)
		}

		// Another Organization's admin sees none of it.
		_, otherAdmin := h.secondOrganization("second")
		ok(t, h.get("/v1/admin/analytics/vibe/work/usage/by_user_stats?"+window, otherAdmin), &users)
		if len(users.Data) != 0 {
			t.Errorf("another Organization sees %+v", users.Data)
		}
	})
}

func TestAnalyticsValidation(t *testing.T) {
	forEachAnalyticsEngine(t, func(t *testing.T, h *harness) {
		for _, path := range []string{
			"/v1/admin/analytics/vibe/work/usage/by_user_stats", "/v1/admin/analytics/vibe/work/usage/by_agent_stats",
			"/v1/admin/analytics/vibe/work/usage/by_time_stats", "/v1/admin/analytics/vibe/code/usage/by_workspace",
			"/v1/admin/analytics/vibe/code/usage/by_organization", "/api/admin/analytics/vibe/usage/by_organization",
		} {
			expectValidation(t, h.get(path, h.boot.AdminKeySecret), "query.start_time", "query.end_time")
			expectValidation(t, h.get(path+"?start_time=1767225600&end_time=1764547200", h.boot.AdminKeySecret), "query.end_time")
			expectValidation(t, h.get(path+"?start_time=soon&end_time=1764547200", h.boot.AdminKeySecret), "query.start_time")
			expectValidation(t, h.get(path+"?start_time=0&end_time=1764547200", h.boot.AdminKeySecret), "query.end_time")
		}
		expectValidation(t, h.get("/v1/admin/analytics/vibe/work/usage/by_time_stats?granularity=year&start_time=1764547200&end_time=1767225600",
			h.boot.AdminKeySecret), "query.granularity")
		_, workspaceKey := h.apiKey(h.boot.DefaultWorkspace.ID)
		expectError(t, h.get("/v1/admin/analytics/vibe/work/usage/by_user_stats?start_time=1764547200&end_time=1767225600", workspaceKey),
			http.StatusForbidden, "permission_error")

		msg := map[string]any{"id": "m1", "type": "chat.message", "conversation_id": "c1"}
		expectError(t, h.do("POST", "/v1/analytics/events", mustJSON(t, map[string]any{"events": []any{msg}})), http.StatusUnauthorized, "authentication_error")
		expectError(t, h.report(h.boot.AdminKeySecret, msg), http.StatusForbidden, "permission_error")
		expectError(t, h.report(keys.New(keys.PrefixWorkspace), msg), http.StatusUnauthorized, "authentication_error")
		expectValidation(t, h.report(workspaceKey), "body.events")
		expectValidation(t, h.report(workspaceKey, msg,
			map[string]any{"id": "m2", "type": "chat.message", "conversation_id": "c1", "client": "cli"},
			map[string]any{"id": "s1", "type": "coding.session", "client": "ide", "prompts": -1},
			map[string]any{"id": "x", "type": "coding.session", "client": "cli", "time": time.Now().Add(time.Hour).Unix()},
		), "body.events.1.client", "body.events.2.client", "body.events.2.prompts", "body.events.3.time")
		expectValidation(t, h.do("POST", "/v1/analytics/events", []byte(`{"events":[{"id":"a","type":"chat.message","conversation_id":"c","colour":"red"}]}`),
			"Authorization", "Bearer "+workspaceKey), "body.colour")
		// The refused batches recorded nothing, not even their valid events.
		var got ingested
		ok(t, h.report(workspaceKey, msg), &got)
		if got.Duplicates != 0 {
			t.Errorf("a refused batch stored its valid event: %+v", got)
		}
		big := make([]map[string]any, analytics.MaxEvents+1)
		for i := range big {
			big[i] = map[string]any{"id": fmt.Sprint(i), "type": "chat.message", "conversation_id": "c"}
		}
		expectValidation(t, h.report(workspaceKey, big...), "body.events")
	})
}

func TestAPIKeyProduct(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ws := h.boot.DefaultWorkspace.ID
		var created struct {
			KeyID string `json:"key_id"`
		}
		ok(t, h.send("POST", "/v1/admin/api-keys", map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "product": "Vibe"}), &created)
		var key struct {
			Product string `json:"product"`
		}
		ok(t, h.get("/v1/admin/api-keys/"+created.KeyID, h.boot.AdminKeySecret), &key)
		if key.Product != "Vibe" {
			t.Errorf("product = %q, want Vibe", key.Product)
		}
		id, _ := h.apiKey(ws)
		ok(t, h.get("/v1/admin/api-keys/"+id, h.boot.AdminKeySecret), &key)
		if key.Product != "API" {
			t.Errorf("default product = %q, want API", key.Product)
		}
		expectValidation(t, h.send("POST", "/v1/admin/api-keys", map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "product": "Chat"}),
			"body.product")
	})
}
