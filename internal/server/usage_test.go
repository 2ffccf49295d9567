package server_test

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/server"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

func (h *harness) recordUsage(t *testing.T, events ...usage.Event) {
	t.Helper()
	rec := usage.NewRecorder(h.db, usage.Options{})
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(context.Background()) }()
	if err := rec.RecordMany(context.Background(), events); err != nil {
		t.Fatal(err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
	<-done
}

type usageReport struct {
	Completion struct {
		Models map[string]map[string][]struct {
			Date  string  `json:"date"`
			Value float64 `json:"value"`
		} `json:"models"`
	} `json:"completion"`
	PreviousMonth *string `json:"previous_month"`
	NextMonth     *string `json:"next_month"`
	Currency      *string `json:"currency"`
}

func TestUsageReport(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		org, ws := h.boot.Organization.ID, h.boot.DefaultWorkspace.ID
		other := h.workspace("Other")
		day := func(d int) time.Time { return time.Date(2026, 3, d, 12, 0, 0, 0, time.UTC) }
		h.recordUsage(t,
			usage.Event{ID: "1", Time: day(2), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 100, OutputTokens: 10, Cost: 1_500_000},
			usage.Event{ID: "2", Time: day(2), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 50, OutputTokens: 5, Cost: 500_000},
			usage.Event{ID: "3", Time: day(3), OrganizationID: org, WorkspaceID: other, Model: "large", InputTokens: 7, OutputTokens: 3, Cost: 250_000},
			usage.Event{ID: "4", Time: day(3).AddDate(0, 1, 0), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 1000},
		)
		var rep usageReport
		ok(t, h.get("/v1/admin/usage?month=03&year=2026", h.boot.AdminKeySecret), &rep)
		small := rep.Completion.Models["small"]
		if len(rep.Completion.Models) != 2 || len(small["input_tokens"]) != 1 || small["input_tokens"][0].Value != 150 ||
			small["input_tokens"][0].Date != "2026-03-02" || small["requests"][0].Value != 2 || small["cost"][0].Value != 2 {
			t.Fatalf("March = %+v", rep.Completion.Models)
		}
		if *rep.PreviousMonth != "2026-02" || rep.NextMonth == nil || *rep.NextMonth != "2026-04" || *rep.Currency != "USD" {
			t.Errorf("months and currency = %v %v %v", *rep.PreviousMonth, rep.NextMonth, *rep.Currency)
		}
		rep = usageReport{}
		ok(t, h.get(fmt.Sprintf("/v1/admin/usage?month=3&year=2026&workspace_id=%s", other), h.boot.AdminKeySecret), &rep)
		if len(rep.Completion.Models) != 1 || rep.Completion.Models["large"]["output_tokens"][0].Value != 3 {
			t.Errorf("one Workspace = %+v", rep.Completion.Models)
		}
		rep = usageReport{}
		ok(t, h.get("/v1/admin/usage?month=3&year=2026&api_zone=eu", h.boot.AdminKeySecret), &rep)
		if len(rep.Completion.Models) != 0 {
			t.Errorf("the eu zone reports %+v", rep.Completion.Models)
		}
		rep = usageReport{}
		ok(t, h.get("/api/admin/usage", h.boot.AdminKeySecret), &rep)
		if rep.NextMonth != nil {
			t.Errorf("the current month has a next month %v", *rep.NextMonth)
		}
		expectValidation(t, h.get("/v1/admin/usage?month=13&year=20x6&api_zone=mars", h.boot.AdminKeySecret), "query.month", "query.year", "query.api_zone")
		expectError(t, h.get("/v1/admin/usage?workspace_id=6f9619ff-8b86-d011-b42d-00cf4fc964ff", h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")
	})
}

func TestUsageReportExtension(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		org, ws := h.boot.Organization.ID, h.boot.DefaultWorkspace.ID
		at := func(d, hr int) time.Time { return time.Date(2026, 3, d, hr, 30, 0, 0, time.UTC) }
		h.recordUsage(t,
			usage.Event{ID: "a", Time: at(2, 9), OrganizationID: org, WorkspaceID: ws, KeyID: "k1", Model: "small", InputTokens: 10, Cost: 1_000_000},
			usage.Event{ID: "b", Time: at(2, 9), OrganizationID: org, WorkspaceID: ws, KeyID: "k2", Model: "small", InputTokens: 20, Estimated: true},
			usage.Event{ID: "c", Time: at(2, 10), OrganizationID: org, WorkspaceID: ws, KeyID: "k1", Model: "large", InputTokens: 30, Overrun: true},
		)
		type row struct {
			Start             string  `json:"start"`
			KeyID             *string `json:"key_id"`
			Model             *string `json:"model"`
			Requests          int64   `json:"requests"`
			InputTokens       int64   `json:"input_tokens"`
			Cost              float64 `json:"cost"`
			EstimatedRequests int64   `json:"estimated_requests"`
			OverrunRequests   int64   `json:"overrun_requests"`
		}
		var rep struct {
			Bucket string `json:"bucket"`
			Rows   []row  `json:"rows"`
		}
		ok(t, h.get("/v1/admin/usage/report?start=2026-03-02T09:15:00Z&end=2026-03-03T00:00:00Z&bucket=hour&group_by=key", h.boot.AdminKeySecret), &rep)
		if rep.Bucket != "hour" || len(rep.Rows) != 3 || *rep.Rows[0].KeyID != "k1" || rep.Rows[0].Cost != 1 || rep.Rows[1].EstimatedRequests != 1 ||
			rep.Rows[0].Model != nil || rep.Rows[2].Start != "2026-03-02T10:00:00Z" || rep.Rows[0].OverrunRequests != 0 || rep.Rows[2].OverrunRequests != 1 {
			t.Fatalf("hourly by key = %+v", rep.Rows)
		}
		rep.Rows = nil
		ok(t, h.get("/v1/admin/usage/report?start=2026-03-01&end=2026-04-01&group_by=model", h.boot.AdminKeySecret), &rep)
		if len(rep.Rows) != 2 || *rep.Rows[0].Model != "large" || rep.Rows[1].InputTokens != 30 || rep.Rows[1].Requests != 2 {
			t.Fatalf("daily by model = %+v", rep.Rows)
		}
		expectValidation(t, h.get("/v1/admin/usage/report?bucket=week", h.boot.AdminKeySecret), "query.bucket", "query.start", "query.end")
		expectValidation(t, h.get("/v1/admin/usage/report?start=2026-03-02&end=2026-03-01", h.boot.AdminKeySecret), "query.end")
		expectValidation(t, h.get("/v1/admin/usage/report?start=2000-01-01&end=2026-03-01&bucket=hour", h.boot.AdminKeySecret), "query.end")
		expectValidation(t, h.get("/v1/admin/usage/report?start=2026-03-01&end=2026-03-02&group_by=planet", h.boot.AdminKeySecret), "query.group_by")
	})
}

