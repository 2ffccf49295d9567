package web

import (
	"fmt"
	"net/http"
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

// legend is one model: its colour, its month's total, and its bar in the
// per-model chart, Width long out of modelBarWidth.
type legend struct {
	Model, Fill, Total string
	Width              float64
	Y                  float64
}

// modelBarWidth is the longest bar of the per-model chart; modelRow is the
// height of one of its rows.
const (
	modelBarWidth = 420.0
	modelRow      = 26.0
)

type chart struct {
	Bars   []bar
	Ticks  []tick
	Days   []dayLabel
	Legend []legend
	// ModelsHeight is the height of the per-model chart.
	ModelsHeight float64
	Width        float64
	Height       float64
	Left         float64
	Base         float64
	LabelX       float64
	DayY         float64
	Metric       string
	Summary      string
}

type usageData struct {
	Month      string
	Prev, Next string
	Metric     string
	Workspace  string
	Workspaces []steward.Workspace
	Chart      chart
	Spent      int64
	Meter      meter
}

// metricOf reads one metric of a day's totals.
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

// buildChart draws the month's days as bars stacked by model.
func buildChart(rows []usage.DayModel, start time.Time, metric, currency string) chart {
	days := start.AddDate(0, 1, 0).Sub(start).Hours() / 24
	ch := chart{Width: chartWidth, Height: chartHeight + chartBottom, Left: chartLeft, Base: chartHeight,
		LabelX: chartLeft - 6, DayY: chartHeight + 16, Metric: metric}
	var models []string
	perDay := map[int]int64{}
	perModel := map[string]int64{}
	for _, row := range rows {
		if !slices.Contains(models, row.Model) {
			models = append(models, row.Model)
		}
		v := metricOf(metric, row.Totals)
		perDay[row.Day.Day()] += v
		perModel[row.Model] += v
	}
	slices.Sort(models)
	var top int64 = 1
	for _, v := range perDay {
		top = max(top, v)
	}
	slot := (chartWidth - chartLeft) / days
	stacked := map[int]float64{}
	for _, row := range rows {
		v := metricOf(metric, row.Totals)
		if v == 0 {
			continue
		}
		d := row.Day.Day()
		hgt := float64(v) / float64(top) * (chartHeight - 10)
		y := chartHeight - stacked[d] - hgt
		stacked[d] += hgt
		ch.Bars = append(ch.Bars, bar{X: chartLeft + float64(d-1)*slot + 1, Y: y, W: max(slot-2, 1), H: hgt,
			Fill: palette[slices.Index(models, row.Model)%len(palette)], Title: fmt.Sprintf("%s, %s: %s", row.Day.Format("Jan 2"), row.Model, formatMetric(metric, v, currency))})
	}
	ch.Ticks = ticks(top, func(v int64) string { return formatMetric(metric, v, "") })
	for d := 1; d <= int(days); d += 3 {
		ch.Days = append(ch.Days, dayLabel{X: chartLeft + (float64(d)-0.5)*slot, Label: strconv.Itoa(d)})
	}
	var total, most int64 = 0, 1
	for _, m := range models {
		most = max(most, perModel[m])
	}
	for i, m := range models {
		ch.Legend = append(ch.Legend, legend{Model: m, Fill: palette[i%len(palette)], Total: formatMetric(metric, perModel[m], currency),
			Width: float64(perModel[m]) / float64(most) * modelBarWidth, Y: float64(i) * modelRow})
		total += perModel[m]
	}
	ch.ModelsHeight = float64(len(models)) * modelRow
	ch.Summary = fmt.Sprintf("%s per day in %s, stacked by model; %d model(s), %s in all.", metric, start.Format("January 2006"), len(models), formatMetric(metric, total, currency))
	return ch
}

func (h *Handler) usageView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Usage", "usage")
	q := r.URL.Query()
	d := usageData{Metric: q.Get("metric"), Workspace: q.Get("workspace")}
	if d.Metric != "tokens" && d.Metric != "requests" {
		d.Metric = "cost"
	}
	var year, month int
	if m, err := time.Parse("2006-01", q.Get("month")); err == nil && m.Year() >= 2000 && m.Year() <= 9999 {
		year, month = m.Year(), int(m.Month())
	}
	o, err := h.quota.UsageOverview(r.Context(), c.org.ID, d.Workspace, year, month)
	d.Workspaces = o.Workspaces
	d.Month, d.Prev, d.Next = o.Start.Format("2006-01"), o.Start.AddDate(0, -1, 0).Format("2006-01"), o.Start.AddDate(0, 1, 0).Format("2006-01")
	d.Chart = buildChart(o.Days, o.Start, d.Metric, h.cfg.Currency)
	d.Spent, d.Meter = o.Spend.Spent, newMeter(o.Spend)
	p.Data = d
	return p, err
}
