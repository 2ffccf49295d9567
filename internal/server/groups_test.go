package server_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type group struct {
	UUID              string   `json:"uuid"`
	Name              string   `json:"name"`
	Description       *string  `json:"description"`
	ExternallyManaged *bool    `json:"externally_managed"`
	TargetType        *string  `json:"target_type"`
	OrganizationRole  *string  `json:"organization_role"`
	ParentGroupIDs    []string `json:"parent_group_ids"`
}

type access struct {
	OrganizationRoles []effective `json:"organization_roles"`
	WorkspaceRoles    []effective `json:"workspace_roles"`
	Permissions       []string    `json:"permissions"`
	CanUseModels      bool        `json:"can_use_models"`
}

type effective struct {
	Role struct {
		Name string `json:"name"`
	} `json:"role"`
	Sources []struct {
		Kind      string  `json:"kind"`
		GroupName *string `json:"group_name"`
	} `json:"sources"`
}

func (h *harness) access(t *testing.T, user, ws string) access {
	t.Helper()
	var a access
	ok(t, h.get("/v1/admin/users/"+user+"/access/"+ws, h.boot.AdminKeySecret), &a)
	return a
}

// roleSources renders effective roles as "role<-source[:group]" strings.
func roleSources(roles []effective) []string {
	var out []string
	for _, r := range roles {
		for _, s := range r.Sources {
			v := r.Role.Name + "<-" + s.Kind
			if s.GroupName != nil {
				v += ":" + *s.GroupName
			}
			out = append(out, v)
		}
	}
	return out
}

func noContent(t *testing.T, r response) {
	t.Helper()
	if r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("status %d, want 204 without a body; body %s", r.status, r.body)
	}
}

func TestGroupsGiveAccessLive(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ids := h.createUsers(t, newUser("ann@example.com"), newUser("bob@example.com")).EmailToUserID
		ann, bob := ids["ann@example.com"], ids["bob@example.com"]
		ws := h.workspace("Lab")

		// A direct role, then a group nested in another that is provisioned.
		ok(t, h.send("POST", wsPath+"/"+ws+"/add-users", map[string]any{"members": []map[string]any{{"user_uuid": ann, "role_names": []string{"billing"}}}}), nil)
		all := h.group("Everyone", "description", "All staff", "target_type", "W")
		eng := h.group("Engineering", "parent_group_ids", []string{all})
		noContent(t, h.send("POST", groupPath+"/"+eng+"/members", map[string]any{"user_uuids": []string{ann, bob}}))
		if a := h.access(t, bob, ws); a.CanUseModels || len(a.WorkspaceRoles) != 0 {
			t.Fatalf("bob has access before any assignment: %+v", a)
		}
		noContent(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{"user_group_uuid": all, "workspace_uuid": ws, "workspace_role_name": "dev"}))
		a := h.access(t, bob, ws)
		if !a.CanUseModels || !slices.Equal(roleSources(a.WorkspaceRoles), []string{"dev<-group:Everyone"}) {
			t.Fatalf("bob through nesting: %+v", roleSources(a.WorkspaceRoles))
		}
		if got := roleSources(h.access(t, ann, ws).WorkspaceRoles); !slices.Equal(got, []string{"billing<-direct", "dev<-group:Everyone"}) {
			t.Fatalf("ann: %v", got)
		}
		// The member object shows effective Workspace roles.
		dev, _ := steward.BuiltinRole(steward.ScopeWorkspace, "dev")
		var bobWS []string
		for _, w := range h.member(t, bob).Workspaces {
			if w.UUID == ws {
				bobWS = w.RawRoles
			}
		}
		if !slices.Equal(bobWS, []string{dev.ID}) {
			t.Errorf("bob's member object lists %v in Lab, want dev", bobWS)
		}

		// Changing and removing the assignment follows at once; direct roles stay.
		noContent(t, h.send("PATCH", groupPath+"/"+all+"/workspaces/"+ws, map[string]any{"role_names": []string{"user", "observability_viewer"}}))
		if got := roleSources(h.access(t, bob, ws).WorkspaceRoles); !slices.Equal(got, []string{"user<-group:Everyone", "observability_viewer<-group:Everyone"}) &&
			!slices.Equal(got, []string{"observability_viewer<-group:Everyone", "user<-group:Everyone"}) {
			t.Errorf("after PATCH: %v", got)
		}
		noContent(t, h.send("DELETE", groupPath+"/"+all+"/workspaces/"+ws, nil))
		if got := roleSources(h.access(t, ann, ws).WorkspaceRoles); !slices.Equal(got, []string{"billing<-direct"}) {
			t.Errorf("after removing the assignment, ann has %v; the direct role must stay", got)
		}

		// Leaving a group ends its access at once.
		if r := h.send("POST", groupPath+"/"+eng+"/workspaces", map[string]any{"workspace_uuid": ws, "roles": []string{"M"}}); r.status != http.StatusCreated {
			t.Fatalf("assign: %d %s", r.status, r.body)
		}
		expectError(t, h.send("POST", groupPath+"/"+eng+"/workspaces", map[string]any{"workspace_uuid": ws}), http.StatusConflict, "invalid_request_error")
		if !h.access(t, bob, ws).CanUseModels {
			t.Fatal("bob cannot use the models through Engineering")
		}
		noContent(t, h.send("DELETE", groupPath+"/"+eng+"/members", map[string]any{"user_uuids": []string{bob}}))
		if a := h.access(t, bob, ws); a.CanUseModels || len(a.WorkspaceRoles) != 0 {
			t.Errorf("bob keeps %v after leaving the group", roleSources(a.WorkspaceRoles))
		}

		// A group's Organization role makes its members admins, with full
		// access to every Workspace.
		noContent(t, h.send("PATCH", groupPath+"/"+eng+"/organization-role", map[string]any{"organization_role": "organization_admin"}))
		a = h.access(t, ann, ws)
		if !slices.Contains(roleSources(a.OrganizationRoles), "organization_admin<-group:Engineering") ||
			!slices.Contains(roleSources(a.WorkspaceRoles), "workspace_admin<-organization_admin") {
			t.Errorf("ann through Engineering's role: org %v, workspace %v", roleSources(a.OrganizationRoles), roleSources(a.WorkspaceRoles))
		}
		var g group
		ok(t, h.get(groupPath+"/"+eng, h.boot.AdminKeySecret), &g)
		if g.OrganizationRole == nil || *g.OrganizationRole != "organization_admin" || !slices.Equal(g.ParentGroupIDs, []string{all}) {
			t.Errorf("group = %+v", g)
		}

		// Deleting a group removes its links and its access.
		noContent(t, h.send("DELETE", groupPath+"/"+eng, nil))
		if a := h.access(t, ann, ws); len(a.OrganizationRoles) != 1 || !slices.Equal(roleSources(a.WorkspaceRoles), []string{"billing<-direct"}) {
			t.Errorf("after deleting the group: %v / %v", roleSources(a.OrganizationRoles), roleSources(a.WorkspaceRoles))
		}
		var nested struct {
			Children []struct{ UUID string } `json:"children"`
		}
		ok(t, h.get(groupPath+"/"+all+"/nested", h.boot.AdminKeySecret), &nested)
		if len(nested.Children) != 0 {
			t.Errorf("the deleted group is still nested: %+v", nested)
		}
		for event, want := range map[string]int{"user_group.create": 2, "user_group.member.add": 2, "user_group.member.remove": 1,
			"user_group.workspace.provision": 2, "user_group.workspace.update": 1, "user_group.workspace.deprovision": 1, "user_group.delete": 1} {
			if n := h.eventCount(t, event); n != want {
				t.Errorf("%d %s entries, want %d", n, event, want)
			}
		}
	})
}

