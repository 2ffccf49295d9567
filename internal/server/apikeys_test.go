package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/keys"
)

const keysPath = "/v1/admin/api-keys"

type apiKey struct {
	KeyID          string  `json:"key_id"`
	Key            *string `json:"key"`
	Name           *string `json:"name"`
	HiddenKey      string  `json:"hidden_key"`
	ExpirationDate *string `json:"expiration_date"`
	WorkspaceID    *string `json:"workspace_id"`
	WorkspaceName  *string `json:"workspace_name"`
	CreatedBy      *string `json:"created_by"`
	Product        *string `json:"product"`
	Actions        struct {
		Rotate struct {
			Status string  `json:"status"`
			Reason *string `json:"reason"`
		} `json:"rotate"`
	} `json:"actions"`
	PreviousKeyExpiresAt *string `json:"previous_key_expires_at"`
}

func (h *harness) createKey(t *testing.T, body map[string]any) apiKey {
	t.Helper()
	var k apiKey
	ok(t, h.send("POST", keysPath, body), &k)
	return k
}

func (h *harness) listKeys(t *testing.T, query string) []apiKey {
	t.Helper()
	var out struct {
		Keys []apiKey `json:"keys"`
	}
	ok(t, h.get(keysPath+"?"+query, h.boot.AdminKeySecret), &out)
	return out.Keys
}

func day(offset int) string { return time.Now().UTC().AddDate(0, 0, offset).Format(keys.DateLayout) }

func TestAPIKeys(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ws := h.boot.DefaultWorkspace.ID
		created := h.createKey(t, map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "name": "Clé Production", "expiration": day(30)})
		if created.Key == nil || !strings.HasPrefix(*created.Key, "stwk_") || created.HiddenKey != (*created.Key)[:4]+"..."+(*created.Key)[len(*created.Key)-4:] ||
			*created.ExpirationDate != day(30) || created.Actions.Rotate.Status != "available" {
			t.Fatalf("created = %+v", created)
		}
		secret := *created.Key
		h.createKey(t, map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "name": "staging"})

		all := h.listKeys(t, "")
		if len(all) != 2 || all[1].KeyID != created.KeyID {
			t.Fatalf("list = %+v", all)
		}
		for _, k := range all {
			if k.Key != nil {
				t.Fatalf("a listed key carries its secret: %+v", k)
			}
			if *k.WorkspaceName != "Default Workspace" || *k.Product != "API" || !strings.Contains(*k.CreatedBy, "admin API key") {
				t.Errorf("listed key = %+v", k)
			}
		}
		for query, want := range map[string]int{"name=CLE": 1, "name=prod": 1, "name=" + strings.ToLower(secret[len(secret)-4:]): 1, "name=nothing": 0, "limit=1": 1, "offset=1": 1, "offset=2": 0} {
			if got := h.listKeys(t, query); len(got) != want {
				t.Errorf("?%s: %d keys, want %d", query, len(got), want)
			}
		}
		expectValidation(t, h.get(keysPath+"?limit=101", h.boot.AdminKeySecret), "query.limit")
		var one apiKey
		ok(t, h.get(keysPath+"/"+created.KeyID, h.boot.AdminKeySecret), &one)
		if one.KeyID != created.KeyID || one.Key != nil {
			t.Errorf("GET one = %+v", one)
		}

		var deleted struct {
			Detail string `json:"detail"`
		}
		ok(t, h.send("DELETE", keysPath+"/"+created.KeyID, nil), &deleted)
		if deleted.Detail == "" {
			t.Error("DELETE answered no detail")
		}
		expectError(t, h.get(keysPath+"/"+created.KeyID, h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")
		expectError(t, h.send("DELETE", keysPath+"/"+created.KeyID, nil), http.StatusNotFound, "not_found_error")
		for event, want := range map[string]int{"api_key.create": 2, "api_key.delete": 1} {
			if n := h.eventCount(t, event); n != want {
				t.Errorf("%d %s entries, want %d", n, event, want)
			}
		}
	})
}

