package web

import (
	"io/fs"
	"net/http"

	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
)

// routes lists every page. Pages of an Organization name the Admin API
// action they perform, authorized by steward.Authorize like the API's.
func (h *Handler) routes() {
	h.views = map[string]viewFunc{
		"overview":      h.overviewView,
		"members":       h.membersView,
		"workspaces":    h.workspacesView,
		"workspace":     h.workspaceView,
		"groups":        h.groupsView,
		"group":         h.groupView,
		"keys":          h.keysView,
		"key":           h.keyView,
		"limits":        h.limitsView,
		"usage":         h.usageView,
		"audit":         h.auditView,
		"roles":         h.rolesView,
		"webhooks":      h.webhooksView,
		"webhook":       h.webhookView,
		"sso":           h.ssoView,
		"bo_orgs":       h.backofficeView("Organizations", "orgs"),
		"bo_members":    h.backofficeView("Enterprise Account members", "members"),
		"bo_admin-keys": h.backofficeView("Admin API keys", "admin-keys"),
	}
	assets, _ := fs.Sub(assetFiles, "assets")
	h.mux.Handle("GET "+Prefix+"/assets/", http.StripPrefix(Prefix+"/assets/", http.FileServerFS(assets)))

	h.mux.HandleFunc("GET "+Prefix+"/signin", h.signInPage)
	h.mux.HandleFunc("POST "+Prefix+"/signin", h.signIn)
	h.mux.HandleFunc("GET "+Prefix+"/password/forgot", h.forgotPage)
	h.mux.HandleFunc("POST "+Prefix+"/password/forgot", h.forgot)
	h.mux.HandleFunc("GET "+Prefix+"/password/reset", h.resetPage)
	h.mux.HandleFunc("POST "+Prefix+"/password/reset", h.reset)
	h.mux.HandleFunc("POST "+Prefix+"/sso", h.ssoSignIn)
	h.mux.HandleFunc("GET "+sso.StartPath, h.ssoStart)
	h.mux.HandleFunc("GET "+sso.CallbackPath, h.ssoCallback)
	h.mux.HandleFunc("POST "+sso.ACSPath, h.samlACS)
	h.mux.HandleFunc("GET "+sso.MetadataPath, h.samlMetadata)
	h.mux.HandleFunc("POST "+sso.BackChannelLogoutPath, h.ssoBackChannelLogout)
	h.mux.HandleFunc("POST "+Prefix+"/signout", h.signedIn(h.signOut))
	h.mux.HandleFunc("GET "+Prefix+"/{$}", h.signedIn(h.home))
	h.mux.HandleFunc("GET "+Prefix+"/organizations", h.signedIn(h.organizations))
	h.mux.HandleFunc("GET "+Prefix+"/password", h.signedIn(h.passwordPage))
	h.mux.HandleFunc("POST "+Prefix+"/password", h.signedIn(h.changePassword))

	o := Prefix + "/o/{org}"
	h.mux.HandleFunc("GET "+o+"/{$}", h.panelFor(steward.ActionUsageRead, allPermissions, h.overview))
	h.mux.HandleFunc("GET "+o+"/members", h.panel(steward.ActionMembersRead, h.show("members")))
	h.mux.HandleFunc("POST "+o+"/invitations", h.panel(steward.ActionMembersWrite, h.invite))
	h.mux.HandleFunc("POST "+o+"/invitations/{id}/revoke", h.panel(steward.ActionMembersWrite, h.revokeInvite))
	h.mux.HandleFunc("POST "+o+"/invitations/{id}/resend", h.panel(steward.ActionMembersWrite, h.resendInvite))
	h.mux.HandleFunc("POST "+o+"/members/{user}/role", h.panel(steward.ActionMembersWrite, h.setMemberRole))
	h.mux.HandleFunc("POST "+o+"/members/{user}/remove", h.panel(steward.ActionMembersWrite, h.removeMember))

	h.mux.HandleFunc("GET "+o+"/workspaces", h.panel(steward.ActionWorkspacesRead, h.show("workspaces")))
	h.mux.HandleFunc("POST "+o+"/workspaces", h.panel(steward.ActionWorkspacesWrite, h.createWorkspace))
	h.mux.HandleFunc("GET "+o+"/workspaces/{ws}", h.panel(steward.ActionWorkspacesRead, h.show("workspace")))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}", h.panel(steward.ActionWorkspacesWrite, h.renameWorkspace))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/key-policy", h.panel(steward.ActionAPIKeysWrite, h.setWorkspacePolicy))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/models", h.panel(steward.ActionWorkspacesWrite, h.setWorkspaceModels))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/archive", h.panel(steward.ActionWorkspacesWrite, h.archiveWorkspace))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/limits", h.panel(steward.ActionLimitsWrite, h.setWorkspaceLimits))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/limits/models", h.panel(steward.ActionLimitsWrite, h.saveWorkspaceModelLimits))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/members", h.panel(steward.ActionWorkspacesWrite, h.addWorkspaceMember))
	h.mux.HandleFunc("POST "+o+"/workspaces/{ws}/members/{user}/remove", h.panel(steward.ActionWorkspacesWrite, h.removeWorkspaceMember))

	h.mux.HandleFunc("GET "+o+"/groups", h.panel(steward.ActionGroupsRead, h.show("groups")))
	h.mux.HandleFunc("POST "+o+"/groups", h.panel(steward.ActionGroupsWrite, h.createGroup))
	h.mux.HandleFunc("GET "+o+"/groups/{group}", h.panel(steward.ActionGroupsRead, h.show("group")))
	h.mux.HandleFunc("POST "+o+"/groups/{group}", h.panel(steward.ActionGroupsWrite, h.groupChange(updateGroup)))
	h.mux.HandleFunc("POST "+o+"/groups/{group}/delete", h.panel(steward.ActionGroupsWrite, h.deleteGroup))
	h.mux.HandleFunc("POST "+o+"/groups/{group}/members", h.panel(steward.ActionGroupsWrite, h.groupChange(addGroupMember)))
	h.mux.HandleFunc("POST "+o+"/groups/{group}/members/{user}/remove", h.panel(steward.ActionGroupsWrite, h.groupChange(removeGroupMember)))
	h.mux.HandleFunc("POST "+o+"/groups/{group}/workspaces", h.panel(steward.ActionGroupsWrite, h.groupChange(assignGroup)))
	h.mux.HandleFunc("POST "+o+"/groups/{group}/workspaces/{ws}/remove", h.panel(steward.ActionGroupsWrite, h.groupChange(unassignGroup)))
	h.mux.HandleFunc("POST "+o+"/groups/{group}/nested", h.panel(steward.ActionGroupsWrite, h.groupChange(setNestedGroups)))

	h.mux.HandleFunc("GET "+o+"/keys", h.panel(steward.ActionAPIKeysRead, h.show("keys")))
	h.mux.HandleFunc("POST "+o+"/keys", h.panel(steward.ActionAPIKeysWrite, h.createKey))
	h.mux.HandleFunc("GET "+o+"/keys/{key}", h.panel(steward.ActionAPIKeysRead, h.show("key")))
	h.mux.HandleFunc("POST "+o+"/keys/{key}/models", h.panel(steward.ActionAPIKeysWrite, h.setKeyModels))
	h.mux.HandleFunc("POST "+o+"/keys/{key}/rotate", h.panel(steward.ActionAPIKeysWrite, h.rotateKey))
	h.mux.HandleFunc("POST "+o+"/keys/{key}/delete", h.panel(steward.ActionAPIKeysWrite, h.deleteKey))
	h.mux.HandleFunc("POST "+o+"/key-policy", h.panel(steward.ActionAPIKeysWrite, h.setPolicy))

	h.mux.HandleFunc("GET "+o+"/limits", h.panel(steward.ActionLimitsRead, h.show("limits")))
	h.mux.HandleFunc("POST "+o+"/limits", h.panel(steward.ActionLimitsWrite, h.saveLimits))
	h.mux.HandleFunc("POST "+o+"/limits/models", h.panel(steward.ActionLimitsWrite, h.saveModelLimits))
	h.mux.HandleFunc("GET "+o+"/usage", h.panel(steward.ActionUsageRead, h.show("usage")))
	h.mux.HandleFunc("GET "+o+"/usage.csv", h.panel(steward.ActionUsageRead, h.exportUsage))
	h.mux.HandleFunc("GET "+o+"/analytics", h.panel(steward.ActionUsageRead, h.analyticsPage))
	h.mux.HandleFunc("GET "+o+"/audit", h.panel(steward.ActionAuditRead, h.show("audit")))
	h.mux.HandleFunc("GET "+o+"/audit.csv", h.panel(steward.ActionAuditRead, h.exportAudit))
	h.mux.HandleFunc("GET "+o+"/roles", h.panel(steward.ActionRolesRead, h.show("roles")))
	h.mux.HandleFunc("POST "+o+"/roles", h.panel(steward.ActionRolesWrite, h.createRole))
	h.mux.HandleFunc("POST "+o+"/roles/{role}/delete", h.panel(steward.ActionRolesWrite, h.deleteRole))

	h.mux.HandleFunc("GET "+o+"/webhooks", h.panel(steward.ActionWebhooksRead, h.show("webhooks")))
	h.mux.HandleFunc("POST "+o+"/webhooks", h.panel(steward.ActionWebhooksWrite, h.createWebhook))
	h.mux.HandleFunc("GET "+o+"/webhooks/{hook}", h.panel(steward.ActionWebhooksRead, h.show("webhook")))
	h.mux.HandleFunc("POST "+o+"/webhooks/{hook}", h.panel(steward.ActionWebhooksWrite, h.updateWebhook))
	h.mux.HandleFunc("POST "+o+"/webhooks/{hook}/rotate", h.panel(steward.ActionWebhooksWrite, h.rotateWebhookSecret))
	h.mux.HandleFunc("POST "+o+"/webhooks/{hook}/test", h.panel(steward.ActionWebhooksWrite, h.testWebhook))
	h.mux.HandleFunc("POST "+o+"/webhooks/{hook}/delete", h.panel(steward.ActionWebhooksWrite, h.deleteWebhook))

	h.mux.HandleFunc("GET "+o+"/sso", h.panel(steward.ActionSSORead, h.show("sso")))
	h.mux.HandleFunc("POST "+o+"/sso", h.panel(steward.ActionSSOWrite, h.saveSSO))
	h.mux.HandleFunc("POST "+o+"/sso/delete", h.panel(steward.ActionSSOWrite, h.deleteSSO))

	ea := Prefix + "/ea/{ea}"
	h.mux.HandleFunc("GET "+ea+"/orgs", h.backoffice(h.show("bo_orgs")))
	h.mux.HandleFunc("POST "+ea+"/orgs", h.backoffice(h.eaChange("orgs", "org_created", createOrganization)))
	h.mux.HandleFunc("POST "+ea+"/orgs/{org}/promote", h.backoffice(h.eaChange("orgs", "promoted", promote)))
	h.mux.HandleFunc("GET "+ea+"/members", h.backoffice(h.show("bo_members")))
	h.mux.HandleFunc("POST "+ea+"/members", h.backoffice(h.eaChange("members", "ea_member_added", addEnterpriseMember)))
	h.mux.HandleFunc("POST "+ea+"/members/{user}/remove", h.backoffice(h.eaChange("members", "ea_member_gone", removeEnterpriseMember)))
	h.mux.HandleFunc("GET "+ea+"/admin-keys", h.backoffice(h.show("bo_admin-keys")))
	h.mux.HandleFunc("POST "+ea+"/admin-keys", h.backoffice(h.createAdminKey))
	h.mux.HandleFunc("POST "+ea+"/admin-keys/{key}/delete", h.backoffice(h.eaChange("admin-keys", "admin_key_gone", deleteAdminKey)))
	h.mux.HandleFunc("GET "+ea+"/sso", h.backoffice(h.show("sso")))
	h.mux.HandleFunc("POST "+ea+"/sso", h.backoffice(h.saveSSO))
	h.mux.HandleFunc("POST "+ea+"/sso/delete", h.backoffice(h.deleteSSO))
}
