package web

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/usage"
)

// The overview's windows: days of the daily charts and of the top lists,
// how soon a key's expiry is shown, how full a limit is to be shown, and
// how many entries each list has.
const (
	overviewDays     = 30
	expiringWithin   = 14 * 24 * time.Hour
	nearLimitPercent = 80
	overviewTop      = 5
	overviewEvents   = 8
)

// allPermissions opens a page to anyone with a permission in the
// Organization: the overview route, which sends someone whom its
// permissions do not open to the first page theirs do.
var allPermissions = func() []steward.Permission {
	var out []steward.Permission
	for _, p := range steward.Permissions {
		if p.Scope == steward.ScopeOrganization {
			out = append(out, p.Name)
		}
	}
	return out
}()

// spendLine is a scope's month against its cap.
type spendLine struct {
	Name, Href string
	Spent      int64
	Meter      meter
}

// topLine is one of the most spending Workspaces, keys or users.
type topLine struct {
	Name, Href string
	Cost       int64
	Requests   int64
}

// nearLimit is a limit this month's use is close to.
type nearLimit struct {
	What, Href  string
	Used, Limit string
	Percent     int64
	Reached     bool
}

type overviewData struct {
	Month string
	// From and To are the window of the charts and the top lists, as the
	// usage explorer takes them.
	From, To     string
	Organization spendLine
	Workspaces   []spendLine
	Requests     chart
	Tokens       chart
	Top          []topList
	Limits       []nearLimit
	Expiring     []steward.APIKey
	Now          time.Time
	Events       []auditRow
}

// topList is the top of one dimension, linked to the usage explorer grouped
// by it.
type topList struct {
	Title, Href string
	Lines       []topLine
}

// overview shows the Organization at a glance to whoever may see usage or
// billing; anyone else is sent to the first page their roles open.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	if !hasAny(c.perms, overviewPermissions) {
		http.Redirect(w, r, Prefix+"/o/"+c.org.ID+pagesFor(c.perms)[0].Path(), http.StatusSeeOther)
		return nil
	}
	return h.show("overview")(w, r, c)
}

func (h *Handler) overviewView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Overview", "overview")
	d, err := h.overviewData(r, c, p.Base)
	p.Data = d
	return p, err
}

func (h *Handler) overviewData(r *http.Request, c *reqCtx, base string) (overviewData, error) {
	ctx := r.Context()
	var d overviewData
	st, err := h.quota.Standings(ctx, c.org.ID)
	if err != nil {
		return d, err
	}
	d.Month = st.Start.Format("January 2006")
	spendHref := base + "/usage"
	if c.perms.Has(steward.PermLimitsRead) {
		spendHref = base + "/limits"
	}
	d.Organization = spendLine{Name: c.org.Name, Href: spendHref, Spent: st.Organization.Spend.Spent, Meter: newMeter(st.Organization.Spend)}
	wsNames := map[string]string{}
	for _, ws := range st.Workspaces {
		wsNames[ws.Workspace.ID] = ws.Workspace.Name
		href := base + "/usage?group=workspace"
		if c.perms.Has(steward.PermWorkspacesRead) {
			href = base + "/workspaces/" + ws.Workspace.ID
		}
		d.Workspaces = append(d.Workspaces, spendLine{Name: ws.Workspace.Name, Href: href, Spent: ws.Spend.Spent, Meter: newMeter(ws.Spend)})
	}
	slices.SortStableFunc(d.Workspaces, func(a, b spendLine) int { return cmp.Compare(b.Spent, a.Spent) })
	if c.perms.Has(steward.PermLimitsRead) {
		d.Limits = nearLimits(st, base, c.perms.Has(steward.PermWorkspacesRead))
	}
	if c.perms.Has(steward.PermUsageRead) {
		if err := h.overviewUsage(r, c, base, wsNames, &d); err != nil {
			return d, err
		}
	}
	if c.perms.Has(steward.PermAPIKeysRead) {
		if d.Expiring, d.Now, err = h.expiringKeys(r, c); err != nil {
			return d, err
		}
	}
	if c.perms.Has(steward.PermAuditRead) {
		entries, err := h.audit.List(ctx, audit.Filter{OrganizationID: c.org.ID, Limit: overviewEvents})
		if err != nil {
			return d, err
		}
		if d.Events, err = h.describeAll(r, c, entries); err != nil {
			return d, err
		}
	}
	return d, nil
}

