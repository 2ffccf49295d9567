package server

import (
	"bufio"
	"encoding/json"
	"log/slog"
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
		out[i] = auditLogOutOf(e)
	}
	return out
}

func auditLogOutOf(e audit.Entry) auditLogOut {
	return auditLogOut{
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

// auditExportLineOut is one line of the export: an entry as the audit log
// lists it, with its place in the Organization's log (seq, numbered from 1
// without gaps) and the cursor that resumes the export after it.
type auditExportLineOut struct {
	auditLogOut
	Seq    int64  `json:"seq"`
	Cursor string `json:"cursor"`
}

// nextCursorHeader carries the cursor that resumes the export after an
// answer: the last line's, or the cursor asked for when there is none.
const nextCursorHeader = "Steward-Next-Cursor"

// handleExportAuditLogs serves GET /audit-logs/export: the caller's
// Organization's entries, Steward's own event types included, as NDJSON
// from the cursor on, oldest first. The page is fixed before the answer
// starts, so that its next cursor is a header; the lines are written as
// they are read.
func (s *Server) handleExportAuditLogs(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	cursor := q.stringOr("cursor", "")
	limit := q.intRange("limit", audit.ExportDefaultLimit, 1, audit.ExportMaxLimit)
	if err := q.err(); err != nil {
		return err
	}
	page, err := s.audit.StartExport(r.Context(), p.OrganizationID, cursor, limit)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set(nextCursorHeader, page.Next)
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriterSize(w, 32<<10)
	enc := json.NewEncoder(bw)
	err = s.audit.Export(r.Context(), page, func(e audit.Exported) error {
		return enc.Encode(auditExportLineOut{auditLogOut: auditLogOutOf(e.Entry), Seq: e.Seq, Cursor: e.Cursor})
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil && r.Context().Err() == nil {
		// The status is sent: the client sees a cut answer, whose last
		// whole line's cursor resumes it.
		logFrom(r.Context()).LogAttrs(r.Context(), slog.LevelError, "audit export cut short", slog.String("err", err.Error()))
	}
	return nil
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