func TestGroupNestingRejectsCycles(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		a, b, c := h.group("A"), h.group("B"), h.group("C")
		noContent(t, h.send("PATCH", groupPath+"/"+a+"/nested", map[string]any{"child_group_uuids": []string{b}}))
		noContent(t, h.send("PATCH", groupPath+"/"+b+"/nested", map[string]any{"child_group_uuids": []string{c}}))
		// A change of nesting is audited (newest first); setting it again, from
		// either side, changes nothing.
		noContent(t, h.send("PATCH", groupPath+"/"+b+"/nested", map[string]any{"child_group_uuids": []string{c, c}}))
		if r := h.send("PATCH", groupPath+"/"+c, map[string]any{"parent_group_ids": []string{b}}); r.status != 200 || !strings.Contains(string(r.body), b) {
			t.Fatalf("PATCH parents: %d %s", r.status, r.body)
		}
		entries := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=user_group.update")
		if len(entries) != 2 || entries[0].TargetMetadata["id"] != b || entries[0].EventMetadata["child_group_uuids_before"] != "" ||
			entries[0].EventMetadata["child_group_uuids_after"] != c {
			t.Fatalf("nesting audit entries = %+v", entries)
		}
		v := expectValidation(t, h.send("PATCH", groupPath+"/"+c+"/nested", map[string]any{"child_group_uuids": []string{a}}), "body.child_group_uuids.0")
		if !strings.Contains(v.Detail[0].Msg, "cycle") {
			t.Errorf("cycle message: %q", v.Detail[0].Msg)
		}
		expectValidation(t, h.send("PATCH", groupPath+"/"+a+"/nested", map[string]any{"child_group_uuids": []string{a}}), "body.child_group_uuids.0")
		expectValidation(t, h.send("PATCH", groupPath+"/"+c, map[string]any{"parent_group_ids": []string{c}}), "body.parent_group_ids.0")
		expectValidation(t, h.send("PATCH", groupPath+"/"+a, map[string]any{"parent_group_ids": []string{c}}), "body.parent_group_ids.0")
		expectValidation(t, h.send("POST", groupPath, map[string]any{"name": "D", "parent_group_ids": []string{"6f9619ff-8b86-d011-b42d-00cf4fc964ff"}}), "body.parent_group_ids.0")
		var listed struct {
			Total int     `json:"total"`
			Items []group `json:"items"`
		}
		ok(t, h.get(groupPath+"?search=d", h.boot.AdminKeySecret), &listed)
		if listed.Total != 0 {
			t.Errorf("a group with a bad parent was created: %+v", listed)
		}
		var nested struct {
			Children []struct {
				UUID string `json:"uuid"`
				Name string `json:"name"`
			} `json:"children"`
		}
		ok(t, h.get(groupPath+"/"+b+"/nested", h.boot.AdminKeySecret), &nested)
		if len(nested.Children) != 1 || nested.Children[0].Name != "C" {
			t.Errorf("B's children = %+v", nested.Children)
		}
		ok(t, h.get(groupPath+"?page_size=2", h.boot.AdminKeySecret), &listed)
		if listed.Total != 3 || len(listed.Items) != 2 {
			t.Errorf("groups page = %+v", listed)
		}
	})
}

