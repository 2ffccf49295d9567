package analytics

import (
	"cmp"
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// The Admin Panel's analytics page shows every report of a window at once:
// the users a page at a time, in an order of the person's choosing, the
// agents with most messages, activity over time and coding activity.
const (
	// UsersPerPage is how many users one page of the per-user report lists.
	UsersPerPage = 50
	// TopAgents is how many agents the overview shows, most messages first.
	TopAgents = 50
	// DefaultDays is the window shown when none is asked for.
	DefaultDays = 30
)

// userOrders are the per-user report's orders, each largest (or most
// recent) first; the report's own order (most messages) breaks ties.
var userOrders = map[string]func(a, b UserStat) int{
	"messages": nil,
	"conversations": func(a, b UserStat) int {
		return cmp.Compare(b.UniqueConversationsCount, a.UniqueConversationsCount)
	},
	"files":        func(a, b UserStat) int { return cmp.Compare(b.FilesCount, a.FilesCount) },
	"last_message": func(a, b UserStat) int { return strings.Compare(b.LastMessageAt, a.LastMessageAt) },
}

// UserOrders are the names of the per-user report's orders.
func UserOrders() []string {
	names := make([]string, 0, len(userOrders))
	for name := range userOrders {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Query is the overview's query: an inclusive range of days of the
// Organization's time zone, the over-time report's granularity, the
// Workspace of the coding figures (empty for all), the per-user order and
// page. Its fields are as given, or their defaults.
type Query struct {
	From, To    string
	Granularity string
	Workspace   string
	Sort        string
	Page        int
	// Window is the days from From to To; set once the query is valid.
	Window Window
}

// QueryInput is the overview's query as a person gave it, every field
// optional.
type QueryInput struct {
	From, To, Granularity, Workspace, Sort, Page string
}

// ParseQuery reads and checks the overview's query; today is the default
// last day. Days start at midnight in zone. Its KindInvalid errors name
// the query's fields; with them it returns the query as given.
func ParseQuery(raw QueryInput, today time.Time, zone *time.Location) (Query, error) {
	in := Query{From: raw.From, To: raw.To, Granularity: raw.Granularity, Workspace: raw.Workspace, Sort: raw.Sort}
	if in.To == "" {
		in.To = today.Format(time.DateOnly)
	}
	if in.From == "" {
		to, err := time.Parse(time.DateOnly, in.To)
		if err != nil {
			to = today
		}
		in.From = to.AddDate(0, 0, 1-DefaultDays).Format(time.DateOnly)
	}
	if in.Granularity == "" {
		in.Granularity = "day"
	}
	if in.Sort == "" {
		in.Sort = "messages"
	}
	var bad []*steward.Error
	in.Page = 1
	if v := raw.Page; v != "" {
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
		in.Window = Window{Start: from, End: to.AddDate(0, 0, 1), Zone: zone}
		switch {
		case to.Before(from):
			bad = append(bad, steward.Invalid([]string{"query", "to"}, "to (%s) must be on or after from (%s)", in.To, in.From))
		case in.Window.End.Sub(in.Window.Start) > MaxWindow:
			bad = append(bad, steward.Invalid([]string{"query", "to"}, "the window must be at most %d days long", int(MaxWindow.Hours()/24)))
		}
	}
	if in.Granularity != "day" && in.Granularity != "week" {
		bad = append(bad, steward.Invalid([]string{"query", "granularity"}, "granularity must be day or week, not %q", in.Granularity))
	}
	if _, ok := userOrders[in.Sort]; !ok {
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

// UserRow is one user of the per-user report, with their address when
// they are still a member.
type UserRow struct {
	UserStat
	Email string
}

// Overview is every report of a window, as the Admin Panel shows them.
type Overview struct {
	Query Query
	// Workspaces are the Organization's active Workspaces, whose coding
	// figures the query may ask for.
	Workspaces []steward.Workspace
	// Users are one page of the per-user report, in the query's order;
	// Offset is how many users come before them, of TotalUsers.
	Users      []UserRow
	Offset     int
	TotalUsers int
	// Agents are the TopAgents agents with most messages, of TotalAgents.
	Agents      []AgentStat
	TotalAgents int
	Times       []TimeStat
	Code        WorkspaceStats
}

// Overview returns the reports of a window of the Organization's days in
// zone, which the query, as given, names: with a query ParseQuery refuses,
// or a Workspace that is not an active one of the Organization, its
// KindInvalid error and an Overview of the query and the Workspaces only.
func (s *Service) Overview(ctx context.Context, org string, zone *time.Location, raw QueryInput) (Overview, error) {
	var o Overview
	err := s.db.View(ctx, func(tx *store.Tx) error {
		var err error
		if o.Workspaces, _, err = directory.ListWorkspaces(ctx, tx, org, false, "", 1, directory.MaxPageSize); err != nil {
			return err
		}
		if o.Query, err = ParseQuery(raw, tx.Now.In(zone), zone); err != nil {
			return err
		}
		q := o.Query
		if q.Workspace != "" && !slices.ContainsFunc(o.Workspaces, func(ws steward.Workspace) bool { return ws.ID == q.Workspace }) {
			return steward.Invalid([]string{"query", "workspace"}, "there is no such active Workspace in this Organization")
		}
		users, err := WorkByUser(ctx, tx, org, q.Window)
		if err != nil {
			return err
		}
		if order := userOrders[q.Sort]; order != nil {
			slices.SortStableFunc(users, order)
		}
		o.TotalUsers = len(users)
		o.Offset = min((q.Page-1)*UsersPerPage, len(users))
		page := users[o.Offset:min(o.Offset+UsersPerPage, len(users))]
		ids := make([]string, 0, len(page))
		for _, u := range page {
			ids = append(ids, u.UserID)
		}
		emails, err := directory.MemberEmails(ctx, tx, org, ids)
		if err != nil {
			return err
		}
		for _, u := range page {
			o.Users = append(o.Users, UserRow{UserStat: u, Email: emails[u.UserID]})
		}
		agents, err := WorkByAgent(ctx, tx, org, q.Window)
		if err != nil {
			return err
		}
		o.TotalAgents, o.Agents = len(agents), agents[:min(len(agents), TopAgents)]
		if o.Times, err = WorkByTime(ctx, tx, org, q.Window, q.Granularity); err != nil {
			return err
		}
		o.Code, err = CodeByWorkspace(ctx, tx, org, q.Workspace, q.Window)
		return err
	})
	return o, err
}