// overviewUsage fills the daily charts and the top lists of the last
// overviewDays days of the Organization's time zone, today included. The
// charts read hours, each counted in the local day in which it starts; the
// top lists ask for their overviewTop rows only, whatever the number of
// keys or users.
func (h *Handler) overviewUsage(r *http.Request, c *reqCtx, base string, wsNames map[string]string, d *overviewData) error {
	ctx := r.Context()
	zone, err := h.quota.TimeZone(ctx, c.org.ID)
	if err != nil {
		return err
	}
	now := time.Now().In(zone)
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, zone)
	from, to := today.AddDate(0, 0, 1-overviewDays), today.AddDate(0, 0, 1)
	d.From, d.To = from.Format(time.DateOnly), today.Format(time.DateOnly)
	rows, err := h.usage.Report(ctx, c.org.ID, from, to, usage.Hour, nil)
	if err != nil {
		return err
	}
	requests, tokens := make([]int64, overviewDays), make([]int64, overviewDays)
	for _, row := range rows {
		local := row.Start.In(zone)
		day := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, zone)
		i := int(day.Sub(from).Hours()/24 + 0.5)
		if i >= 0 && i < overviewDays {
			requests[i] += row.Requests
			tokens[i] += row.InputTokens + row.OutputTokens
		}
	}
	d.Requests = dailyChart(from, requests, "requests", "Requests per day")
	d.Tokens = dailyChart(from, tokens, "tokens", "Tokens per day")
	window := "&from=" + d.From + "&to=" + d.To
	for _, dim := range []struct{ group, title string }{{usage.GroupWorkspace, "Workspaces"}, {usage.GroupKey, "API keys"}, {usage.GroupUser, "Users"}} {
		rows, err := h.usage.Top(ctx, c.org.ID, from, to, dim.group, overviewTop)
		if err != nil {
			return err
		}
		var lines []topLine
		for _, row := range rows {
			t := topLine{Cost: row.Cost, Requests: row.Requests}
			if t.Name, t.Href, err = h.nameOf(r, c, base, dim.group, dimensionOf(dim.group, row), wsNames); err != nil {
				return err
			}
			lines = append(lines, t)
		}
		d.Top = append(d.Top, topList{Title: dim.title, Href: base + "/usage?group=" + dim.group + window, Lines: lines})
	}
	return nil
}

func dimensionOf(group string, row usage.Row) string {
	switch group {
	case usage.GroupWorkspace:
		return row.WorkspaceID
	case usage.GroupKey:
		return row.KeyID
	case usage.GroupUser:
		return row.UserID
	}
	return row.Model
}

// nameOf names a Workspace, key, user or model of the usage, with the page
// that explains it when the person may open it.
func (h *Handler) nameOf(r *http.Request, c *reqCtx, base, group, id string, wsNames map[string]string) (string, string, error) {
	switch {
	case id == "":
		return "none", "", nil
	case group == usage.GroupWorkspace:
		name := wsNames[id]
		if name == "" {
			name = "archived Workspace " + id
		}
		if c.perms.Has(steward.PermWorkspacesRead) {
			return name, base + "/workspaces/" + id, nil
		}
		return name, "", nil
	case group == usage.GroupKey:
		k, _, err := h.keys.GetKey(r.Context(), c.org.ID, id)
		if steward.IsKind(err, steward.KindNotFound) {
			return "deleted key " + id, "", nil
		}
		if err != nil {
			return "", "", err
		}
		if c.perms.Has(steward.PermAPIKeysRead) {
			return keyName(k), base + "/keys/" + id, nil
		}
		return keyName(k), "", nil
	case group == usage.GroupUser:
		m, err := h.directory.GetMember(r.Context(), c.org.ID, id)
		if steward.IsKind(err, steward.KindNotFound) {
			return "former member " + id, "", nil
		}
		if err != nil {
			return "", "", err
		}
		if c.perms.Has(steward.PermAuditRead) {
			return m.User.Email, base + "/audit?actor=" + url.QueryEscape(id), nil
		}
		return m.User.Email, "", nil
	}
	return id, "", nil
}

