package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type auditLog struct {
	CreatedAt        time.Time         `json:"created_at"`
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

func (h *harness) auditLogs(t *testing.T, key, query string) []auditLog {
	t.Helper()
	r := h.get("/v1/admin/audit-logs?"+query, key)
	if r.status != 200 {
		t.Fatalf("audit-logs?%s: status %d, body %s", query, r.status, r.body)
	}
	var out []auditLog
	r.decode(t, &out)
	return out
}

func eventTypes(entries []auditLog) []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.EventType
	}
	return out
}

func TestAuditLogsShowTheBootstrap(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, prefix := range []string{"/v1/admin", "/api/admin"} {
			r := h.get(prefix+"/audit-logs", h.boot.AdminKeySecret)
			if r.status != 200 {
				t.Fatalf("%s: status %d", prefix, r.status)
			}
			var entries []auditLog
			r.decode(t, &entries)
			want := []string{"admin_api_key.created", "user.create", "workspace.create", "organization.create"}
			if got := eventTypes(entries); !slices.Equal(got, want) {
				t.Fatalf("%s: event types %v, want %v (newest first)", prefix, got, want)
			}
			org := h.boot.Organization.ID
			for _, e := range entries {
				if e.OrganizationUUID == nil || *e.OrganizationUUID != org {
					t.Errorf("entry %d organization_uuid = %v, want %s", e.LogID, e.OrganizationUUID, org)
				}
				if e.ActorType != "OTHER" || e.ActorMetadata["name"] != "test" {
					t.Errorf("entry %d actor = %s %v, want OTHER named test", e.LogID, e.ActorType, e.ActorMetadata)
				}
			}
			ws := entries[2]
			if ws.WorkspaceUUID == nil || *ws.WorkspaceUUID != h.boot.DefaultWorkspace.ID || ws.TargetType != "WORKSPACE" {
				t.Errorf("workspace.create entry = %+v, want the default Workspace", ws)
			}
			key := entries[0]
			if key.TargetType != "ADMIN_API_KEY" || key.TargetMetadata["id"] != h.boot.AdminKey.ID {
				t.Errorf("admin_api_key.created entry = %+v", key)
			}
			if strings.Contains(string(r.body), h.boot.AdminKeySecret) || strings.Contains(string(r.body), h.boot.BackofficeSecret) {
				t.Errorf("the audit log contains a secret: %s", r.body)
			}
		}
	})
}

// seed writes entries an hour apart, starting at base, into the bootstrap
// Organization's log.
func seed(t *testing.T, h *harness, base time.Time, entries ...audit.Entry) {
	t.Helper()
	ctx := context.Background()
	for i, e := range entries {
		h.db.Now = func() time.Time { return base.Add(time.Duration(i) * time.Hour) }
		e.EnterpriseAccountID = h.boot.EnterpriseAccount.ID
		e.OrganizationID = h.boot.Organization.ID
		if err := h.db.Transact(ctx, func(tx *store.Tx) error {
			return audit.Record(ctx, tx, e)
		}); err != nil {
			t.Fatal(err)
		}
	}
	h.db.Now = time.Now
}

