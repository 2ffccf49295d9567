package server

import (
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
)

// auditLogOut is Mistral's AuditLogOut.
type auditLogOut struct {
	CreatedAt        string            `json:"created_at"`
	ActorType        string            `json:"actor_type"`
	ActorMetadata    map[string]string `json:"actor_metadata"`
	EventType        string            `json:"event_type"`
	EventMetadata    map[string]string `json:"event_metadata"`
	TargetType       string            `json:"target_type"`
	TargetMetadata   map[string]string `json:"target_metadata"`
	LogID            int64             `json:"log_id"`
	OrganizationUUID *string           `json:"organization_uuid"`
	WorkspaceUUID    *string           `json:"workspace_uuid"`
}

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
	return writeResult(w, auditLogsOut(entries), err)
}

func auditLogsOut(entries []audit.Entry) []auditLogOut {
	out := make([]auditLogOut, len(entries))
	for i, e := range entries {
		out[i] = auditLogOut{
			CreatedAt:        e.CreatedAt.UTC().Format(time.RFC3339Nano),
			ActorType:        e.Actor.Type,
			ActorMetadata:    nonNil(e.Actor.Metadata),
			EventType:        e.EventType,
			EventMetadata:    nonNil(e.EventMetadata),
			TargetType:       e.TargetType,
			TargetMetadata:   nonNil(e.TargetMetadata),
			LogID:            e.LogID,
			OrganizationUUID: optional(e.OrganizationID),
			WorkspaceUUID:    optional(e.WorkspaceID),
		}
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