// nearLimits lists the spend caps and monthly token limits that this
// month's use has brought to nearLimitPercent or more.
func nearLimits(st quota.Standings, base string, workspacePages bool) []nearLimit {
	var out []nearLimit
	scope := func(name, href string, m quota.ScopeMonth) {
		if m.Spend.Cap != nil {
			limit := billing.Micros(*m.Spend.Cap)
			if n, ok := near(m.Spend.Spent, limit); ok {
				out = append(out, nearLimit{What: "Spend cap of " + name, Href: href, Used: money(m.Spend.Spent), Limit: strconv.FormatInt(*m.Spend.Cap, 10), Percent: n, Reached: m.Spend.Reached()})
			}
		}
		for _, model := range slices.Sorted(maps.Keys(m.Limits.Models)) {
			lim := m.Limits.Models[model].PerMonth
			if lim <= 0 {
				continue
			}
			if n, ok := near(m.Tokens[model], lim); ok {
				out = append(out, nearLimit{What: fmt.Sprintf("Monthly tokens of %s in %s", model, name), Href: href,
					Used: strconv.FormatInt(m.Tokens[model], 10), Limit: strconv.FormatInt(lim, 10), Percent: n, Reached: m.Tokens[model] >= lim})
			}
		}
	}
	scope("the Organization", base+"/limits", st.Organization)
	for _, ws := range st.Workspaces {
		href := base + "/limits"
		if workspacePages {
			href = base + "/workspaces/" + ws.Workspace.ID
		}
		scope("Workspace "+ws.Workspace.Name, href, ws.ScopeMonth)
	}
	slices.SortStableFunc(out, func(a, b nearLimit) int { return cmp.Compare(b.Percent, a.Percent) })
	return out
}

// near returns how much of limit used is, in percent, and whether that is
// nearLimitPercent or more; a limit of 0 is reached at once.
func near(used, limit int64) (int64, bool) {
	if limit <= 0 {
		return 100, true
	}
	n := int64(float64(used) / float64(limit) * 100)
	return n, n >= nearLimitPercent
}

// expiringKeys returns the keys that expire within expiringWithin, soonest
// first, and the time the keys were read at.
func (h *Handler) expiringKeys(r *http.Request, c *reqCtx) ([]steward.APIKey, time.Time, error) {
	all, now, err := h.allKeys(r, c)
	if err != nil {
		return nil, now, err
	}
	var out []steward.APIKey
	for _, k := range all {
		if k.ExpiresAt != nil && !k.Expired(now) && k.ExpiresAt.Sub(now) <= expiringWithin {
			out = append(out, k)
		}
	}
	slices.SortFunc(out, func(a, b steward.APIKey) int { return a.ExpiresAt.Compare(*b.ExpiresAt) })
	return out, now, nil
}

// dailyChart draws one value a day from from, as bars.
func dailyChart(from time.Time, values []int64, metric, title string) chart {
	ch := chart{Width: chartWidth, Height: chartHeight + chartBottom, Left: chartLeft, Base: chartHeight,
		LabelX: chartLeft - 6, DayY: chartHeight + 16, Metric: metric}
	var top, total int64 = 1, 0
	for _, v := range values {
		top = max(top, v)
		total += v
	}
	slot := (chartWidth - chartLeft) / float64(len(values))
	for i, v := range values {
		day := from.AddDate(0, 0, i)
		if v > 0 {
			hgt := float64(v) / float64(top) * (chartHeight - 10)
			ch.Bars = append(ch.Bars, bar{X: chartLeft + float64(i)*slot + 1, Y: chartHeight - hgt, W: max(slot-2, 1), H: hgt,
				Fill: palette[0], Title: fmt.Sprintf("%s: %d %s", day.Format("Jan 2"), v, metric)})
		}
		if i%5 == 0 {
			ch.Days = append(ch.Days, dayLabel{X: chartLeft + (float64(i)+0.5)*slot, Label: day.Format("Jan 2")})
		}
	}
	ch.Ticks = ticks(top, func(v int64) string { return strconv.FormatInt(v, 10) })
	ch.Summary = fmt.Sprintf("%s from %s to %s (days of %s): %d in all.", title, from.Format("January 2"), from.AddDate(0, 0, len(values)-1).Format("January 2, 2006"), from.Location(), total)
	return ch
}
