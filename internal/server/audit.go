package server

import (
	"bufio"
	"encoding/json"
	"log/slog"
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

// auditExportLineOut is one line of the export: an entry as the audit log
// lists it, with its place in the Organization's log (seq, numbered from 1
// without gaps) and the cursor that resumes the export after it.
type auditExportLineOut struct {
	audit.Item
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
		return enc.Encode(auditExportLineOut{Item: audit.ItemOf(e.Entry), Seq: e.Seq, Cursor: e.Cursor})
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

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