// The usage report lists the price table the gateway costs requests at,
// two prices a model in the table's order; without a table it lists none.
func TestUsageListsThePrices(t *testing.T) {
	type price struct {
		EventType     string  `json:"event_type"`
		BillingMetric string  `json:"billing_metric"`
		BillingGroup  string  `json:"billing_group"`
		APIZone       string  `json:"api_zone"`
		ServiceTier   string  `json:"service_tier"`
		Price         float64 `json:"price"`
	}
	prices, err := billing.NewPrices([]billing.ModelPrice{{Model: "small", InputPerMillion: 0.1, OutputPerMillion: 0.3}, {Model: "large", InputPerMillion: 2, OutputPerMillion: 6}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		prices *billing.Prices
		want   []price
	}{
		{"none", nil, []price{}},
		{"two models", prices, []price{
			{"api_tokens", "input_tokens", "small", "global", "standard", 0.1}, {"api_tokens", "output_tokens", "small", "global", "standard", 0.3},
			{"api_tokens", "input_tokens", "large", "global", "standard", 2}, {"api_tokens", "output_tokens", "large", "global", "standard", 6},
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T, db *store.DB) {
				h := newHarnessWith(t, db, func(d *server.Deps) { d.Prices = c.prices })
				var rep struct {
					Prices []price `json:"prices"`
				}
				ok(t, h.get("/v1/admin/usage", h.boot.AdminKeySecret), &rep)
				if !reflect.DeepEqual(rep.Prices, c.want) {
					t.Fatalf("prices = %+v, want %+v", rep.Prices, c.want)
				}
			})
		})
	}
}