func TestAPIKeyOwnerMustUseTheWorkspace(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ids := h.createUsers(t, newUser("bill@example.com")).EmailToUserID
		bill := ids["bill@example.com"]
		ws := h.workspace("Lab")
		ok(t, h.send("PATCH", wsPath+"/"+ws+"/users", map[string]any{"members": []map[string]any{{"user_uuid": bill, "role_names": []string{"billing"}}}}), nil)
		v := expectValidation(t, h.send("POST", keysPath, map[string]any{"workspace_uuid": ws, "user_id": bill}), "body.user_id")
		if !strings.Contains(v.Detail[0].Msg, "cannot use") {
			t.Errorf("message %q", v.Detail[0].Msg)
		}
		expectError(t, h.send("POST", keysPath, map[string]any{"workspace_uuid": "6f9619ff-8b86-d011-b42d-00cf4fc964ff", "user_id": bill}), http.StatusNotFound, "not_found_error")
		expectError(t, h.send("POST", keysPath, map[string]any{"workspace_uuid": ws, "user_id": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}), http.StatusNotFound, "not_found_error")
		expectValidation(t, h.send("POST", keysPath, map[string]any{"name": "x"}), "body.workspace_uuid", "body.user_id")
		expectValidation(t, h.send("POST", keysPath, map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "expiration": day(0)}), "body.expiration")
		expectValidation(t, h.send("POST", keysPath, map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID, "expiration": "next week"}), "body.expiration")
		// Through a group, the same member may.
		g := h.group("Users")
		noContent(t, h.send("POST", groupPath+"/"+g+"/members", map[string]any{"user_uuids": []string{bill}}))
		noContent(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{"user_group_uuid": g, "workspace_uuid": ws, "workspace_role_name": "user"}))
		h.createKey(t, map[string]any{"workspace_uuid": ws, "user_id": bill})
		noContent(t, h.send("DELETE", wsPath+"/"+ws, nil))
		expectError(t, h.send("POST", keysPath, map[string]any{"workspace_uuid": ws, "user_id": h.boot.Admin.ID}), http.StatusConflict, "invalid_request_error")
	})
}

func TestRotateAPIKey(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		k := h.createKey(t, map[string]any{"workspace_uuid": h.boot.DefaultWorkspace.ID, "user_id": h.boot.Admin.ID, "name": "ci"})
		rotate := func(body string, headers ...string) response {
			return h.do("POST", keysPath+"/"+k.KeyID+"/rotate", []byte(body), append([]string{"x-api-key", h.boot.AdminKeySecret}, headers...)...)
		}
		var first apiKey
		ok(t, rotate(`{"grace_period_seconds": 3600}`, "Idempotency-Key", "rotation-1"), &first)
		if first.Key == nil || *first.Key == *k.Key || first.KeyID != k.KeyID || first.PreviousKeyExpiresAt == nil {
			t.Fatalf("rotation = %+v", first)
		}
		var retry apiKey
		ok(t, rotate(`{"grace_period_seconds": 3600}`, "Idempotency-Key", "rotation-1"), &retry)
		if retry.Key == nil || *retry.Key != *first.Key {
			t.Fatalf("the retried rotation gave another secret: %v then %v", *first.Key, retry.Key)
		}
		expectValidation(t, rotate(`{"grace_period_seconds": 60}`, "Idempotency-Key", "rotation-1"), "header.Idempotency-Key")
		var plain apiKey
		ok(t, rotate(""), &plain)
		if *plain.Key == *first.Key || plain.PreviousKeyExpiresAt != nil {
			t.Fatalf("a rotation without grace = %+v", plain)
		}
		expectValidation(t, rotate(`{"grace_period_seconds": -1}`), "body.grace_period_seconds")
		expectValidation(t, rotate(`{"grace_period_seconds": 9999999}`), "body.grace_period_seconds")
		expectValidation(t, rotate(`{"grace": 1}`), "body.grace")
		if n := h.eventCount(t, "api_key.rotate"); n != 2 {
			t.Errorf("%d api_key.rotate entries, want 2 (the retry is not a rotation)", n)
		}
		expectError(t, h.do("POST", keysPath+"/6f9619ff-8b86-d011-b42d-00cf4fc964ff/rotate", nil, "x-api-key", h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")
	})
}

