package web

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/usage"
)

// Chart dimensions, in SVG user units.
const (
	chartWidth  = 760.0
	chartHeight = 260.0
	chartLeft   = 64.0
	chartBottom = 24.0
)

var palette = []string{"#3b6fd8", "#e0822b", "#2e9e6a", "#b8459a", "#7a5cd6", "#c9a227", "#3fa7b8", "#d24b4b"}

// otherFill colours what the chart's series beyond the palette add up to.
const otherFill = "#9aa1b2"

type bar struct {
	X, Y, W, H float64
	Fill       string
	Title      string
}

type tick struct {
	Y     float64
	Label string
}

// ticks are five lines of a chart's value axis, from 0 to top.
func ticks(top int64, label func(int64) string) []tick {
	var out []tick
	for i := range int64(5) {
		v := top * i / 4
		out = append(out, tick{Y: chartHeight - float64(v)/float64(top)*(chartHeight-10), Label: label(v)})
	}
	return out
}

type dayLabel struct {
	X     float64
	Label string
}

type chart struct {
	Bars    []bar
	Ticks   []tick
	Days    []dayLabel
	Width   float64
	Height  float64
	Left    float64
	Base    float64
	LabelX  float64
	DayY    float64
	Metric  string
	Summary string
}

// The usage explorer's bounds: the longest range it reads (in hours, the
// rollup it reads, within usage.MaxBuckets) and the groups it names.
const (
	maxExplorerDays = 400
	// maxExplorerGroups is how many of a grouping's values the table lists
	// (the CSV export lists them all).
	maxExplorerGroups = 200
)

// metrics are the measures the explorer shows, in the order it prefers
// them when none is asked for.
var metrics = []string{"cost", "tokens", "requests"}

// groupings are the dimensions the explorer groups by; "" is none.
var groupings = []struct{ Value, Label string }{
	{"", "Nothing (the whole Organization)"},
	{usage.GroupWorkspace, "Workspace"},
	{usage.GroupKey, "API key"},
	{usage.GroupUser, "User"},
	{usage.GroupModel, "Model"},
}

// metricOf reads one metric of some totals.
func metricOf(metric string, t usage.Totals) int64 {
	switch metric {
	case "tokens":
		return t.InputTokens + t.OutputTokens
	case "requests":
		return t.Requests
	}
	return t.Cost
}

func formatMetric(metric string, v int64, currency string) string {
	if metric == "cost" {
		return money(v) + " " + currency
	}
	return strconv.FormatInt(v, 10)
}

// series is one value of the grouping: its name, colour, link and totals.
type series struct {
	ID, Name, Href, Fill string
	usage.Totals
	Value string
}

// explorer is a usage report as the explorer reads it: the totals per
// local day of the Organization's time zone and value of the grouping.
type explorer struct {
	From, To   time.Time // the first and last day, at midnight in Zone
	Zone       *time.Location
	Group      string
	Metric     string
	Days       int
	PerDay     map[string][]usage.Totals // by value of the grouping
	Series     []series                  // by Metric, most first
	Total      usage.Totals
	MetricAuto bool
}

type usageData struct {
	From, To  string
	Group     string
	Metric    string
	Groupings []struct{ Value, Label string }
	Metrics   []string
	Chart     chart
	Series    []series
	Total     usage.Totals
	Zone      string
	// Query is the explorer's query, for the CSV link: a template.URL,
	// since html/template would otherwise escape its = and & as data.
	Query template.URL
	Spent int64
	Meter meter
}

