package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
)

// handleListAuditLogs serves GET /audit-logs: the caller's Organization's
// entries, filtered as Mistral documents.
func (s *Server) handleListAuditLogs(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	f := audit.Filter{
		OrganizationID: p.OrganizationID,
		ActorTypes:     q.enumList("actor_type", s.enums["ActorType"]),
		EventTypes:     q.enumList("event_type", s.enums["AuditLogEventType"]),
		TargetTypes:    q.enumList("target_type", s.enums["TargetType"]),
		ActorUserID:    q.optString("actor_user_uuid"),
		Before:         q.optTime("before"),
		After:          q.optTime("after"),
		Ascending:      q.oneOf("sort", "descending", "ascending", "descending") == "ascending",
		Limit:          q.intRange("limit", 20, 1, audit.MaxLimit),
		MistralOnly:    true,
	}
	if err := q.err(); err != nil {
		return err
	}
	entries, err := s.audit.List(r.Context(), f)
	out := make([]audit.Item, len(entries))
	for i, e := range entries {
		out[i] = audit.ItemOf(e)
	}
	return writeResult(w, out, err)
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
