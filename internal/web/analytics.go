package web

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// analyticsPerPage is how many users one page of the per-user report
// lists; analyticsAgents how many agents the per-agent table shows, most
// messages first; analyticsDefaultDays is the window shown when none is
// asked for.
const (
	analyticsPerPage     = 50
	analyticsAgents      = 50
	analyticsDefaultDays = 30
)

// analyticsSorts are the per-user report's orders, each largest (or most
// recent) first; the report's own order (most messages) breaks ties.
var analyticsSorts = map[string]func(a, b analytics.UserStat) int{
	"messages": nil,
	"conversations": func(a, b analytics.UserStat) int {
		return cmp.Compare(b.UniqueConversationsCount, a.UniqueConversationsCount)
	},
	"files":        func(a, b analytics.UserStat) int { return cmp.Compare(b.FilesCount, a.FilesCount) },
	"last_message": func(a, b analytics.UserStat) int { return strings.Compare(b.LastMessageAt, a.LastMessageAt) },
}

// analyticsInput is the page's query: an inclusive range of days of the
// Organization's time zone, the over-time report's granularity, the
// Workspace of the coding figures (empty for all), the per-user order and
// page.
type analyticsInput struct {
	From, To    string
	Granularity string
	Workspace   string
	Sort        string
	Page        int
	window      analytics.Window
}

// link is a link to the page with the input, ordered by sort, at page n.
func (in analyticsInput) link(sort string, n int) template.URL {
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

// readAnalyticsInput reads and checks the page's query; today is the
// default last day. Days start at midnight in zone.
func readAnalyticsInput(q url.Values, today time.Time, zone *time.Location) (analyticsInput, error) {
	in := analyticsInput{From: q.Get("from"), To: q.Get("to"), Granularity: q.Get("granularity"), Workspace: q.Get("workspace"), Sort: q.Get("sort")}
	if in.To == "" {
		in.To = today.Format(time.DateOnly)
	}
	if in.From == "" {
		to, err := time.Parse(time.DateOnly, in.To)
		if err != nil {
			to = today
		}
		in.From = to.AddDate(0, 0, 1-analyticsDefaultDays).Format(time.DateOnly)
	}
	if in.Granularity == "" {
		in.Granularity = "day"
	}
	if in.Sort == "" {
		in.Sort = "messages"
	}
	var bad []*steward.Error
	in.Page = 1
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1_000_000 {
			bad = append(bad, steward.Invalid([]string{"query", "page"}, "page must be a whole number from 1 to 1000000, not %q", v))
		}
		in.Page = n
	}
	day := func(name, v string) time.Time {
		t, err := time.ParseInLocation(time.DateOnly, v, zone)
		if err != nil || t.Year() < 1970 {
			bad = append(bad, steward.Invalid([]string{"query", name}, "%s must be a date from 1970 on, as YYYY-MM-DD, not %q", name, v))
		}
		return t
	}
	from, to := day("from", in.From), day("to", in.To)
	if len(bad) == 0 {
		in.window = analytics.Window{Start: from, End: to.AddDate(0, 0, 1), Zone: zone}
		switch {
		case to.Before(from):
			bad = append(bad, steward.Invalid([]string{"query", "to"}, "to (%s) must be on or after from (%s)", in.To, in.From))
		case in.window.End.Sub(in.window.Start) > analytics.MaxWindow:
			bad = append(bad, steward.Invalid([]string{"query", "to"}, "the window must be at most %d days long", int(analytics.MaxWindow.Hours()/24)))
		}
	}
	if in.Granularity != "day" && in.Granularity != "week" {
		bad = append(bad, steward.Invalid([]string{"query", "granularity"}, "granularity must be day or week, not %q", in.Granularity))
	}
	if _, ok := analyticsSorts[in.Sort]; !ok {
		bad = append(bad, steward.Invalid([]string{"query", "sort"}, "sort must be messages, conversations, files or last_message, not %q", in.Sort))
		// The form carries the order in a hidden field: sending it again
		// must not repeat the mistake.
		in.Sort = "messages"
	}
	if len(bad) == 0 {
		return in, nil
	}
	return in, steward.Invalids(bad)
}

