package server

import (
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/apierror"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/usage"
)

// dayValue is one day of one figure in a usage report.
type dayValue struct {
	Date  string  `json:"date"`
	Value float64 `json:"value"`
}

// basicUsage is Mistral's BasicModelUsageDataJSON: per model, per figure,
// the days of the month.
type basicUsage struct {
	Models map[string]map[string][]dayValue `json:"models"`
}

func emptyUsage() basicUsage { return basicUsage{Models: map[string]map[string][]dayValue{}} }

type priceOut struct {
	EventType     string  `json:"event_type"`
	BillingMetric string  `json:"billing_metric"`
	BillingGroup  string  `json:"billing_group"`
	APIZone       string  `json:"api_zone"`
	ServiceTier   string  `json:"service_tier"`
	Price         float64 `json:"price"`
}

// usageOut is Mistral's UsageOUTJSON.
type usageOut struct {
	Completion   basicUsage `json:"completion"`
	OCR          basicUsage `json:"ocr"`
	Connectors   basicUsage `json:"connectors"`
	LibrariesAPI struct {
		Pages        basicUsage `json:"pages"`
		Tokens       basicUsage `json:"tokens"`
		AudioSeconds basicUsage `json:"audio_seconds"`
	} `json:"libraries_api"`
	FineTuning struct {
		Training map[string]map[string][]dayValue `json:"training"`
		Storage  map[string]int64                 `json:"storage"`
	} `json:"fine_tuning"`
	Audio           basicUsage `json:"audio"`
	AudioCharacters basicUsage `json:"audio_characters"`
	VibeUsage       float64    `json:"vibe_usage"`
	VibeCode        struct {
		Completion      basicUsage `json:"completion"`
		OCR             basicUsage `json:"ocr"`
		Connectors      basicUsage `json:"connectors"`
		Audio           basicUsage `json:"audio"`
		AudioCharacters basicUsage `json:"audio_characters"`
	} `json:"vibe_code"`
	Chat           basicUsage `json:"chat"`
	Date           string     `json:"date"`
	PreviousMonth  *string    `json:"previous_month"`
	NextMonth      *string    `json:"next_month"`
	StartDate      string     `json:"start_date"`
	EndDate        string     `json:"end_date"`
	Currency       *string    `json:"currency"`
	CurrencySymbol *string    `json:"currency_symbol"`
	Prices         []priceOut `json:"prices"`
}

func newUsageOut() usageOut {
	var out usageOut
	out.Completion, out.OCR, out.Connectors, out.Audio, out.AudioCharacters, out.Chat = emptyUsage(), emptyUsage(), emptyUsage(), emptyUsage(), emptyUsage(), emptyUsage()
	out.LibrariesAPI.Pages, out.LibrariesAPI.Tokens, out.LibrariesAPI.AudioSeconds = emptyUsage(), emptyUsage(), emptyUsage()
	out.FineTuning.Training, out.FineTuning.Storage = map[string]map[string][]dayValue{}, map[string]int64{}
	v := &out.VibeCode
	v.Completion, v.OCR, v.Connectors, v.Audio, v.AudioCharacters = emptyUsage(), emptyUsage(), emptyUsage(), emptyUsage(), emptyUsage()
	out.Prices = []priceOut{}
	return out
}

// handleUsage serves GET /usage: the month's usage per model and day, in
// the Organization's time zone.
func (s *Server) handleUsage(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	// 0 is "the current month", which is known once the Organization's
	// time zone is.
	month := q.intRange("month", 0, 1, 12)
	year := q.intRange("year", 0, 2000, 9999)
	workspaceID := q.stringOr("workspace_id", "")
	zone := q.oneOf("api_zone", "global", "global", "us", "eu")
	if err := q.err(); err != nil {
		return err
	}
	m, err := s.quota.UsageMonth(r.Context(), p.OrganizationID, workspaceID, year, month)
	return writeResult(w, s.monthUsageOut(m, zone == "global"), err)
}

