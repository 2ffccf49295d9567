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

	s.admin("GET", "/audit-logs", "/audit-logs", steward.ActionAuditRead, s.handleListAuditLogs)

	s.mux.HandleFunc("/", s.handleNoRoute)
}
