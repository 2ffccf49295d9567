package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/usage"
)

type organization struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	TimeZone string `json:"time_zone"`
}

func TestOrganizationTimeZone(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		org, ws := h.boot.Organization.ID, h.boot.DefaultWorkspace.ID
		var o organization
		ok(t, h.get("/v1/admin/organization", h.boot.AdminKeySecret), &o)
		if o.ID != org || o.Name != h.boot.Organization.Name || o.TimeZone != "UTC" {
			t.Fatalf("GET /organization = %+v", o)
		}
		// 23:30 UTC on 28 February is 1 March in Paris; 22:30 UTC on 31 March
		// is 1 April there (summer time).
		h.recordUsage(t,
			usage.Event{ID: "feb", Time: time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 1},
			usage.Event{ID: "mar", Time: time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 10},
		)
		march := func() (map[string]float64, string) {
			t.Helper()
			var rep struct {
				usageReport
				StartDate string `json:"start_date"`
			}
			ok(t, h.get("/v1/admin/usage?month=3&year=2026", h.boot.AdminKeySecret), &rep)
			days := map[string]float64{}
			for _, d := range rep.Completion.Models["small"]["input_tokens"] {
				days[d.Date] = d.Value
			}
			return days, rep.StartDate
		}
		if days, start := march(); len(days) != 1 || days["2026-03-31"] != 10 || start != "2026-03-01T00:00:00Z" {
			t.Fatalf("March in UTC = %v from %s", days, start)
		}

		ok(t, h.send("PATCH", "/api/admin/organization", map[string]any{"time_zone": "Europe/Paris"}), &o)
		if o.TimeZone != "Europe/Paris" {
			t.Fatalf("after PATCH = %+v", o)
		}
		if days, start := march(); len(days) != 1 || days["2026-03-01"] != 1 || start != "2026-03-01T00:00:00+01:00" {
			t.Fatalf("March in Paris = %v from %s", days, start)
		}

		v := expectValidation(t, h.send("PATCH", "/v1/admin/organization", map[string]any{"time_zone": "Mars/Olympus_Mons"}), "body.time_zone")
		if !strings.Contains(v.Detail[0].Msg, "Mars/Olympus_Mons") {
			t.Errorf("an unknown zone is refused with %q", v.Detail[0].Msg)
		}
		expectValidation(t, h.send("PATCH", "/v1/admin/organization", map[string]any{}), "body.time_zone")
		expectValidation(t, h.send("PATCH", "/v1/admin/organization", map[string]any{"time_zone": "UTC", "name": "x"}), "body.name")
		ok(t, h.get("/v1/admin/organization", h.boot.AdminKeySecret), &o)
		if o.TimeZone != "Europe/Paris" {
			t.Errorf("refused changes changed the zone to %q", o.TimeZone)
		}
		entries := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=organization.update")
		if len(entries) != 1 || entries[0].EventMetadata["time_zone_before"] != "UTC" || entries[0].EventMetadata["time_zone_after"] != "Europe/Paris" {
			t.Errorf("organization.update entries = %+v", entries)
		}
		_, otherKey := h.secondOrganization("Other")
		ok(t, h.get("/v1/admin/organization", otherKey), &o)
		if o.ID == org || o.TimeZone != "UTC" {
			t.Errorf("another Organization's key sees %+v", o)
		}
		expectError(t, h.get("/v1/admin/organization", ""), http.StatusUnauthorized, "authentication_error")
	})
}