func TestAuditLogFilters(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		human := steward.Actor{Type: "HUMAN", UserID: h.boot.Admin.ID, Metadata: map[string]string{"email": h.boot.Admin.Email}}
		keyActor := steward.Actor{Type: "API_KEY", Metadata: map[string]string{"api_key_id": "k"}}
		seed(t, h, base,
			audit.Entry{Actor: human, EventType: "workspace.update", TargetType: "WORKSPACE", WorkspaceID: h.boot.DefaultWorkspace.ID},
			audit.Entry{Actor: keyActor, EventType: "api_key.create", TargetType: "API_KEY"},
			audit.Entry{Actor: human, EventType: "user.delete", TargetType: "USER"},
			audit.Entry{Actor: keyActor, EventType: "api_key.delete", TargetType: "API_KEY"},
		)
		ts := func(hours int) string {
			return url.QueryEscape(base.Add(time.Duration(hours) * time.Hour).Format(time.RFC3339))
		}
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"after=" + ts(-1), []string{"api_key.delete", "user.delete", "api_key.create", "workspace.update"}},
			{"after=" + ts(-1) + "&sort=ascending", []string{"workspace.update", "api_key.create", "user.delete", "api_key.delete"}},
			{"after=" + ts(0) + "&before=" + ts(3), []string{"user.delete", "api_key.create"}},
			{"after=" + ts(-1) + "&limit=1", []string{"api_key.delete"}},
			{"actor_type=HUMAN&after=" + ts(-1), []string{"user.delete", "workspace.update"}},
			{"actor_type[]=API_KEY&actor_type[]=HUMAN&after=" + ts(-1), []string{"api_key.delete", "user.delete", "api_key.create", "workspace.update"}},
			{"event_type=api_key.create&event_type=user.delete", []string{"user.delete", "api_key.create"}},
			{"event_type=api_key.create&event_type=user.delete&sort=ascending", []string{"api_key.create", "user.delete"}},
			{"event_type=api_key.create&event_type=api_key.delete&limit=1", []string{"api_key.delete"}},
			{"event_type=api_key.delete&event_type=api_key.create&event_type=user.delete&sort=ascending&limit=2", []string{"api_key.create", "user.delete"}},
			{"event_type=api_key.create&event_type=workspace.update&actor_type=API_KEY", []string{"api_key.create"}},
			{"event_type=api_key.create&event_type=user.delete&before=" + ts(2), []string{"api_key.create"}},
			{"target_type=API_KEY", []string{"api_key.delete", "api_key.create"}},
			{"target_type=WORKSPACE&after=" + ts(-1), []string{"workspace.update"}},
			{"actor_user_uuid=" + h.boot.Admin.ID, []string{"user.delete", "workspace.update"}},
			{"actor_user_uuid=nobody", []string{}},
			{"after=2030-01-01&before=2030-01-01T02:00:00", []string{"api_key.create"}},
			{"after=2030-01-01T00:30:00+00:00&sort=ascending&limit=1", []string{"api_key.create"}},
		} {
			got := eventTypes(h.auditLogs(t, h.boot.AdminKeySecret, tc.query))
			if !slices.Equal(got, tc.want) {
				t.Errorf("?%s: got %v, want %v", tc.query, got, tc.want)
			}
		}
		// The default page is 20 entries.
		many := make([]audit.Entry, 25)
		for i := range many {
			many[i] = audit.Entry{Actor: human, EventType: "workspace.update", TargetType: "WORKSPACE"}
		}
		seed(t, h, base.Add(100*time.Hour), many...)
		if n := len(h.auditLogs(t, h.boot.AdminKeySecret, "")); n != 20 {
			t.Errorf("default page has %d entries, want 20", n)
		}
		if n := len(h.auditLogs(t, h.boot.AdminKeySecret, "limit=100")); n != 33 {
			t.Errorf("limit=100 returned %d entries, want all 33", n)
		}
	})
}

func TestAuditLogQueryValidation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, tc := range []struct {
			query  string
			fields []string
		}{
			{"limit=101", []string{"query.limit"}},
			{"limit=0", []string{"query.limit"}},
			{"limit=ten", []string{"query.limit"}},
			{"sort=up", []string{"query.sort"}},
			{"actor_type=ROBOT", []string{"query.actor_type"}},
			{"event_type=user.create&event_type=user.explode", []string{"query.event_type"}},
			{"target_type=PLANET", []string{"query.target_type"}},
			{"before=yesterday", []string{"query.before"}},
			{"after=2030-13-01", []string{"query.after"}},
			{"actor_type=X&limit=1000&sort=sideways", []string{"query.actor_type", "query.sort", "query.limit"}},
		} {
			t.Run(tc.query, func(t *testing.T) {
				v := expectValidation(t, h.get("/v1/admin/audit-logs?"+tc.query, h.boot.AdminKeySecret), tc.fields...)
				if tc.query == "limit=101" && !strings.Contains(v.Detail[0].Msg, "100") {
					t.Errorf("limit message %q does not name the cap", v.Detail[0].Msg)
				}
			})
		}
	})
}

func TestOrganizationsCannotSeeEachOthersAuditLogs(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		other, otherKey := h.secondOrganization("acme")
		mine := h.auditLogs(t, h.boot.AdminKeySecret, "limit=100")
		theirs := h.auditLogs(t, otherKey, "limit=100")
		if len(mine) == 0 || len(theirs) == 0 {
			t.Fatalf("empty logs: mine %d, theirs %d", len(mine), len(theirs))
		}
		for _, e := range mine {
			if *e.OrganizationUUID != h.boot.Organization.ID {
				t.Errorf("first Organization sees entry %d of %s", e.LogID, *e.OrganizationUUID)
			}
		}
		for _, e := range theirs {
			if *e.OrganizationUUID != other.ID {
				t.Errorf("second Organization sees entry %d of %s", e.LogID, *e.OrganizationUUID)
			}
		}
		// Filters cannot widen the scope either.
		for _, q := range []string{"actor_user_uuid=" + h.boot.Admin.ID, "event_type=organization.create", fmt.Sprintf("after=%s", "2000-01-01")} {
			for _, e := range h.auditLogs(t, otherKey, q) {
				if *e.OrganizationUUID != other.ID {
					t.Errorf("?%s: second Organization sees entry %d of %s", q, e.LogID, *e.OrganizationUUID)
				}
			}
		}
	})
}

