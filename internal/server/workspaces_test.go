package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const (
	wsPath    = "/v1/admin/workspaces"
	groupPath = "/v1/admin/user-groups"
)

type workspace struct {
	UUID         string   `json:"uuid"`
	Name         string   `json:"name"`
	Description  *string  `json:"description"`
	Icon         *string  `json:"icon"`
	MembersCount int      `json:"members_count"`
	IsDefault    bool     `json:"is_default"`
	RawRoles     []string `json:"raw_roles"`
}

type workspacesPage struct {
	Total    int         `json:"total"`
	Items    []workspace `json:"items"`
	Object   string      `json:"object"`
	Page     int         `json:"page"`
	PageSize int         `json:"page_size"`
}

func (h *harness) workspaceNamed(t *testing.T, query, name string) (workspace, bool) {
	t.Helper()
	var page workspacesPage
	ok(t, h.get(wsPath+"?page_size=100&"+query, h.boot.AdminKeySecret), &page)
	for _, ws := range page.Items {
		if ws.Name == name {
			return ws, true
		}
	}
	return workspace{}, false
}

func TestWorkspaceLifecycle(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ids := h.createUsers(t, newUser("ann@example.com"), newUser("bob@example.com"), newUser("cy@example.com")).EmailToUserID
		ann, bob, cy := ids["ann@example.com"], ids["bob@example.com"], ids["cy@example.com"]

		var created workspace
		ok(t, h.send("POST", wsPath, map[string]any{"name": "Research", "description": "Models", "icon": "★", "admin_user_id": ann}), &created)
		if created.Name != "Research" || *created.Icon != "★" || created.MembersCount != 1 || created.IsDefault ||
			!slices.Equal(created.RawRoles, []string{wsAdminRole}) {
			t.Fatalf("created = %+v", created)
		}
		wsID := created.UUID
		if n := h.eventCount(t, "workspace.create"); n != 2 {
			t.Errorf("%d workspace.create entries, want the default's and this one", n)
		}

		// Add members by role name, letter and default; add-users leaves
		// existing members alone.
		var added struct {
			AddedMembersCount int `json:"added_members_count"`
		}
		ok(t, h.send("POST", wsPath+"/"+wsID+"/add-users", map[string]any{"members": []map[string]any{
			{"user_uuid": bob, "role_names": []string{"dev"}},
			{"user_uuid": cy},
			{"user_uuid": ann, "roles": []string{"M"}},
		}}), &added)
		if added.AddedMembersCount != 2 {
			t.Errorf("added %d, want 2 (ann was already the admin)", added.AddedMembersCount)
		}
		dev, _ := steward.BuiltinRole(steward.ScopeWorkspace, "dev")
		roleIn := func(user string) []string {
			for _, w := range h.member(t, user).Workspaces {
				if w.UUID == wsID {
					return w.RawRoles
				}
			}
			return nil
		}
		if got := roleIn(bob); !slices.Equal(got, []string{dev.ID}) {
			t.Errorf("bob's roles = %v, want dev", got)
		}
		if got := roleIn(cy); !slices.Equal(got, []string{wsContrib}) {
			t.Errorf("cy's roles = %v, want workspace_contributor", got)
		}
		if got := roleIn(ann); !slices.Equal(got, []string{wsAdminRole}) {
			t.Errorf("ann's roles changed by add-users: %v", got)
		}

		// PATCH users adds or updates, idempotently.
		body := map[string]any{"members": []map[string]any{{"user_uuid": bob, "role": "A"}, {"user_uuid": h.boot.Admin.ID, "role_name": "billing"}}}
		var both struct {
			AddedMembersCount   int `json:"added_members_count"`
			UpdatedMembersCount int `json:"updated_members_count"`
		}
		ok(t, h.send("PATCH", wsPath+"/"+wsID+"/users", body), &both)
		if both.AddedMembersCount != 1 || both.UpdatedMembersCount != 1 {
			t.Errorf("first PATCH: %+v, want 1 added and 1 updated", both)
		}
		ok(t, h.send("PATCH", wsPath+"/"+wsID+"/users", body), &both)
		if both.AddedMembersCount != 0 || both.UpdatedMembersCount != 0 {
			t.Errorf("repeated PATCH: %+v, want nothing", both)
		}
		if got := roleIn(bob); !slices.Equal(got, []string{wsAdminRole}) {
			t.Errorf("bob after PATCH = %v", got)
		}
		if ws, _ := h.workspaceNamed(t, "", "Research"); ws.MembersCount != 4 {
			t.Errorf("members_count = %d, want 4", ws.MembersCount)
		}

		// Remove members: non-members are reported.
		var removed struct {
			DeletedMembersCount int      `json:"deleted_members_count"`
			NotDeletedMembers   []string `json:"not_deleted_members"`
		}
		stranger := "6f9619ff-8b86-d011-b42d-00cf4fc964ff"
		ok(t, h.send("DELETE", wsPath+"/"+wsID+"/remove-users", map[string]any{"members": []map[string]any{{"user_uuid": cy}, {"user_uuid": stranger}}}), &removed)
		if removed.DeletedMembersCount != 1 || !slices.Equal(removed.NotDeletedMembers, []string{stranger}) {
			t.Errorf("remove = %+v", removed)
		}
		if got := roleIn(cy); got != nil {
			t.Errorf("cy still in the Workspace with %v", got)
		}
		expectValidation(t, h.send("DELETE", wsPath+"/"+wsID+"/remove-users", map[string]any{}), "body.members")
		// Nobody leaves the default Workspace.
		ok(t, h.send("DELETE", wsPath+"/"+h.boot.DefaultWorkspace.ID+"/remove-users", map[string]any{"members": []map[string]any{{"user_uuid": cy}}}), &removed)
		if removed.DeletedMembersCount != 0 || !slices.Equal(removed.NotDeletedMembers, []string{cy}) {
			t.Errorf("removal from the default Workspace = %+v", removed)
		}

		// Rename, then archive.
		var updated workspace
		ok(t, h.send("PATCH", wsPath+"/"+wsID, map[string]any{"name": "Research Lab", "description": nil}), &updated)
		if updated.Name != "Research Lab" || *updated.Description != "Models" {
			t.Errorf("updated = %+v", updated)
		}
		noContent(t, h.send("DELETE", wsPath+"/"+wsID, nil))
		if _, ok := h.workspaceNamed(t, "", "Research Lab"); ok {
			t.Error("the archived Workspace is listed among the active ones")
		}
		if _, ok := h.workspaceNamed(t, "is_archived=true", "Research Lab"); !ok {
			t.Error("the archived Workspace is not listed with is_archived=true")
		}
		if got := roleIn(bob); got != nil {
			t.Errorf("an archived Workspace still appears in bob's Workspaces: %v", got)
		}
		for _, r := range []response{
			h.send("PATCH", wsPath+"/"+wsID, map[string]any{"name": "x"}),
			h.send("POST", wsPath+"/"+wsID+"/add-users", map[string]any{"members": []map[string]any{{"user_uuid": cy}}}),
			h.send("DELETE", wsPath+"/"+wsID, nil),
		} {
			e := expectError(t, r, http.StatusConflict, "invalid_request_error")
			if !strings.Contains(e.Message, "archived") {
				t.Errorf("change to an archived Workspace: %q", e.Message)
			}
		}
		e := expectError(t, h.send("DELETE", wsPath+"/"+h.boot.DefaultWorkspace.ID, nil), http.StatusConflict, "invalid_request_error")
		if !strings.Contains(e.Message, "default Workspace") {
			t.Errorf("archiving the default Workspace: %q", e.Message)
		}
		for event, want := range map[string]int{"workspace.member.add": 4, "workspace.member.role.update": 1, "workspace.member.remove": 1, "workspace.update": 1, "workspace.delete": 1} {
			if n := h.eventCount(t, event); n != want {
				t.Errorf("%d %s entries, want %d", n, event, want)
			}
		}
		// The name of an archived Workspace can be used again.
		h.workspace("Research Lab")
	})
}

