package server_test

import (
	"net/http"
	"strings"
	"testing"
)

func (h *harness) bo(method, path string, body any) response {
	h.t.Helper()
	var b []byte
	if body != nil {
		b = mustJSON(h.t, body)
	}
	return h.do(method, "/v1/backoffice"+path, b, "Authorization", "Bearer "+h.boot.BackofficeSecret)
}

func TestBackofficeFlow(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var ea struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		ok(t, h.bo("PATCH", "/enterprise-account", map[string]any{"name": "Acme Holdings"}), &ea)
		if ea.ID != h.boot.EnterpriseAccount.ID || ea.Name != "Acme Holdings" {
			t.Fatalf("account = %+v", ea)
		}
		var org struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		}
		ok(t, h.bo("POST", "/organizations", map[string]any{"name": "Acme EU"}), &org)
		expectError(t, h.bo("POST", "/organizations", map[string]any{"name": "acme eu"}), http.StatusConflict, "invalid_request_error")
		expectValidation(t, h.bo("POST", "/organizations", map[string]any{}), "body.name")
		expectValidation(t, h.bo("PATCH", "/enterprise-account", map[string]any{}), "body.name")
		var orgs struct {
			Items []struct {
				ID          string `json:"id"`
				MemberCount int    `json:"member_count"`
			} `json:"items"`
		}
		ok(t, h.bo("GET", "/organizations", nil), &orgs)
		if len(orgs.Items) != 2 {
			t.Fatalf("organizations = %+v", orgs)
		}

		// Issue the new Organization an Admin API key and use it.
		var key struct {
			ID             string  `json:"id"`
			Key            string  `json:"key"`
			OrganizationID string  `json:"organization_id"`
			Hint           string  `json:"hint"`
			ExpiresAt      *string `json:"expires_at"`
		}
		ok(t, h.bo("POST", "/admin-keys", map[string]any{"name": "eu automation", "organization_id": org.ID, "expires_at": day(90)}), &key)
		if !strings.HasPrefix(key.Key, "stwa_") || key.OrganizationID != org.ID || key.ExpiresAt == nil || strings.Contains(key.Hint, key.Key[9:20]) {
			t.Fatalf("admin key = %+v", key)
		}
		var users usersPage
		ok(t, h.get("/v1/admin/users", key.Key), &users)
		if users.Total != 0 {
			t.Errorf("a new Organization has %d users", users.Total)
		}
		var keysList struct {
			Items []struct {
				ID  string  `json:"id"`
				Key *string `json:"key"`
			} `json:"items"`
		}
		ok(t, h.bo("GET", "/admin-keys", nil), &keysList)
		if len(keysList.Items) != 2 || keysList.Items[0].Key != nil {
			t.Errorf("admin keys = %+v", keysList)
		}
		noContent(t, h.bo("DELETE", "/admin-keys/"+key.ID, nil))
		e := expectError(t, h.get("/v1/admin/users", key.Key), http.StatusUnauthorized, "authentication_error")
		if !strings.Contains(e.Message, "revoked") {
			t.Errorf("a deleted admin key: %q", e.Message)
		}
		// Both audited in the Organization's log.
		orgLog := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=admin_api_key.created")
		if len(orgLog) != 1 {
			t.Errorf("the first Organization's log shows %d admin key creations, want only its own", len(orgLog))
		}

		// Members: only admins of a linked Organization; promote makes one.
		ids := h.createUsers(t, newUser("ops@example.com")).EmailToUserID
		ops := ids["ops@example.com"]
		v := expectValidation(t, h.bo("POST", "/members", map[string]any{"email": "ops@example.com"}), "body.user_id")
		if !strings.Contains(v.Detail[0].Msg, "organization_admin") {
			t.Errorf("message %q", v.Detail[0].Msg)
		}
		ok(t, h.send("PATCH", usersPath+"/"+ops, map[string]any{"role_names": []string{"organization_admin"}}), nil)
		var member struct {
			UserID  string   `json:"user_id"`
			AdminOf []string `json:"admin_of"`
		}
		ok(t, h.bo("POST", "/members", map[string]any{"user_id": ops}), &member)
		if member.UserID != ops || len(member.AdminOf) != 1 {
			t.Fatalf("member = %+v", member)
		}
		expectError(t, h.bo("POST", "/members", map[string]any{"user_id": ops}), http.StatusConflict, "invalid_request_error")
		var promoted struct {
			Email string `json:"email"`
		}
		ok(t, h.bo("POST", "/organizations/"+org.ID+"/promote", map[string]any{"member_id": ops}), &promoted)
		if promoted.Email != "ops@example.com" {
			t.Errorf("promoted = %+v", promoted)
		}
		var members struct {
			Items []struct {
				UserID  string   `json:"user_id"`
				AdminOf []string `json:"admin_of"`
			} `json:"items"`
		}
		ok(t, h.bo("GET", "/members", nil), &members)
		if len(members.Items) != 2 {
			t.Fatalf("members = %+v", members)
		}
		for _, m := range members.Items {
			if m.UserID == ops && len(m.AdminOf) != 2 {
				t.Errorf("after promotion ops administers %v", m.AdminOf)
			}
		}
		expectError(t, h.bo("POST", "/organizations/"+org.ID+"/promote", map[string]any{"member_id": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}), http.StatusNotFound, "not_found_error")
		expectValidation(t, h.bo("POST", "/organizations/"+org.ID+"/promote", map[string]any{}), "body.member_id")
		expectValidation(t, h.bo("POST", "/admin-keys", map[string]any{}), "body.name", "body.organization_id")
		noContent(t, h.bo("DELETE", "/members/"+ops, nil))
		expectError(t, h.bo("DELETE", "/members/"+h.boot.Admin.ID, nil), http.StatusConflict, "invalid_request_error")
	})
}

// An Admin API key and a SCIM token refuse an expires_at that is not a
// date, with every other problem of the body named too, and create nothing.
func TestExpiryMustBeADate(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, c := range []struct {
			name      string
			send      func(body map[string]any) response
			list      func() response
			otherBody map[string]any
		}{
			{"admin key", func(b map[string]any) response { return h.bo("POST", "/admin-keys", b) },
				func() response { return h.bo("GET", "/admin-keys", nil) }, map[string]any{"organization_id": h.boot.Organization.ID}},
			{"SCIM token", func(b map[string]any) response { return h.send("POST", "/v1/admin/scim-tokens", b) },
				func() response { return h.send("GET", "/v1/admin/scim-tokens", nil) }, map[string]any{}},
		} {
			before := c.list()
			if before.status != http.StatusOK {
				t.Fatalf("%s: list %d %s", c.name, before.status, before.body)
			}
			c.otherBody["expires_at"] = "next week"
			v := expectValidation(t, c.send(c.otherBody), "body.name", "body.expires_at")
			if msg := v.Detail[1].Msg; !strings.Contains(msg, "expires_at must be a date such as 2027-01-31") {
				t.Errorf("%s: message %q", c.name, msg)
			}
			if after := c.list().body; string(after) != string(before.body) {
				t.Errorf("%s: a refused creation changed the list from %s to %s", c.name, before.body, after)
			}
		}
	})
}
