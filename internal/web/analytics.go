package web

import (
	"cmp"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/steward"
)

// analyticsLink is a link to the analytics page with the query in, ordered by
// sort, at page n.
func analyticsLink(in analytics.Query, sort string, n int) template.URL {
	v := url.Values{"from": {in.From}, "to": {in.To}, "granularity": {in.Granularity}}
	if in.Workspace != "" {
		v.Set("workspace", in.Workspace)
	}
	if sort != "messages" {
		v.Set("sort", sort)
	}
	if n > 1 {
		v.Set("page", strconv.Itoa(n))
	}
	// The values are query-escaped: the link is safe in an href.
	return template.URL("?" + v.Encode())
}

// codeDay is one day of a Workspace's (or every Workspace's) coding
// activity.
type codeDay struct {
	Day                                    string
	Sessions, Prompts, ActiveUsers, Tokens int64
	ToolCalls, ToolFailures                int64
	Hours                                  float64
}

type analyticsData struct {
	In         analytics.Query
	Zone       string
	Workspaces []steward.Workspace
	Users      []analytics.UserRow
	// TotalUsers counts every user of the report; First and Last number
	// the page's rows, Prev and Next link its neighbours.
	TotalUsers  int
	First, Last int
	Prev, Next  template.URL
	// SortLinks link the users ordered by each column, from the first page.
	SortLinks map[string]template.URL
	// Agents are the agents with most messages, of TotalAgents.
	Agents      []analytics.AgentStat
	TotalAgents int
	Times       []analytics.TimeStat
	Chart       chart
	Code        []codeDay
}

func (h *Handler) analyticsPage(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	p, err := h.analyticsView(r, c)
	if err != nil {
		msg, status, ok := clientError(err)
		if !ok {
			return err
		}
		p.Error = msg
		h.render(w, r, status, "analytics", p)
		return nil
	}
	h.render(w, r, http.StatusOK, "analytics", p)
	return nil
}

// analyticsView loads the page. With bad input it returns the page with
// the form as entered and the error, and no report.
func (h *Handler) analyticsView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Analytics", "analytics")
	var d analyticsData
	p.Data = &d
	zone, err := h.quota.TimeZone(r.Context(), c.org.ID)
	if err != nil {
		return p, err
	}
	d.Zone = zone.String()
	q := r.URL.Query()
	o, err := h.analytics.Overview(r.Context(), c.org.ID, zone, analytics.QueryInput{
		From: q.Get("from"), To: q.Get("to"), Granularity: q.Get("granularity"), Workspace: q.Get("workspace"), Sort: q.Get("sort"), Page: q.Get("page")})
	d.In, d.Workspaces = o.Query, o.Workspaces
	if err != nil {
		return p, err
	}
	d.Users, d.TotalUsers, d.TotalAgents, d.Agents, d.Times = o.Users, o.TotalUsers, o.TotalAgents, o.Agents, o.Times
	d.First, d.Last = o.Offset+1, o.Offset+len(o.Users)
	if o.Offset > 0 {
		d.Prev = analyticsLink(d.In, d.In.Sort, d.In.Page-1)
	}
	if d.Last < d.TotalUsers {
		d.Next = analyticsLink(d.In, d.In.Sort, d.In.Page+1)
	}
	d.SortLinks = map[string]template.URL{}
	for _, s := range analytics.UserOrders() {
		d.SortLinks[s] = analyticsLink(d.In, s, 1)
	}
	for i := range d.Agents {
		d.Agents[i].LastMessageAt = localInstant(d.Agents[i].LastMessageAt, zone)
	}
	for i := range d.Users {
		d.Users[i].LastMessageAt = localInstant(d.Users[i].LastMessageAt, zone)
	}
	d.Chart = timeChart(d.Times, d.In)
	d.Code = codeDays(o.Code)
	return p, nil
}

// localInstant writes a report's instant (UTC, to the second) as a time
// of zone, to the minute.
func localInstant(s string, zone *time.Location) string {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return s
	}
	return t.In(zone).Format("2006-01-02 15:04")
}