func TestGroupValidation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		g := h.group("Ops")
		expectError(t, h.send("POST", groupPath, map[string]any{"name": "OPS"}), http.StatusConflict, "invalid_request_error")
		expectValidation(t, h.send("POST", groupPath, map[string]any{"target_type": "X"}), "body.name", "body.target_type")
		expectValidation(t, h.send("POST", groupPath+"/"+g+"/members", map[string]any{"user_uuids": []string{"6f9619ff-8b86-d011-b42d-00cf4fc964ff"}}), "body.user_uuids.0")
		expectValidation(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{
			"user_group_uuid": g, "workspace_uuid": h.boot.DefaultWorkspace.ID, "workspace_role": "A", "workspace_role_name": "dev"}),
			"body.workspace_role", "body.workspace_role_name")
		expectValidation(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{}), "body.user_group_uuid", "body.workspace_uuid")
		expectValidation(t, h.send("PATCH", groupPath+"/"+g+"/organization-role", map[string]any{"organization_role": "king"}), "body.organization_role")
		expectError(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{"user_group_uuid": g, "workspace_uuid": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}),
			http.StatusNotFound, "not_found_error")
		expectError(t, h.send("DELETE", groupPath+"/"+g+"/workspaces/"+h.boot.DefaultWorkspace.ID, nil), http.StatusNotFound, "not_found_error")
		// Provisioning is idempotent: it creates, then replaces the roles.
		for range 2 {
			noContent(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{"user_group_uuid": g, "workspace_uuid": h.boot.DefaultWorkspace.ID, "workspace_role": "A"}))
		}
		var assignments struct {
			Total int `json:"total"`
			Items []struct {
				Roles []struct{ Name string } `json:"roles"`
			} `json:"items"`
		}
		ok(t, h.get(groupPath+"/"+g+"/workspaces", h.boot.AdminKeySecret), &assignments)
		if assignments.Total != 1 || len(assignments.Items[0].Roles) != 1 || assignments.Items[0].Roles[0].Name != "workspace_admin" {
			t.Errorf("assignments = %+v", assignments)
		}
	})
}

func TestExternallyManagedGroupsKeepTheirNameAndMembers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		g := h.group("From Okta")
		ctx := context.Background()
		if err := h.db.Transact(ctx, func(tx *store.Tx) error {
			_, err := tx.Exec(ctx, `UPDATE user_groups SET externally_managed = TRUE WHERE id = ?`, g)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []response{
			h.send("PATCH", groupPath+"/"+g, map[string]any{"name": "Renamed"}),
			h.send("POST", groupPath+"/"+g+"/members", map[string]any{"user_uuids": []string{h.boot.Admin.ID}}),
			h.send("DELETE", groupPath+"/"+g+"/members", map[string]any{"user_uuids": []string{h.boot.Admin.ID}}),
			h.send("DELETE", groupPath+"/"+g, nil),
		} {
			e := expectError(t, r, http.StatusConflict, "invalid_request_error")
			if !strings.Contains(e.Message, "identity provider") {
				t.Errorf("message %q does not say why", e.Message)
			}
		}
		// Everything else stays manageable here.
		noContent(t, h.send("POST", groupPath+"/provision-workspace", map[string]any{"user_group_uuid": g, "workspace_uuid": h.boot.DefaultWorkspace.ID, "workspace_role_name": "user"}))
		noContent(t, h.send("PATCH", groupPath+"/"+g+"/organization-role", map[string]any{"organization_role": "B"}))
		var out group
		ok(t, h.send("PATCH", groupPath+"/"+g, map[string]any{"description": "synced"}), &out)
		if out.Name != "From Okta" || out.ExternallyManaged == nil || !*out.ExternallyManaged || *out.Description != "synced" || *out.OrganizationRole != "billing_manager" {
			t.Errorf("group = %+v", out)
		}
	})
}