func TestWorkspaceRules(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		h.workspace("Alpha")
		e := expectError(t, h.send("POST", wsPath, map[string]any{"name": "alpha", "admin_user_id": h.boot.Admin.ID}), http.StatusConflict, "invalid_request_error")
		if !strings.Contains(e.Message, "already exists") {
			t.Errorf("duplicate name: %q", e.Message)
		}
		expectValidation(t, h.send("POST", wsPath, map[string]any{"admin_user_id": h.boot.Admin.ID, "icon": "abc"}), "body.icon", "body.name")
		expectValidation(t, h.send("POST", wsPath, map[string]any{"name": "x"}), "body.admin_user_id")
		expectError(t, h.send("POST", wsPath, map[string]any{"name": "x", "admin_user_id": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}), http.StatusNotFound, "not_found_error")
		expectValidation(t, h.send("POST", wsPath+"/"+h.boot.DefaultWorkspace.ID+"/add-users",
			map[string]any{"members": []map[string]any{{"user_uuid": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"}}}), "body.members.0.user_uuid")
		expectValidation(t, h.get(wsPath+"?is_archived=maybe&page_size=500", h.boot.AdminKeySecret), "query.is_archived", "query.page_size")

		// add_all_org_members adds everyone, the admin as workspace_admin.
		h.createUsers(t, newUser("a@example.com"), newUser("b@example.com"))
		var all workspace
		ok(t, h.send("POST", wsPath, map[string]any{"name": "Everyone", "admin_user_id": h.boot.Admin.ID, "add_all_org_members": true}), &all)
		if all.MembersCount != 3 {
			t.Errorf("add_all_org_members: %d members, want 3", all.MembersCount)
		}
		// Search and paging.
		for i := range 3 {
			h.workspace(fmt.Sprintf("Team %d", i))
		}
		var page workspacesPage
		ok(t, h.get(wsPath+"?search=TEAM&page_size=2&page=2", h.boot.AdminKeySecret), &page)
		if page.Total != 3 || len(page.Items) != 1 || page.Items[0].Name != "Team 2" || page.Object != "list" {
			t.Errorf("search page = %+v", page)
		}
		ok(t, h.get(wsPath+"?search=100%25", h.boot.AdminKeySecret), &page)
		if page.Total != 0 {
			t.Errorf("a search for %% matched %d Workspaces", page.Total)
		}
	})
}

func TestActiveWorkspaceLimit(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		if testing.Short() {
			t.Skip("creates 500 Workspaces")
		}
		// The default Workspace and 498 made in one transaction, then the
		// last one that fits through the API.
		ctx := context.Background()
		err := directory.InOrganization(ctx, h.db, h.boot.Organization.ID, func(tx *store.Tx, org steward.Organization) error {
			for i := 1; i < steward.MaxActiveWorkspaces-1; i++ {
				name := fmt.Sprintf("w%03d", i)
				in := directory.NewWorkspace{WorkspaceInput: directory.WorkspaceInput{Name: &name}, AdminUserID: h.boot.Admin.ID}
				if _, err := directory.CreateWorkspace(ctx, tx, steward.SystemActor("test"), org, in); err != nil {
					return fmt.Errorf("workspace %d: %w", i, err)
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := h.send("POST", wsPath, map[string]any{"name": "the last", "admin_user_id": h.boot.Admin.ID}); r.status != 200 {
			t.Fatalf("workspace %d: %d %s", steward.MaxActiveWorkspaces, r.status, r.body)
		}
		e := expectError(t, h.send("POST", wsPath, map[string]any{"name": "one too many", "admin_user_id": h.boot.Admin.ID}), http.StatusConflict, "invalid_request_error")
		if !strings.Contains(e.Message, "500") {
			t.Errorf("limit message %q does not say the limit", e.Message)
		}
		// Archiving one makes room again.
		var page workspacesPage
		ok(t, h.get(wsPath+"?page_size=1&page=2", h.boot.AdminKeySecret), &page)
		noContent(t, h.send("DELETE", wsPath+"/"+page.Items[0].UUID, nil))
		h.workspace("one more")
	})
}
