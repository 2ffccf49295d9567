package server

import "github.com/stewardhq/steward/internal/steward"

// registerRoutes lists every route Steward serves. Admin API routes are
// registered once and served under both /v1/admin and /api/admin.
func (s *Server) registerRoutes() {
	s.public("GET", "/healthz", s.handleHealthz)
	s.public("GET", "/readyz", s.handleReadyz)
	for _, prefix := range adminPrefixes {
		s.public("GET", prefix+"/openapi.json", s.handleOpenAPI)
	}
	s.public("GET", "/invitations/accept", s.handleAcceptPage)
	s.public("POST", "/invitations/accept", s.handleAcceptForm)

	s.admin("GET", "/audit-logs", steward.ActionAuditRead, s.handleListAuditLogs)

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

	s.admin("GET", "/roles", steward.ActionRolesRead, s.handleListRoles)
	s.admin("GET", "/permissions", steward.ActionRolesRead, s.handleListPermissions)
	s.admin("GET", "/custom-roles", steward.ActionRolesRead, s.handleListCustomRoles)
	s.admin("POST", "/custom-roles", steward.ActionRolesWrite, s.handleCreateCustomRole)
	s.admin("GET", "/custom-roles/{role_uuid}", steward.ActionRolesRead, s.handleGetCustomRole)
	s.admin("PATCH", "/custom-roles/{role_uuid}", steward.ActionRolesWrite, s.handleUpdateCustomRole)
	s.admin("DELETE", "/custom-roles/{role_uuid}", steward.ActionRolesWrite, s.handleDeleteCustomRole)

	s.mux.HandleFunc("/", s.handleNoRoute)
}
