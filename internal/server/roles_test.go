package server_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
)

type role struct {
	Name         string `json:"name"`
	UUID         string `json:"uuid"`
	Description  string `json:"description"`
	IsCustomRole bool   `json:"is_custom_role"`
}

type roles struct {
	WorkspaceRoles    []role `json:"workspace_roles"`
	OrganizationRoles []role `json:"organization_roles"`
}

func TestRolesListsBuiltinRolesWithMistralsUUIDs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var out roles
		ok(t, h.get(rolesPath, h.boot.AdminKeySecret), &out)
		org := map[string]string{}
		for _, r := range out.OrganizationRoles {
			org[r.Name] = r.UUID
			if r.Description == "" || r.IsCustomRole {
				t.Errorf("organization role %+v", r)
			}
		}
		if org["member"] != "0d48f530-095c-43fe-8aea-6673bcacabe6" || org["billing_manager"] != "c955f4e1-9477-43f0-8349-6fbc629fccc9" ||
			org["organization_admin"] != "7bde5959-d676-47d2-b779-35b64323d278" || len(org) != 3 {
			t.Errorf("organization roles = %v", org)
		}
		ws := map[string]string{}
		for _, r := range out.WorkspaceRoles {
			ws[r.Name] = r.UUID
		}
		if len(ws) != 11 || ws["billing"] != "d7ea77c5-9260-41d0-ab26-52b5add3ee56" || ws["workspace_admin"] != "731eb2be-a74f-4070-b797-35bf7009e553" ||
			ws["workflow_executor"] != "0f9acbf6-93b5-42c7-a227-fc7652755f65" || ws["workspace_contributor"] != "b23cd6e0-91cd-4a8a-9869-b30366bf3966" {
			t.Errorf("workspace roles = %v", ws)
		}
	})
}

type customRole struct {
	UUID         string   `json:"uuid"`
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Scope        string   `json:"scope"`
	Permissions  []string `json:"permissions"`
	IsCustomRole bool     `json:"is_custom_role"`
}

func TestCustomRoles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var created customRole
		ok(t, h.send("POST", customPath, map[string]any{
			"name": "auditor", "description": "Reads the audit log", "scope": "organization",
			"permissions": []string{"audit.read", "usage.read", "audit.read"},
		}), &created)
		if created.Name != "auditor" || created.Scope != "organization" || !created.IsCustomRole || !slices.Equal(created.Permissions, []string{"audit.read", "usage.read"}) {
			t.Fatalf("created = %+v", created)
		}
		var all roles
		ok(t, h.get(rolesPath, h.boot.AdminKeySecret), &all)
		if !slices.ContainsFunc(all.OrganizationRoles, func(r role) bool { return r.UUID == created.UUID && r.IsCustomRole && r.Name == "auditor" }) {
			t.Errorf("GET /roles does not list the custom role: %+v", all.OrganizationRoles)
		}

		// Assignable by name and by UUID; Mistral's member object keeps the
		// built-in base role, the roles extension shows the custom one.
		id := h.createUsers(t, newUser("aud@example.com", "role_names", []string{"auditor"})).EmailToUserID["aud@example.com"]
		if m := h.member(t, id); !slices.Equal(m.RawRoles, []string{roleMember}) {
			t.Errorf("raw_roles of a custom-role holder = %v", m.RawRoles)
		}
		var userRoles struct {
			OrganizationRoles []struct {
				UUID         string `json:"uuid"`
				Name         string `json:"name"`
				IsCustomRole bool   `json:"is_custom_role"`
			} `json:"organization_roles"`
			Workspaces []struct {
				WorkspaceUUID string `json:"workspace_uuid"`
			} `json:"workspaces"`
		}
		ok(t, h.get(usersPath+"/"+id+"/roles", h.boot.AdminKeySecret), &userRoles)
		if len(userRoles.OrganizationRoles) != 2 || userRoles.OrganizationRoles[1].Name != "auditor" || !userRoles.OrganizationRoles[1].IsCustomRole ||
			len(userRoles.Workspaces) != 1 {
			t.Errorf("roles of the holder = %+v", userRoles)
		}
		ok(t, h.send("PATCH", usersPath+"/"+id, map[string]any{"roles": []string{"B", created.UUID}}), nil)

		e := expectError(t, h.send("DELETE", customPath+"/"+created.UUID, nil), http.StatusConflict, "invalid_request_error")
		if !strings.Contains(e.Message, "held") {
			t.Errorf("deleting a held role: %q", e.Message)
		}
		var updated customRole
		ok(t, h.send("PATCH", customPath+"/"+created.UUID, map[string]any{"name": "reader", "permissions": []string{"members.read"}}), &updated)
		if updated.Name != "reader" || !slices.Equal(updated.Permissions, []string{"members.read"}) || updated.Description != "Reads the audit log" {
			t.Errorf("updated = %+v", updated)
		}
		ok(t, h.send("PATCH", usersPath+"/"+id, map[string]any{"role_names": []string{"member"}}), nil)
		ok(t, h.send("DELETE", customPath+"/"+created.UUID, nil), nil)
		expectError(t, h.get(customPath+"/"+created.UUID, h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")

		// Steward-only events are kept, but not in Mistral's listing.
		for _, e := range h.auditLogs(t, h.boot.AdminKeySecret, "limit=100") {
			if strings.HasPrefix(e.EventType, "role.") {
				t.Errorf("Mistral's audit listing shows the Steward-only event %s", e.EventType)
			}
		}
	})
}

func TestCustomRoleValidation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		h.customRole("ops", "workspace", "models.use")
		for _, tc := range []struct {
			body   map[string]any
			status int
			fields []string
		}{
			{map[string]any{"name": "x", "scope": "galaxy", "permissions": []string{"audit.read"}}, 422, []string{"body.scope"}},
			{map[string]any{"name": "", "scope": "organization", "permissions": []string{"audit.read"}}, 422, []string{"body.name"}},
			{map[string]any{"name": "x", "scope": "organization", "permissions": []string{}}, 422, []string{"body.permissions"}},
			{map[string]any{"name": "x", "scope": "organization", "permissions": []string{"fly"}}, 422, []string{"body.permissions.0"}},
			{map[string]any{"name": "x", "scope": "organization", "permissions": []string{"models.use"}}, 422, []string{"body.permissions.0"}},
			{map[string]any{"name": "Organization_Admin", "scope": "organization", "permissions": []string{"audit.read"}}, 409, nil},
			{map[string]any{"name": "ops", "scope": "workspace", "permissions": []string{"models.use"}}, 409, nil},
		} {
			r := h.send("POST", customPath, tc.body)
			if tc.status == 422 {
				expectValidation(t, r, tc.fields...)
			} else {
				expectError(t, r, tc.status, "invalid_request_error")
			}
		}
		// The same name in the other scope is another role.
		h.customRole("ops", "organization", "audit.read")
		var perms struct {
			Organization []struct{ Name, Description string } `json:"organization"`
			Workspace    []struct{ Name, Description string } `json:"workspace"`
		}
		ok(t, h.get("/v1/admin/permissions", h.boot.AdminKeySecret), &perms)
		if len(perms.Organization)+len(perms.Workspace) != len(steward.Permissions) || perms.Workspace[0].Name != "models.use" {
			t.Errorf("permissions = %+v", perms)
		}
	})
}