// userRow is one user of the per-user report, with their address when
// they are still a member.
type userRow struct {
	analytics.UserStat
	Email string
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
	In         analyticsInput
	Zone       string
	Workspaces []steward.Workspace
	Users      []userRow
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
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		ctx := r.Context()
		var err error
		if d.Workspaces, _, err = directory.ListWorkspaces(ctx, tx, c.org.ID, false, "", 1, directory.MaxPageSize); err != nil {
			return err
		}
		zone, err := quota.TimeZoneOf(ctx, tx, c.org.ID)
		if err != nil {
			return err
		}
		d.Zone = zone.String()
		if d.In, err = readAnalyticsInput(r.URL.Query(), tx.Now.In(zone), zone); err != nil {
			return err
		}
		if d.In.Workspace != "" && !slices.ContainsFunc(d.Workspaces, func(ws steward.Workspace) bool { return ws.ID == d.In.Workspace }) {
			return steward.Invalid([]string{"query", "workspace"}, "there is no such active Workspace in this Organization")
		}
		users, err := analytics.WorkByUser(ctx, tx, c.org.ID, d.In.window)
		if err != nil {
			return err
		}
		if order := analyticsSorts[d.In.Sort]; order != nil {
			slices.SortStableFunc(users, order)
		}
		if err := d.page(ctx, tx, c.org.ID, users); err != nil {
			return err
		}
		agents, err := analytics.WorkByAgent(ctx, tx, c.org.ID, d.In.window)
		if err != nil {
			return err
		}
		d.TotalAgents, d.Agents = len(agents), agents[:min(len(agents), analyticsAgents)]
		for i := range d.Agents {
			d.Agents[i].LastMessageAt = localInstant(d.Agents[i].LastMessageAt, zone)
		}
		for i := range d.Users {
			d.Users[i].LastMessageAt = localInstant(d.Users[i].LastMessageAt, zone)
		}
		if d.Times, err = analytics.WorkByTime(ctx, tx, c.org.ID, d.In.window, d.In.Granularity); err != nil {
			return err
		}
		d.Chart = timeChart(d.Times, d.In)
		code, err := analytics.CodeByWorkspace(ctx, tx, c.org.ID, d.In.Workspace, d.In.window)
		d.Code = codeDays(code)
		return err
	})
	return p, err
}

// page keeps the asked-for page of users and finds their addresses.
func (d *analyticsData) page(ctx context.Context, tx *store.Tx, orgID string, users []analytics.UserStat) error {
	d.TotalUsers = len(users)
	lo := min((d.In.Page-1)*analyticsPerPage, len(users))
	hi := min(lo+analyticsPerPage, len(users))
	d.First, d.Last = lo+1, hi
	if lo > 0 {
		d.Prev = d.In.link(d.In.Sort, d.In.Page-1)
	}
	if hi < len(users) {
		d.Next = d.In.link(d.In.Sort, d.In.Page+1)
	}
	d.SortLinks = map[string]template.URL{}
	for s := range analyticsSorts {
		d.SortLinks[s] = d.In.link(s, 1)
	}
	ids := make([]string, 0, hi-lo)
	for _, u := range users[lo:hi] {
		ids = append(ids, u.UserID)
	}
	emails, err := directory.MemberEmails(ctx, tx, orgID, ids)
	if err != nil {
		return err
	}
	for _, u := range users[lo:hi] {
		d.Users = append(d.Users, userRow{UserStat: u, Email: emails[u.UserID]})
	}
	return nil
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
func timeChart(stats []analytics.TimeStat, in analyticsInput) chart {
	starts := bucketStarts(in.window, in.Granularity)
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
	ch.Summary = fmt.Sprintf("Chat messages per %s from %s to %s: %d in all, in %d of %d %ss with activity.",
		in.Granularity, in.From, in.To, total, len(stats), len(starts), in.Granularity)
	return ch
}