// monthUsageOut answers GET /usage with a month's usage: its days only for
// the global API zone, the one Steward serves.
func (s *Server) monthUsageOut(m quota.MonthUsage, global bool) usageOut {
	out := newUsageOut()
	out.Date = formatTime(m.Now)
	out.StartDate, out.EndDate = formatLocalTime(m.Start), formatLocalTime(m.End.Add(-time.Microsecond))
	prev := m.Start.AddDate(0, -1, 0).Format("2006-01")
	out.PreviousMonth = &prev
	if m.End.Before(m.Now) {
		next := m.End.Format("2006-01")
		out.NextMonth = &next
	}
	currency := s.deps.Currency
	symbol := billing.Symbol(currency)
	out.Currency, out.CurrencySymbol = &currency, &symbol
	for _, mp := range s.deps.Prices.Models() {
		out.Prices = append(out.Prices,
			priceOut{EventType: "api_tokens", BillingMetric: "input_tokens", BillingGroup: mp.Model, APIZone: "global", ServiceTier: "standard", Price: mp.InputPerMillion},
			priceOut{EventType: "api_tokens", BillingMetric: "output_tokens", BillingGroup: mp.Model, APIZone: "global", ServiceTier: "standard", Price: mp.OutputPerMillion})
	}
	if !global {
		return out
	}
	for _, d := range m.Days {
		figures := out.Completion.Models[d.Model]
		if figures == nil {
			figures = map[string][]dayValue{}
			out.Completion.Models[d.Model] = figures
		}
		day := d.Day.Format("2006-01-02")
		for name, v := range map[string]float64{
			"input_tokens": float64(d.InputTokens), "output_tokens": float64(d.OutputTokens),
			"requests": float64(d.Requests), "cost": billing.Units(d.Cost),
		} {
			figures[name] = append(figures[name], dayValue{Date: day, Value: v})
		}
	}
	return out
}

type reportRowOut struct {
	Start             string  `json:"start"`
	WorkspaceID       *string `json:"workspace_id"`
	KeyID             *string `json:"key_id"`
	UserID            *string `json:"user_id"`
	Model             *string `json:"model"`
	Requests          int64   `json:"requests"`
	InputTokens       int64   `json:"input_tokens"`
	OutputTokens      int64   `json:"output_tokens"`
	Cost              float64 `json:"cost"`
	EstimatedRequests int64   `json:"estimated_requests"`
	OverrunRequests   int64   `json:"overrun_requests"`
}

type reportOut struct {
	Bucket   string         `json:"bucket"`
	Currency string         `json:"currency"`
	Rows     []reportRowOut `json:"rows"`
}

// handleUsageReport serves the usage report extension: usage per hour or
// day bucket, grouped by any of Workspace, key, user and model.
func (s *Server) handleUsageReport(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	start, end := q.optTime("start"), q.optTime("end")
	bucket := q.oneOf("bucket", "day", "hour", "day")
	groupBy := q.list("group_by")
	if start == nil {
		q.fail("start", "start is required")
	}
	if end == nil {
		q.fail("end", "end is required")
	}
	if start != nil && end != nil && !end.After(*start) {
		q.fail("end", "end must be after start")
	}
	if err := q.err(); err != nil {
		return err
	}
	rows, err := s.usage.Report(r.Context(), p.OrganizationID, *start, *end, usage.Bucket(bucket), groupBy)
	if err != nil {
		// The report names its range from and to; the API, start and end.
		if e := apierror.As(err); e.Kind == steward.KindInvalid && len(e.Field) > 0 {
			name := e.Field[0]
			if renamed, ok := map[string]string{"to": "end", "from": "start"}[name]; ok {
				name = renamed
			}
			e.Field = []string{"query", name}
		}
		return err
	}
	out := reportOut{Bucket: bucket, Currency: s.deps.Currency, Rows: []reportRowOut{}}
	for _, row := range rows {
		out.Rows = append(out.Rows, reportRowOut{Start: formatTime(row.Start), WorkspaceID: optional(row.WorkspaceID), KeyID: optional(row.KeyID),
			UserID: optional(row.UserID), Model: optional(row.Model), Requests: row.Requests, InputTokens: row.InputTokens,
			OutputTokens: row.OutputTokens, Cost: billing.Units(row.Cost), EstimatedRequests: row.EstimatedRequests,
			OverrunRequests: row.OverrunRequests})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