// readExplorer reads the query (from, to: YYYY-MM-DD, days of the
// Organization's time zone, both included; group; metric) and the usage
// it asks for. The range defaults to this month so far; a metric not asked
// for is the first of metrics that has data.
func (h *Handler) readExplorer(r *http.Request, c *reqCtx) (explorer, error) {
	ctx := r.Context()
	q := r.URL.Query()
	zone, err := h.quota.TimeZone(ctx, c.org.ID)
	if err != nil {
		return explorer{}, err
	}
	now := time.Now().In(zone)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, zone)
	ex := explorer{Zone: zone, From: today.AddDate(0, 0, 1-today.Day()), To: today, Group: usage.GroupModel, Metric: q.Get("metric")}
	if q.Has("group") {
		ex.Group = q.Get("group")
	}
	for _, d := range []struct {
		name string
		dst  *time.Time
	}{{"from", &ex.From}, {"to", &ex.To}} {
		if v := q.Get(d.name); v != "" {
			t, err := time.ParseInLocation(time.DateOnly, v, zone)
			if err != nil || t.Year() < 2000 || t.Year() > 9999 {
				return ex, steward.Invalid([]string{"query", d.name}, "%s must be a date, YYYY-MM-DD", d.name)
			}
			*d.dst = t
		}
	}
	ex.Days = int(ex.To.Sub(ex.From).Hours()/24+0.5) + 1
	switch {
	case ex.To.Before(ex.From):
		return ex, steward.Invalid([]string{"query", "to"}, "to must be on or after from")
	case ex.Days > maxExplorerDays:
		return ex, steward.Invalid([]string{"query", "to"}, "the range is longer than %d days: narrow it", maxExplorerDays)
	case !slices.ContainsFunc(groupings, func(g struct{ Value, Label string }) bool { return g.Value == ex.Group }):
		return ex, steward.Invalid([]string{"query", "group"}, "cannot group by %q: use workspace, key, user or model", ex.Group)
	case ex.Metric != "" && !slices.Contains(metrics, ex.Metric):
		return ex, steward.Invalid([]string{"query", "metric"}, "metric must be cost, tokens or requests")
	}
	var groupBy []string
	if ex.Group != "" {
		groupBy = []string{ex.Group}
	}
	// Hours, so that each counts in the local day in which it starts.
	rows, err := h.usage.Report(ctx, c.org.ID, ex.From, ex.To.AddDate(0, 0, 1), usage.Hour, groupBy)
	if err != nil {
		return ex, err
	}
	ex.PerDay = map[string][]usage.Totals{}
	sums := map[string]*series{}
	for _, row := range rows {
		local := row.Start.In(zone)
		i := int(time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone).Sub(ex.From).Hours()/24 + 0.5)
		if i < 0 || i >= ex.Days {
			continue
		}
		id := dimensionOf(ex.Group, row)
		if ex.Group == "" {
			id = "all"
		}
		if ex.PerDay[id] == nil {
			ex.PerDay[id] = make([]usage.Totals, ex.Days)
			sums[id] = &series{ID: id}
		}
		ex.PerDay[id][i].Add(row.Totals)
		sums[id].Add(row.Totals)
		ex.Total.Add(row.Totals)
	}
	if ex.Metric == "" {
		ex.Metric, ex.MetricAuto = "requests", true
		for _, m := range metrics {
			if metricOf(m, ex.Total) > 0 {
				ex.Metric = m
				break
			}
		}
	}
	for _, s := range sums {
		ex.Series = append(ex.Series, *s)
	}
	slices.SortFunc(ex.Series, func(a, b series) int {
		if c := cmp.Compare(metricOf(ex.Metric, b.Totals), metricOf(ex.Metric, a.Totals)); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return ex, h.nameSeries(r, c, &ex)
}

// nameSeries names the values of the grouping: Workspaces and members
// from their lists, keys from theirs (maxKeyPages pages of them).
func (h *Handler) nameSeries(r *http.Request, c *reqCtx, ex *explorer) error {
	base := Prefix + "/o/" + c.org.ID
	var userIDs []string
	if ex.Group == usage.GroupUser {
		for _, s := range ex.Series {
			userIDs = append(userIDs, s.ID)
		}
	}
	n, err := h.names(r, c, userIDs)
	if err != nil {
		return err
	}
	keyNames := map[string]string{}
	if ex.Group == usage.GroupKey {
		all, _, err := h.allKeys(r, c)
		if err != nil {
			return err
		}
		for _, k := range all {
			keyNames[k.ID] = keyName(k)
		}
	}
	for i := range ex.Series {
		s := &ex.Series[i]
		s.Name = s.ID
		switch {
		case ex.Group == "":
			s.Name = c.org.Name
		case s.ID == "":
			s.Name = "none"
		case ex.Group == usage.GroupWorkspace:
			s.Name = cmp.Or(n.workspaces[s.ID], "Workspace "+s.ID)
			if c.perms.Has(steward.PermWorkspacesRead) {
				s.Href = base + "/workspaces/" + s.ID
			}
		case ex.Group == usage.GroupKey:
			s.Name = cmp.Or(keyNames[s.ID], "deleted key "+s.ID)
			if c.perms.Has(steward.PermAPIKeysRead) && keyNames[s.ID] != "" {
				s.Href = base + "/keys/" + s.ID
			}
		case ex.Group == usage.GroupUser:
			s.Name = cmp.Or(n.users[s.ID], "member "+s.ID)
			if c.perms.Has(steward.PermAuditRead) {
				s.Href = base + "/audit?actor=" + url.QueryEscape(s.ID)
			}
		}
		if i < len(palette) {
			s.Fill = palette[i]
		} else {
			s.Fill = otherFill
		}
		s.Value = formatMetric(ex.Metric, metricOf(ex.Metric, s.Totals), h.cfg.Currency)
	}
	return nil
}

// explorerChart draws the days as bars stacked by the grouping's values,
// those beyond the palette together.
func explorerChart(ex explorer, currency string) chart {
	ch := chart{Width: chartWidth, Height: chartHeight + chartBottom, Left: chartLeft, Base: chartHeight,
		LabelX: chartLeft - 6, DayY: chartHeight + 16, Metric: ex.Metric}
	perDay := make([]int64, ex.Days)
	for _, s := range ex.Series {
		for i, t := range ex.PerDay[s.ID] {
			perDay[i] += metricOf(ex.Metric, t)
		}
	}
	var top int64 = 1
	for _, v := range perDay {
		top = max(top, v)
	}
	slot := (chartWidth - chartLeft) / float64(ex.Days)
	stacked := make([]float64, ex.Days)
	for _, s := range ex.Series {
		for i, t := range ex.PerDay[s.ID] {
			v := metricOf(ex.Metric, t)
			if v == 0 {
				continue
			}
			hgt := float64(v) / float64(top) * (chartHeight - 10)
			stacked[i] += hgt
			ch.Bars = append(ch.Bars, bar{X: chartLeft + float64(i)*slot + min(1, slot/4), Y: chartHeight - stacked[i], W: max(slot-min(2, slot/2), 0.5), H: hgt,
				Fill: s.Fill, Title: fmt.Sprintf("%s, %s: %s", ex.From.AddDate(0, 0, i).Format("Jan 2"), s.Name, formatMetric(ex.Metric, v, currency))})
		}
	}
	ch.Ticks = ticks(top, func(v int64) string { return formatMetric(ex.Metric, v, "") })
	every := max(1, ex.Days/8)
	for i := 0; i < ex.Days; i += every {
		ch.Days = append(ch.Days, dayLabel{X: chartLeft + (float64(i)+0.5)*slot, Label: ex.From.AddDate(0, 0, i).Format("Jan 2")})
	}
	by := "stacked by " + ex.Group
	if ex.Group == "" {
		by = "for the whole Organization"
	}
	ch.Summary = fmt.Sprintf("%s per day from %s to %s, %s; %d series, %s in all.", ex.Metric, ex.From.Format("January 2, 2006"), ex.To.Format("January 2, 2006"),
		by, len(ex.Series), formatMetric(ex.Metric, metricOf(ex.Metric, ex.Total), currency))
	return ch
}

func (h *Handler) usageView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Usage", "usage")
	q := r.URL.Query()
	d := usageData{From: q.Get("from"), To: q.Get("to"), Group: q.Get("group"), Metric: q.Get("metric"), Groupings: groupings, Metrics: metrics}
	p.Data = d
	ex, err := h.readExplorer(r, c)
	if err != nil {
		return p, err
	}
	d.From, d.To, d.Group, d.Metric, d.Zone = ex.From.Format(time.DateOnly), ex.To.Format(time.DateOnly), ex.Group, ex.Metric, ex.Zone.String()
	d.Chart, d.Series, d.Total = explorerChart(ex, h.cfg.Currency), ex.Series[:min(len(ex.Series), maxExplorerGroups)], ex.Total
	d.Query = template.URL(url.Values{"from": {d.From}, "to": {d.To}, "group": {d.Group}, "metric": {d.Metric}}.Encode())
	st, err := h.quota.Standing(r.Context(), c.org.ID, "")
	d.Spent, d.Meter = st.Spend.Spent, newMeter(st.Spend)
	p.Data = d
	return p, err
}

// exportUsage writes the explorer's report as CSV: one line a day and value
// of the grouping.
func (h *Handler) exportUsage(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	ex, err := h.readExplorer(r, c)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="usage-`+ex.From.Format(time.DateOnly)+`-`+ex.To.Format(time.DateOnly)+`.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"day", "group", "id", "name", "requests", "input_tokens", "output_tokens", "cost", "currency"})
	for i := range ex.Days {
		for _, s := range ex.Series {
			t := ex.PerDay[s.ID][i]
			if t.Requests == 0 && t.InputTokens == 0 && t.OutputTokens == 0 && t.Cost == 0 {
				continue
			}
			_ = cw.Write([]string{ex.From.AddDate(0, 0, i).Format(time.DateOnly), cmp.Or(ex.Group, "organization"), s.ID, csvSafe(s.Name),
				strconv.FormatInt(t.Requests, 10), strconv.FormatInt(t.InputTokens, 10), strconv.FormatInt(t.OutputTokens, 10), money(t.Cost), h.cfg.Currency})
		}
	}
	cw.Flush()
	return cw.Error()
}