// codeDays sums each day of the coding report: sessions, prompts, active
// users, tokens of every model, tool calls (and failed ones) and hours in
// sessions.
func codeDays(s analytics.WorkspaceStats) []codeDay {
	by := map[string]*codeDay{}
	get := func(day string) *codeDay {
		if by[day] == nil {
			by[day] = &codeDay{Day: day}
		}
		return by[day]
	}
	for _, v := range s.Sessions {
		get(v.Day).Sessions = v.Sessions
	}
	for _, v := range s.UserPrompts {
		get(v.Day).Prompts = v.Total
	}
	for _, v := range s.ActiveUsers {
		get(v.Day).ActiveUsers = v.Total
	}
	for _, v := range s.ConsumedTokens {
		get(v.Day).Tokens += v.InputTokens + v.OutputTokens
	}
	for _, v := range s.ToolCalls {
		d := get(v.Day)
		d.ToolCalls, d.ToolFailures = v.Total, v.StatusFailure
	}
	for _, v := range s.SessionDurations {
		get(v.Day).Hours = v.TotalDurationHours
	}
	out := make([]codeDay, 0, len(by))
	for _, d := range by {
		out = append(out, *d)
	}
	slices.SortFunc(out, func(a, b codeDay) int { return cmp.Compare(a.Day, b.Day) })
	return out
}

// bucketStarts lists the starts of the window's buckets (days of its zone,
// or weeks from Monday), as the over-time report names them.
func bucketStarts(w analytics.Window, granularity string) []time.Time {
	t := w.Start
	step := 1
	if granularity == "week" {
		t, step = t.AddDate(0, 0, -((int(t.Weekday())+6)%7)), 7
	}
	var out []time.Time
	for ; t.Before(w.End); t = t.AddDate(0, 0, step) {
		out = append(out, t)
	}
	return out
}

// timeChart draws messages per bucket as bars, one slot for every bucket
// of the window whether it has activity or not.
func timeChart(stats []analytics.TimeStat, in analytics.Query) chart {
	starts := bucketStarts(in.Window, in.Granularity)
	ch := chart{Width: chartWidth, Height: chartHeight + chartBottom, Left: chartLeft, Base: chartHeight,
		LabelX: chartLeft - 6, DayY: chartHeight + 16, Metric: "messages"}
	at := map[string]int{}
	for i, t := range starts {
		at[t.Format(time.RFC3339)] = i
	}
	var top, total int64 = 1, 0
	for _, s := range stats {
		top = max(top, s.MessagesCount)
		total += s.MessagesCount
	}
	slot := (chartWidth - chartLeft) / float64(max(len(starts), 1))
	for _, s := range stats {
		if s.TimeBucket == nil {
			continue
		}
		i, ok := at[*s.TimeBucket]
		if !ok || s.MessagesCount == 0 {
			continue
		}
		hgt := float64(s.MessagesCount) / float64(top) * (chartHeight - 10)
		ch.Bars = append(ch.Bars, bar{X: chartLeft + float64(i)*slot + min(1, slot/4), Y: chartHeight - hgt, W: max(slot-min(2, slot/2), 0.5), H: hgt,
			Fill: palette[0], Title: fmt.Sprintf("%s %s: %d messages, %d users", in.Granularity, starts[i].Format(time.DateOnly), s.MessagesCount, s.UniqueUsersCount)})
	}
	ch.Ticks = ticks(top, func(v int64) string { return strconv.FormatInt(v, 10) })
	every := max(1, (len(starts)+9)/10)
	for i := 0; i < len(starts); i += every {
		ch.Days = append(ch.Days, dayLabel{X: chartLeft + (float64(i)+0.5)*slot, Label: starts[i].Format("Jan 2")})
	}
	ch.Summary = fmt.Sprintf("Chat messages per %s from %s to %s: %d in all, in %d of %d %ss with activity. The table below lists the figures.",
		in.Granularity, in.From, in.To, total, len(stats), len(starts), in.Granularity)
	return ch
}