func TestAPIKeyExpirationPolicy(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		body := func(extra ...any) map[string]any {
			b := map[string]any{"workspace_uuid": h.boot.DefaultWorkspace.ID, "user_id": h.boot.Admin.ID}
			for i := 0; i+1 < len(extra); i += 2 {
				b[extra[i].(string)] = extra[i+1]
			}
			return b
		}
		before := h.createKey(t, body())
		var policy struct {
			MaxExpirationDays *int `json:"max_expiration_days"`
		}
		ok(t, h.get("/v1/admin/api-key-policy", h.boot.AdminKeySecret), &policy)
		if policy.MaxExpirationDays != nil {
			t.Fatalf("policy is on by default: %v", *policy.MaxExpirationDays)
		}
		ok(t, h.send("PUT", "/v1/admin/api-key-policy", map[string]any{"max_expiration_days": 30}), &policy)
		if *policy.MaxExpirationDays != 30 {
			t.Fatalf("policy = %+v", policy)
		}
		for _, tc := range []struct {
			expiration any
			want       string
		}{{nil, day(30)}, {day(400), day(30)}, {day(10), day(10)}} {
			k := h.createKey(t, body("expiration", tc.expiration))
			if k.ExpirationDate == nil || *k.ExpirationDate != tc.want {
				t.Errorf("expiration %v: got %v, want %s", tc.expiration, k.ExpirationDate, tc.want)
			}
		}
		// A Workspace maximum may only be shorter, and the shorter applies.
		wsPolicy := wsPath + "/" + h.boot.DefaultWorkspace.ID + "/api-key-policy"
		expectValidation(t, h.send("PUT", wsPolicy, map[string]any{"max_expiration_days": 40}), "body.max_expiration_days")
		var wp struct {
			Max       *int `json:"max_expiration_days"`
			Effective *int `json:"effective_max_expiration_days"`
		}
		ok(t, h.send("PUT", wsPolicy, map[string]any{"max_expiration_days": 7}), &wp)
		if *wp.Max != 7 || *wp.Effective != 7 {
			t.Fatalf("workspace policy = %+v", wp)
		}
		if k := h.createKey(t, body()); *k.ExpirationDate != day(7) {
			t.Errorf("with a 7-day Workspace policy: %s", *k.ExpirationDate)
		}
		// Existing keys are untouched.
		var old apiKey
		ok(t, h.get(keysPath+"/"+before.KeyID, h.boot.AdminKeySecret), &old)
		if old.ExpirationDate != nil {
			t.Errorf("an existing key got expiration %s", *old.ExpirationDate)
		}
		ok(t, h.send("PUT", "/v1/admin/api-key-policy", map[string]any{"max_expiration_days": nil}), &policy)
		ok(t, h.get(wsPolicy, h.boot.AdminKeySecret), &wp)
		if wp.Effective == nil || *wp.Effective != 7 {
			t.Errorf("after removing the Organization's policy: %+v", wp)
		}
		expectValidation(t, h.send("PUT", "/v1/admin/api-key-policy", map[string]any{"max_expiration_days": 0}), "body.max_expiration_days")
		entries := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=api_key_policy.update")
		if len(entries) != 3 || entries[2].EventMetadata["max_expiration_days_before"] != "none" || entries[2].EventMetadata["max_expiration_days_after"] != "30" {
			t.Errorf("policy audit = %+v", entries)
		}
	})
}