type auditExportLine struct {
	auditLog
	Seq    int64  `json:"seq"`
	Cursor string `json:"cursor"`
}

// exportAudit reads one answer of the export, checking its media type and
// that every line is one JSON object.
func (h *harness) exportAudit(t *testing.T, key, query string) ([]auditExportLine, string) {
	t.Helper()
	r := h.get("/v1/admin/audit-logs/export?"+query, key)
	if r.status != 200 {
		t.Fatalf("export?%s: status %d, body %s", query, r.status, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Fatalf("export: Content-Type %q", ct)
	}
	var lines []auditExportLine
	for _, text := range strings.Split(strings.TrimSuffix(string(r.body), "\n"), "\n") {
		if text == "" {
			continue
		}
		var l auditExportLine
		if err := json.Unmarshal([]byte(text), &l); err != nil {
			t.Fatalf("export line %q: %v", text, err)
		}
		lines = append(lines, l)
	}
	return lines, r.header.Get("Steward-Next-Cursor")
}

// The export answers NDJSON, oldest first, Steward's own event types
// included, and resumes from the next cursor; a cursor of another
// Organization is refused naming it, and the export needs an Admin API key.
func TestAuditExport(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		err := h.db.Transact(ctx, func(tx *store.Tx) error {
			return audit.Record(ctx, tx, audit.Entry{
				OrganizationID: h.boot.Organization.ID, Actor: steward.SystemActor("alerts"), EventType: audit.EventLimitSpendReached,
				EventMetadata: map[string]string{"threshold": "80"}, TargetType: audit.TargetMonthlyLimit,
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		all, next := h.exportAudit(t, h.boot.AdminKeySecret, "")
		want := []string{"organization.create", "workspace.create", "user.create", "admin_api_key.created", "limit.spend.reached"}
		var got []string
		for i, l := range all {
			got = append(got, l.EventType)
			if l.Seq != int64(i+1) || l.Cursor == "" || l.OrganizationUUID == nil || *l.OrganizationUUID != h.boot.Organization.ID {
				t.Errorf("line %d: seq %d, cursor %q, organization %v", i, l.Seq, l.Cursor, l.OrganizationUUID)
			}
		}
		if !slices.Equal(got, want) || next != all[len(all)-1].Cursor {
			t.Fatalf("export: %v, next %q; want %v and the last line's cursor", got, next, want)
		}
		if all[4].EventMetadata["threshold"] != "80" || all[4].TargetType != "MONTHLY_LIMIT" {
			t.Errorf("alert line: %+v", all[4])
		}

		first, next := h.exportAudit(t, h.boot.AdminKeySecret, "limit=2")
		rest, last := h.exportAudit(t, h.boot.AdminKeySecret, "limit=2&cursor="+url.QueryEscape(next))
		if len(first) != 2 || len(rest) != 2 || rest[0].Seq != 3 || rest[1].Seq != 4 || last != rest[1].Cursor {
			t.Fatalf("pages of 2: %d then %d lines from seq %d", len(first), len(rest), rest[0].Seq)
		}
		none, same := h.exportAudit(t, h.boot.AdminKeySecret, "cursor="+url.QueryEscape(all[4].Cursor))
		if len(none) != 0 || same != all[4].Cursor {
			t.Fatalf("after the last entry: %d lines, next cursor %q; want none and the cursor asked for", len(none), same)
		}

		other, otherKey := h.secondOrganization("other")
		theirs, _ := h.exportAudit(t, otherKey, "limit=1")
		if len(theirs) != 1 || theirs[0].OrganizationUUID == nil || *theirs[0].OrganizationUUID != other.ID {
			t.Fatalf("the other Organization's export: %+v", theirs)
		}
		expectValidation(t, h.get("/v1/admin/audit-logs/export?cursor="+url.QueryEscape(theirs[0].Cursor), h.boot.AdminKeySecret), "query.cursor")
		expectValidation(t, h.get("/v1/admin/audit-logs/export?limit=10001", h.boot.AdminKeySecret), "query.limit")
		expectError(t, h.get("/v1/admin/audit-logs/export", ""), 401, "authentication_error")
		ws := h.boot.DefaultWorkspace.ID
		_, workspaceKey := h.apiKey(ws)
		if r := h.get("/v1/admin/audit-logs/export", workspaceKey); r.status != 401 && r.status != 403 {
			t.Fatalf("a Workspace key: status %d, want 401 or 403", r.status)
		}
	})
}
