package web

import (
	"github.com/stewardhq/steward/internal/steward"
)

// actionPermissions are, for each action of the Admin Panel's pages, the
// Organization permissions of which a member needs one: an
// organization_admin holds them all, a billing manager usage.read,
// billing.read and limits.read, a custom role what it lists. An action
// missing here is denied to everyone.
var actionPermissions = map[steward.Action][]steward.Permission{
	steward.ActionAuditRead:       {steward.PermAuditRead},
	steward.ActionMembersRead:     {steward.PermMembersRead},
	steward.ActionMembersWrite:    {steward.PermMembersWrite},
	steward.ActionRolesRead:       {steward.PermRolesWrite},
	steward.ActionRolesWrite:      {steward.PermRolesWrite},
	steward.ActionWorkspacesRead:  {steward.PermWorkspacesRead},
	steward.ActionWorkspacesWrite: {steward.PermWorkspacesWrite},
	steward.ActionGroupsRead:      {steward.PermGroupsWrite},
	steward.ActionGroupsWrite:     {steward.PermGroupsWrite},
	steward.ActionAPIKeysRead:     {steward.PermAPIKeysRead},
	steward.ActionAPIKeysWrite:    {steward.PermAPIKeysWrite},
	steward.ActionLimitsRead:      {steward.PermLimitsRead},
	steward.ActionLimitsWrite:     {steward.PermLimitsWrite},
	steward.ActionUsageRead:       {steward.PermUsageRead},
	steward.ActionWebhooksRead:    {steward.PermWebhooksWrite},
	steward.ActionWebhooksWrite:   {steward.PermWebhooksWrite},
	steward.ActionSSORead:         {steward.PermSSOWrite},
	steward.ActionSSOWrite:        {steward.PermSSOWrite},
}

// overviewPermissions open the overview: it shows spend to whoever may
// see usage or billing, and each of its other parts only to those whose
// permissions show them the page it summarises.
var overviewPermissions = []steward.Permission{steward.PermUsageRead, steward.PermBillingRead}

// hasAny reports whether perms holds one of want; none when want is empty.
func hasAny(perms steward.PermissionSet, want []steward.Permission) bool {
	for _, p := range want {
		if perms.Has(p) {
			return true
		}
	}
	return false
}

// navItem is one entry of the Admin Panel's menu.
type navItem struct {
	Name, Label string
	need        []steward.Permission
}

// panelPages are the Admin Panel's pages in the menu's order, each with
// the permissions that open it (those of the action of its GET route).
var panelPages = []navItem{
	{"overview", "Overview", overviewPermissions},
	{"members", "Members", actionPermissions[steward.ActionMembersRead]},
	{"workspaces", "Workspaces", actionPermissions[steward.ActionWorkspacesRead]},
	{"groups", "Groups", actionPermissions[steward.ActionGroupsRead]},
	{"roles", "Roles", actionPermissions[steward.ActionRolesRead]},
	{"keys", "API keys", actionPermissions[steward.ActionAPIKeysRead]},
	{"limits", "Limits", actionPermissions[steward.ActionLimitsRead]},
	{"usage", "Usage", actionPermissions[steward.ActionUsageRead]},
	{"analytics", "Analytics", actionPermissions[steward.ActionUsageRead]},
	{"audit", "Audit log", actionPermissions[steward.ActionAuditRead]},
	{"webhooks", "Webhooks", actionPermissions[steward.ActionWebhooksRead]},
	{"sso", "Single sign-on", actionPermissions[steward.ActionSSORead]},
}

// pagesFor returns the pages whose menu entries perms show.
func pagesFor(perms steward.PermissionSet) []navItem {
	var out []navItem
	for _, p := range panelPages {
		if hasAny(perms, p.need) {
			out = append(out, p)
		}
	}
	return out
}

// Path is where the page is served, under the Organization's base path.
func (n navItem) Path() string {
	if n.Name == "overview" {
		return "/"
	}
	return "/" + n.Name
}
