package server

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/scim"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/web"
)

// registerRoutes lists every route Steward serves. Admin API routes are
// registered once and served under both /v1/admin and /api/admin.
func (s *Server) registerRoutes() {
	s.public("GET", "/{$}", s.handleRoot)
	s.public("GET", "/healthz", s.handleHealthz)
	s.public("GET", "/readyz", s.handleReadyz)
	for _, prefix := range adminPrefixes {
		s.public("GET", prefix+"/openapi.json", s.handleOpenAPI)
	}
	invitation := web.NewInvitationPage(s.deps.DB, writeError)
	s.public("GET", "/invitations/accept", invitation.Show)
	s.public("POST", "/invitations/accept", invitation.Accept)

	s.admin("GET", "/audit-logs", steward.ActionAuditRead, s.handleListAuditLogs)
	s.admin("GET", "/audit-logs/export", steward.ActionAuditRead, s.handleExportAuditLogs)

	s.admin("GET", "/users", steward.ActionMembersRead, s.handleListUsers)
	s.admin("POST", "/users", steward.ActionMembersWrite, s.handleCreateUsers)
	s.admin("GET", "/users/{user_id}", steward.ActionMembersRead, s.handleGetUser)
	s.admin("PATCH", "/users/{user_id}", steward.ActionMembersWrite, s.handleUpdateUser)
	s.admin("DELETE", "/users/{user_id}", steward.ActionMembersWrite, s.handleDeleteUser)
	s.admin("GET", "/users/{user_id}/roles", steward.ActionMembersRead, s.handleUserRoles)
	s.admin("POST", "/users-invite", steward.ActionMembersWrite, s.handleInviteUsers)
	s.admin("GET", "/users-invite", steward.ActionMembersRead, s.handleListInvites)
	s.admin("DELETE", "/users-invite/{invite_uuid}", steward.ActionMembersWrite, s.handleDeleteInvite)
	s.adminPublic("POST", "/users-invite/accept", s.handleAcceptInvite)

	s.admin("GET", "/users/{user_id}/access/{workspace_uuid}", steward.ActionMembersRead, s.handleUserAccess)

	s.admin("GET", "/workspaces", steward.ActionWorkspacesRead, s.handleListWorkspaces)
	s.admin("POST", "/workspaces", steward.ActionWorkspacesWrite, s.handleCreateWorkspace)
	s.admin("PATCH", "/workspaces/{workspace_uuid}", steward.ActionWorkspacesWrite, s.handleUpdateWorkspace)
	s.admin("DELETE", "/workspaces/{workspace_uuid}", steward.ActionWorkspacesWrite, s.handleArchiveWorkspace)
	s.admin("POST", "/workspaces/{workspace_uuid}/add-users", steward.ActionWorkspacesWrite, s.handleAddWorkspaceUsers)
	s.admin("PATCH", "/workspaces/{workspace_uuid}/users", steward.ActionWorkspacesWrite, s.handleSetWorkspaceUsers)
	s.admin("DELETE", "/workspaces/{workspace_uuid}/remove-users", steward.ActionWorkspacesWrite, s.handleRemoveWorkspaceUsers)
	s.admin("GET", "/workspaces/{workspace_uuid}/allowed-models", steward.ActionWorkspacesRead, s.handleGetWorkspaceModels)
	s.admin("PUT", "/workspaces/{workspace_uuid}/allowed-models", steward.ActionWorkspacesWrite, s.handleSetWorkspaceModels)

	s.admin("GET", "/user-groups", steward.ActionGroupsRead, s.handleListGroups)
	s.admin("POST", "/user-groups", steward.ActionGroupsWrite, s.handleCreateGroup)
	s.admin("POST", "/user-groups/provision-workspace", steward.ActionGroupsWrite, s.handleProvisionGroup)
	s.admin("GET", "/user-groups/{group_uuid}", steward.ActionGroupsRead, s.handleGetGroup)
	s.admin("PATCH", "/user-groups/{group_uuid}", steward.ActionGroupsWrite, s.handleUpdateGroup)
	s.admin("DELETE", "/user-groups/{group_uuid}", steward.ActionGroupsWrite, s.handleDeleteGroup)
	s.admin("GET", "/user-groups/{group_uuid}/members", steward.ActionGroupsRead, s.handleListGroupMembers)
	s.admin("POST", "/user-groups/{group_uuid}/members", steward.ActionGroupsWrite, s.handleAddGroupMembers)
	s.admin("DELETE", "/user-groups/{group_uuid}/members", steward.ActionGroupsWrite, s.handleRemoveGroupMembers)
	s.admin("GET", "/user-groups/{group_uuid}/workspaces", steward.ActionGroupsRead, s.handleListGroupWorkspaces)
	s.admin("POST", "/user-groups/{group_uuid}/workspaces", steward.ActionGroupsWrite, s.handleAssignGroupWorkspace)
	s.admin("PATCH", "/user-groups/{group_uuid}/workspaces/{workspace_uuid}", steward.ActionGroupsWrite, s.handleUpdateGroupWorkspace)
	s.admin("DELETE", "/user-groups/{group_uuid}/workspaces/{workspace_uuid}", steward.ActionGroupsWrite, s.handleRemoveGroupWorkspace)
	s.admin("PATCH", "/user-groups/{group_uuid}/organization-role", steward.ActionGroupsWrite, s.handleSetGroupOrganizationRole)
	s.admin("GET", "/user-groups/{group_uuid}/nested", steward.ActionGroupsRead, s.handleListNestedGroups)
	s.admin("PATCH", "/user-groups/{group_uuid}/nested", steward.ActionGroupsWrite, s.handleSetNestedGroups)

	s.admin("GET", "/api-keys", steward.ActionAPIKeysRead, s.handleListAPIKeys)
	s.admin("POST", "/api-keys", steward.ActionAPIKeysWrite, s.handleCreateAPIKey)
	s.admin("GET", "/api-keys/{key_id}", steward.ActionAPIKeysRead, s.handleGetAPIKey)
	s.admin("DELETE", "/api-keys/{key_id}", steward.ActionAPIKeysWrite, s.handleDeleteAPIKey)
	s.admin("POST", "/api-keys/{key_id}/rotate", steward.ActionAPIKeysWrite, s.handleRotateAPIKey)
	s.admin("GET", "/api-keys/{key_id}/allowed-models", steward.ActionAPIKeysRead, s.handleGetKeyModels)
	s.admin("PUT", "/api-keys/{key_id}/allowed-models", steward.ActionAPIKeysWrite, s.handleSetKeyModels)
	s.admin("GET", "/api-key-policy", steward.ActionAPIKeysRead, s.handleGetPolicy)
	s.admin("PUT", "/api-key-policy", steward.ActionAPIKeysWrite, s.handleSetPolicy)
	s.admin("GET", "/workspaces/{workspace_uuid}/api-key-policy", steward.ActionAPIKeysRead, s.handleGetWorkspacePolicy)
	s.admin("PUT", "/workspaces/{workspace_uuid}/api-key-policy", steward.ActionAPIKeysWrite, s.handleSetWorkspacePolicy)

	s.admin("GET", "/organization", steward.ActionLimitsRead, s.handleGetOrganization)
	s.admin("PATCH", "/organization", steward.ActionLimitsWrite, s.handleUpdateOrganization)
	s.admin("GET", "/rate-limit", steward.ActionLimitsRead, s.handleGetRateLimit)
	s.admin("PUT", "/rate-limit", steward.ActionLimitsWrite, s.handleSetRateLimit)
	s.admin("GET", "/workspaces/{workspace_uuid}/rate-limit", steward.ActionLimitsRead, s.handleGetRateLimit)
	s.admin("PUT", "/workspaces/{workspace_uuid}/rate-limit", steward.ActionLimitsWrite, s.handleSetRateLimit)
	s.admin("GET", "/usage", steward.ActionUsageRead, s.handleUsage)
	s.admin("GET", "/usage/report", steward.ActionUsageRead, s.handleUsageReport)
	s.admin("GET", "/spend-limit", steward.ActionLimitsRead, s.handleGetSpendLimit)
	s.admin("POST", "/spend-limit", steward.ActionLimitsWrite, s.handleSetSpendLimit)
	s.admin("PUT", "/workspaces/{workspace_uuid}/spend-limit", steward.ActionLimitsWrite, s.handleSetWorkspaceSpendLimit)

	s.admin("GET", "/analytics/vibe/work/usage/by_user_stats", steward.ActionUsageRead, s.handleWorkByUser)
	s.admin("GET", "/analytics/vibe/work/usage/by_agent_stats", steward.ActionUsageRead, s.handleWorkByAgent)
	s.admin("GET", "/analytics/vibe/work/usage/by_time_stats", steward.ActionUsageRead, s.handleWorkByTime)
	s.admin("GET", "/analytics/vibe/code/usage/by_workspace", steward.ActionUsageRead, s.handleCodeByWorkspace)
	s.admin("GET", "/analytics/vibe/code/usage/by_organization", steward.ActionUsageRead, s.handleCodeByOrganization)
	// The same reports as Mistral's usage-metrics guide spells them.
	s.admin("GET", "/analytics/lechat/usage/by_user_stats", steward.ActionUsageRead, s.handleWorkByUser)
	s.admin("GET", "/analytics/lechat/usage/by_agent_stats", steward.ActionUsageRead, s.handleWorkByAgent)
	s.admin("GET", "/analytics/lechat/usage/by_time_stats", steward.ActionUsageRead, s.handleWorkByTime)
	s.admin("GET", "/analytics/vibe/usage/by_workspace", steward.ActionUsageRead, s.handleCodeByWorkspace)
	s.admin("GET", "/analytics/vibe/usage/by_organization", steward.ActionUsageRead, s.handleCodeByOrganization)

	s.admin("GET", "/roles", steward.ActionRolesRead, s.handleListRoles)
	s.admin("GET", "/permissions", steward.ActionRolesRead, s.handleListPermissions)
	s.admin("GET", "/custom-roles", steward.ActionRolesRead, s.handleListCustomRoles)
	s.admin("POST", "/custom-roles", steward.ActionRolesWrite, s.handleCreateCustomRole)
	s.admin("GET", "/custom-roles/{role_uuid}", steward.ActionRolesRead, s.handleGetCustomRole)
	s.admin("PATCH", "/custom-roles/{role_uuid}", steward.ActionRolesWrite, s.handleUpdateCustomRole)
	s.admin("DELETE", "/custom-roles/{role_uuid}", steward.ActionRolesWrite, s.handleDeleteCustomRole)

	s.admin("GET", "/scim-tokens", steward.ActionSCIMTokensRead, s.handleListSCIMTokens)
	s.admin("POST", "/scim-tokens", steward.ActionSCIMTokensWrite, s.handleCreateSCIMToken)
	s.admin("DELETE", "/scim-tokens/{token_id}", steward.ActionSCIMTokensWrite, s.handleRevokeSCIMToken)
	s.admin("GET", "/webhooks", steward.ActionWebhooksRead, s.handleListWebhooks)
	s.admin("POST", "/webhooks", steward.ActionWebhooksWrite, s.handleCreateWebhook)
	s.admin("GET", "/webhooks/{webhook_id}", steward.ActionWebhooksRead, s.handleGetWebhook)
	s.admin("PATCH", "/webhooks/{webhook_id}", steward.ActionWebhooksWrite, s.handleUpdateWebhook)
	s.admin("DELETE", "/webhooks/{webhook_id}", steward.ActionWebhooksWrite, s.handleDeleteWebhook)
	s.admin("POST", "/webhooks/{webhook_id}/rotate-secret", steward.ActionWebhooksWrite, s.handleRotateWebhookSecret)
	s.admin("POST", "/webhooks/{webhook_id}/test", steward.ActionWebhooksWrite, s.handleTestWebhook)
	s.admin("GET", "/webhooks/{webhook_id}/deliveries", steward.ActionWebhooksRead, s.handleListWebhookDeliveries)
	s.admin("GET", "/sso", steward.ActionSSORead, s.handleGetSSO)
	s.admin("PUT", "/sso", steward.ActionSSOWrite, s.handlePutSSO)
	s.admin("DELETE", "/sso", steward.ActionSSOWrite, s.handleDeleteSSO)
	s.admin("POST", "/scim/sync", steward.ActionSCIMSync, s.handleTriggerSCIMSync)
	s.admin("GET", "/scim/sync/{run_id}", steward.ActionSCIMSync, s.handleGetSCIMSync)
	// The SCIM service provider authenticates its own tokens (and refuses
	// every other credential) and answers in SCIM's error format.
	for _, p := range s.deps.SCIM.Patterns() {
		s.routes = append(s.routes, mounted(p, SurfaceSCIM, steward.ActionSCIMProvision))
	}
	s.mux.Handle(scim.Prefix, s.deps.SCIM.Handler())

	s.backoffice("GET", "/enterprise-account", s.handleGetEnterpriseAccount)
	s.backoffice("PATCH", "/enterprise-account", s.handleRenameEnterpriseAccount)
	s.backoffice("GET", "/organizations", s.handleListOrganizations)
	s.backoffice("POST", "/organizations", s.handleCreateOrganization)
	s.backoffice("POST", "/organizations/{organization_id}/promote", s.handlePromote)
	s.backoffice("GET", "/members", s.handleListEnterpriseMembers)
	s.backoffice("POST", "/members", s.handleAddEnterpriseMember)
	s.backoffice("DELETE", "/members/{user_id}", s.handleRemoveEnterpriseMember)
	s.backoffice("GET", "/admin-keys", s.handleListAdminKeys)
	s.backoffice("POST", "/admin-keys", s.handleCreateAdminKey)
	s.backoffice("DELETE", "/admin-keys/{key_id}", s.handleDeleteAdminKey)
	s.backoffice("GET", "/sso", s.handleGetSSO)
	s.backoffice("PUT", "/sso", s.handlePutSSO)
	s.backoffice("DELETE", "/sso", s.handleDeleteSSO)

	if s.deps.Web != nil {
		// The Admin Panel and the Backoffice: package web lists their
		// pages, each authorized with steward.Authorize for a session.
		for _, p := range s.deps.Web.Patterns() {
			s.routes = append(s.routes, mounted(p, SurfaceWeb, ""))
		}
		s.mux.Handle(webPrefix, s.deps.Web)
	}

	// The model API: the gateway lists its routes (the check API's
	// included), each authenticating its own credentials.
	for _, rt := range s.deps.Gateway {
		route := mounted(rt.Pattern, SurfaceModels, "")
		s.routes = append(s.routes, route)
		s.mux.Handle(rt.Pattern, rt.Handler)
		switch {
		case !rt.OwnsBody:
		case !strings.Contains(route.Path, "{"):
			s.ownBodyCap[route.Path] = true
		default:
			if s.ownBodyPatterns == nil {
				s.ownBodyPatterns = http.NewServeMux()
			}
			s.ownBodyPatterns.Handle(rt.Pattern, http.NotFoundHandler())
		}
	}

	if s.deps.Analytics != nil {
		s.routes = append(s.routes, Route{Method: "POST", Path: "/v1/analytics/events", Surface: SurfaceEvents})
		s.mux.HandleFunc("POST /v1/analytics/events", s.handleIngestEvents)
	}

	s.mux.Handle("/", apierror.NoRoute(s.mux))
}

// mounted is the route of a pattern that a mounted handler serves:
// "METHOD /path", or "/path" for every method.
func mounted(pattern string, surface Surface, action steward.Action) Route {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "ANY", pattern
	}
	return Route{Method: method, Path: path, Action: action, Surface: surface}
}
