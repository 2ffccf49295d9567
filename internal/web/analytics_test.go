package web_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// recordEvents writes product events through a running recorder, as the
// ingestion endpoint and the gateway do.
func recordEvents(t *testing.T, db *store.DB, events []analytics.Event) {
	t.Helper()
	rec := analytics.NewRecorder(db, slog.New(slog.NewTextHandler(io.Discard, nil)))
	go rec.Run()
	defer rec.Close()
	if _, err := rec.Record(context.Background(), events); err != nil {
		t.Fatal(err)
	}
}

// userRow returns the cells of a user's row of the per-user table, joined.
func userRow(t *testing.T, body, userID string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<tr data-user="` + regexp.QuoteMeta(userID) + `">(.*?)</tr>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(m[1]), "")
}

func TestAnalyticsPage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		actor := steward.SystemActor("test")
		orgID, ws := e.boot.Organization.ID, e.boot.DefaultWorkspace.ID
		var ann, bob string
		var other steward.Organization
		var otherWS steward.Workspace
		err := db.Transact(ctx, func(tx *store.Tx) error {
			res, err := directory.CreateMembers(ctx, tx, actor, e.boot.Organization, []directory.NewMember{{Email: "ann@example.com"}, {Email: "bob@example.com"}})
			if err != nil {
				return err
			}
			ann, bob = res.EmailToUserID["ann@example.com"], res.EmailToUserID["bob@example.com"]
			ea, err := directory.CreateEnterpriseAccount(ctx, tx, actor, "Elsewhere")
			if err != nil {
				return err
			}
			other, otherWS, err = directory.CreateOrganization(ctx, tx, actor, ea.ID, "Elsewhere Org")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		today := time.Now().UTC().Truncate(24 * time.Hour)
		day := func(d int) time.Time { return today.AddDate(0, 0, d).Add(9 * time.Hour) }
		msg := func(id, org, workspace, user, conv string, when time.Time, files int64) analytics.Event {
			return analytics.Event{ID: id, Type: analytics.TypeChatMessage, Time: when, OrganizationID: org, WorkspaceID: workspace, UserID: user,
				ConversationID: conv, Files: files}
		}
		events := []analytics.Event{
			msg("a1", orgID, ws, ann, "c1", day(-2), 0),
			msg("a2", orgID, ws, ann, "c1", day(-2), 0),
			msg("a3", orgID, ws, ann, "c2", day(-1), 1),
			msg("b1", orgID, ws, bob, "c3", day(-1), 5),
			msg("b-old", orgID, ws, bob, "c4", day(-40), 0),
			{ID: "s1", Type: analytics.TypeSession, Time: day(-1), OrganizationID: orgID, WorkspaceID: ws, UserID: ann, Client: "cli", Prompts: 4, DurationMS: 5_400_000},
			{ID: "k1", Type: analytics.TypeTokens, Time: day(-1), OrganizationID: orgID, WorkspaceID: ws, UserID: ann, Model: "codestral", InputTokens: 1200, OutputTokens: 34},
		}
		for i := range 7 {
			events = append(events, msg(fmt.Sprintf("x%d", i), other.ID, otherWS.ID, "elsewhere-user", "cx", day(-1), 0))
		}
		recordEvents(t, db, events)

		b := e.browser()
		b.mustSignIn()
		page := e.org() + "/analytics"
		r := b.get(page)
		if r.status != 200 {
			t.Fatalf("GET %s: %d %s", page, r.status, r.body)
		}
		// Default window: the last 30 days, so bob's message of 40 days ago
		// is left out; most messages first.
		if got := userRow(t, r.body, ann); !strings.Contains(got, "ann@example.com</th><td>3</td><td>2</td><td>1</td>") {
			t.Errorf("ann's row: %q", got)
		}
		if got := userRow(t, r.body, bob); !strings.Contains(got, "bob@example.com</th><td>1</td><td>1</td><td>5</td>") {
			t.Errorf("bob's row: %q", got)
		}
		if strings.Index(r.body, `data-user="`+ann) > strings.Index(r.body, `data-user="`+bob) {
			t.Errorf("ann (3 messages) is not listed before bob (1)")
		}
		if strings.Contains(r.body, "elsewhere-user") || strings.Contains(r.body, "<td>7</td>") {
			t.Errorf("the page shows another Organization's activity: %s", r.body)
		}
		if !strings.Contains(r.body, `href="`+e.org()+`/analytics" aria-current="page"`) {
			t.Errorf("the navigation does not link the page as current")
		}
		if !strings.Contains(r.body, `value="`+today.AddDate(0, 0, -29).Format(time.DateOnly)+`"`) || !strings.Contains(r.body, `value="`+today.Format(time.DateOnly)+`"`) {
			t.Errorf("the window is not the last 30 days by default")
		}
		// Over time, per day: a chart with two bars and its table.
		if n := strings.Count(r.body, "<rect "); n != 2 {
			t.Errorf("%d bars in the chart, want 2", n)
		}
		for _, want := range []string{
			"<th scope=\"row\">" + day(-2).Format(time.DateOnly) + "</th><td>2</td><td>1</td><td>1</td>",
			"<th scope=\"row\">" + day(-1).Format(time.DateOnly) + "</th><td>2</td><td>2</td><td>2</td><td>6</td>",
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("over-time table without %q", want)
			}
		}
		if !strings.Contains(r.body, "4 in all, in 2 of 30 days with activity") {
			t.Errorf("chart summary wrong: %s", r.body)
		}
		// Coding, every Workspace: one day.
		if want := "<th scope=\"row\">" + day(-1).Format(time.DateOnly) + "</th><td>1</td><td>4</td><td>1</td><td>1234</td><td>0</td><td>0</td><td>1.50</td>"; !strings.Contains(r.body, want) {
			t.Errorf("coding table without %q", want)
		}

		// A longer window by week takes bob's old message in.
		from := today.AddDate(0, 0, -45).Format(time.DateOnly)
		r = b.get(page + "?granularity=week&from=" + from)
		if got := userRow(t, r.body, bob); r.status != 200 || !strings.Contains(got, "bob@example.com</th><td>2</td><td>2</td>") {
			t.Errorf("bob over 46 days: %d %q", r.status, got)
		}
		if !strings.Contains(r.body, "Week from") || !strings.Contains(r.body, "per week") {
			t.Errorf("the weekly report is not shown")
		}
		// Ordered by files, bob comes first.
		r = b.get(page + "?sort=files")
		if strings.Index(r.body, `data-user="`+bob) > strings.Index(r.body, `data-user="`+ann) || !strings.Contains(r.body, `aria-sort="descending"><a href="?from=`) {
			t.Errorf("sort by files: bob is not first")
		}
		// An empty window has an empty state and no chart.
		r = b.get(page + "?from=2021-01-01&to=2021-01-31")
		if r.status != 200 || strings.Contains(r.body, `<svg class="chart"`) || !strings.Contains(r.body, "No chat activity in this window.") ||
			!strings.Contains(r.body, "No coding activity in this window.") {
			t.Errorf("empty window: %d %s", r.status, r.body)
		}
		// The coding figures of a Workspace without any.
		var lab steward.Workspace
		err = db.Transact(ctx, func(tx *store.Tx) error {
			var err error
			name := "Lab"
			lab, err = directory.CreateWorkspace(ctx, tx, actor, e.boot.Organization, directory.NewWorkspace{WorkspaceInput: directory.WorkspaceInput{Name: &name}, AdminUserID: e.boot.Admin.ID})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if r = b.get(page + "?workspace=" + lab.ID); r.status != 200 || !strings.Contains(r.body, "No coding activity in this window in this Workspace.") {
			t.Errorf("coding figures of an idle Workspace: %d", r.status)
		}

		// Bad input: the form again, with what is wrong.
		for query, want := range map[string]string{
			"from=2026-13-01":               "from must be a date from 1970 on, as YYYY-MM-DD, not &#34;2026-13-01&#34;",
			"from=2026-03-10&to=2026-03-01": "to (2026-03-01) must be on or after from (2026-03-10)",
			"from=2020-01-01&to=2026-01-01": "the window must be at most 731 days long",
			"granularity=month":             "granularity must be day or week, not &#34;month&#34;",
			"sort=email":                    "sort must be messages, conversations, files or last_message",
			"page=0":                        "page must be a whole number from 1",
			"workspace=" + otherWS.ID:       "there is no such active Workspace in this Organization",
			"from=nope&granularity=hour":    "granularity must be day or week",
		} {
			r := b.get(page + "?" + query)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, want) || !strings.Contains(r.body, `id="an-from"`) || strings.Contains(r.body, "data-user") {
				t.Errorf("?%s: %d, want 422 with %q and the form; %s", query, r.status, want, r.body)
			}
		}

		// Every mistake is named at once, and the form does not keep an
		// unknown order.
		r = b.get(page + "?from=nope&granularity=hour&sort=email")
		if !strings.Contains(r.body, "from must be a date") || !strings.Contains(r.body, "granularity must be day or week") ||
			!strings.Contains(r.body, `name="sort" value="messages"`) || !strings.Contains(r.body, `value="nope"`) {
			t.Errorf("several mistakes: %s", r.body)
		}

		// Another Organization's page is not found.
		if r := b.get("/web/o/" + other.ID + "/analytics"); r.status != http.StatusNotFound || strings.Contains(r.body, "Elsewhere") {
			t.Errorf("another Organization's analytics: %d %s", r.status, r.body)
		}
		// A member who is not an admin gets no page.
		e.setPassword(bob, "bob's own password")
		nb := e.browser()
		if r := nb.signIn("bob@example.com", "bob's own password"); r.status != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", r.status, r.body)
		}
		if r := nb.get(page); r.status != http.StatusNotFound || strings.Contains(r.body, "ann@example.com") {
			t.Errorf("analytics of a plain member: %d %s", r.status, r.body)
		}
		// Signed out, the browser is sent to sign in.
		if r := e.browser().get(page); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/web/signin") {
			t.Errorf("signed out: %d %q", r.status, r.location)
		}
	})
}

func TestAnalyticsPageIsPaged(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		when := time.Now().UTC().Add(-time.Hour)
		var events []analytics.Event
		for i := range 53 {
			for j := range i%3 + 1 {
				events = append(events, analytics.Event{ID: fmt.Sprintf("m%d-%d", i, j), Type: analytics.TypeChatMessage, Time: when,
					OrganizationID: e.boot.Organization.ID, WorkspaceID: e.boot.DefaultWorkspace.ID, UserID: fmt.Sprintf("gone-%02d", i), ConversationID: "c",
					AgentID: fmt.Sprintf("agent-%02d", i)})
			}
		}
		recordEvents(t, db, events)
		b := e.browser()
		b.mustSignIn()
		r := b.get(e.org() + "/analytics")
		if n := strings.Count(r.body, "data-user="); r.status != 200 || n != 50 || !strings.Contains(r.body, "Users 1–50 of 53") ||
			!strings.Contains(r.body, "(no longer a member)") {
			t.Fatalf("first page: %d, %d rows", r.status, n)
		}
		// 53 agents: the 50 with most messages are listed.
		if n := strings.Count(r.body, "data-agent="); n != 50 || !strings.Contains(r.body, "The 50 agents with most messages, of 53.") ||
			!strings.Contains(r.body, `data-agent="agent-50"`) || strings.Contains(r.body, `data-agent="agent-51"`) {
			t.Errorf("agents: %d rows", n)
		}
		next := regexp.MustCompile(`href="\?([^"]+)">Next users`).FindStringSubmatch(r.body)
		if next == nil {
			t.Fatalf("no link to the next users")
		}
		r = b.get(e.org() + "/analytics?" + strings.ReplaceAll(next[1], "&amp;", "&"))
		if n := strings.Count(r.body, "data-user="); n != 3 || !strings.Contains(r.body, "Users 51–53 of 53") || !strings.Contains(r.body, "Previous users") {
			t.Errorf("second page: %d, %d rows", r.status, n)
		}
		// Most messages first: the last page holds users with one message.
		for _, row := range regexp.MustCompile(`data-user="[^"]+">\s*<th[^>]*>.*?</th>\s*<td>(\d+)</td>`).FindAllStringSubmatch(r.body, -1) {
			if row[1] != "1" {
				t.Errorf("a user with %s messages on the last page", row[1])
			}
		}
		if r = b.get(e.org() + "/analytics?page=9"); r.status != 200 || !strings.Contains(r.body, "No users on this page") {
			t.Errorf("a page past the end: %d", r.status)
		}
	})
}

// seedAnalytics records a few weeks of chat messages of three members and
// some coding sessions, so that the analytics page has something to draw.
func seedAnalytics(t *testing.T, db *store.DB, e *env) {
	t.Helper()
	ctx := context.Background()
	users := []string{e.boot.Admin.ID}
	err := db.Transact(ctx, func(tx *store.Tx) error {
		res, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization,
			[]directory.NewMember{{Email: "dana@example.com"}, {Email: "lee@example.com"}})
		users = append(users, res.EmailToUserID["dana@example.com"], res.EmailToUserID["lee@example.com"])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	org, ws := e.boot.Organization.ID, e.boot.DefaultWorkspace.ID
	var events []analytics.Event
	for d := range 28 {
		when := today.AddDate(0, 0, -d).Add(10 * time.Hour)
		for u, user := range users {
			for i := range (d*5+u*3)%7 + u {
				events = append(events, analytics.Event{ID: fmt.Sprintf("m-%d-%d-%d", d, u, i), Type: analytics.TypeChatMessage, Time: when,
					OrganizationID: org, WorkspaceID: ws, UserID: user, ConversationID: fmt.Sprintf("c-%d-%d", u, d/3), Files: int64(i % 2),
					AgentID: []string{"", "agent-research", ""}[(i+u)%3]})
			}
		}
		events = append(events, analytics.Event{ID: fmt.Sprintf("s-%d", d), Type: analytics.TypeSession, Time: when, OrganizationID: org,
			WorkspaceID: ws, UserID: users[d%3], Client: "cli", Prompts: int64(3 + d%5), DurationMS: int64(600_000 * (1 + d%4))})
	}
	recordEvents(t, db, events)
}

// The page's days are the Organization's: in Tokyo (UTC+9), a message at
// 20:00 UTC counts on the next day, and one at 16:00 UTC too; agents get a
// table of their own.
func TestAnalyticsPageTimeZone(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Fatal(err)
		}
		var ann string
		err = db.Transact(ctx, func(tx *store.Tx) error {
			actor := steward.SystemActor("test")
			if err := quota.SetTimeZone(ctx, tx, actor, e.boot.Organization, "Asia/Tokyo"); err != nil {
				return err
			}
			res, err := directory.CreateMembers(ctx, tx, actor, e.boot.Organization, []directory.NewMember{{Email: "ann@example.com"}})
			ann = res.EmailToUserID["ann@example.com"]
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		org, ws := e.boot.Organization.ID, e.boot.DefaultWorkspace.ID
		at := func(s string) time.Time {
			v, err := time.Parse(time.RFC3339, s)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		msg := func(id, when, agent string, files int64) analytics.Event {
			return analytics.Event{ID: id, Type: analytics.TypeChatMessage, Time: at(when), OrganizationID: org, WorkspaceID: ws, UserID: ann,
				ConversationID: "c-" + id, AgentID: agent, Files: files}
		}
		recordEvents(t, db, []analytics.Event{
			msg("m1", "2026-03-02T20:00:00Z", "agent-research", 2), // Tokyo: March 3, 05:00
			msg("m2", "2026-03-03T10:00:00Z", "", 0),               // Tokyo: March 3, 19:00
			msg("m3", "2026-03-03T16:00:00Z", "agent-research", 7), // Tokyo: March 4, 01:00
			{ID: "s1", Type: analytics.TypeSession, Time: at("2026-03-02T22:00:00Z"), OrganizationID: org, WorkspaceID: ws, UserID: ann,
				Client: "cli", Prompts: 3, DurationMS: 3_600_000},
		})
		b := e.browser()
		b.mustSignIn()
		page := e.org() + "/analytics"
		r := b.get(page + "?from=2026-03-03&to=2026-03-03")
		if r.status != 200 {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		if got := userRow(t, r.body, ann); !strings.Contains(got, "ann@example.com</th><td>2</td><td>2</td><td>2</td>") {
			t.Errorf("ann's row over March 3 in Tokyo: %q", got)
		}
		for _, want := range []string{
			"(days in the Organization's time zone, Asia/Tokyo, both included)",
			"<td>2026-03-03 19:00</td>", // ann's last message, in Tokyo
			`<th scope="row">2026-03-03</th><td>2</td><td>1</td><td>2</td><td>2</td>`,
			`<th scope="row">2026-03-03</th><td>1</td><td>3</td><td>1</td><td>0</td><td>0</td><td>0</td><td>1.00</td>`,
			`<tr data-agent="agent-research"><th scope="row"><code>agent-research</code></th><td>1</td><td>1</td><td>1</td><td>2</td>`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("the page over March 3 in Tokyo lacks %q", want)
			}
		}
		if strings.Contains(r.body, "2026-03-02") || strings.Contains(r.body, "2026-03-04") {
			t.Errorf("the page shows days outside the window")
		}
		// Two days: each message on its own Tokyo day.
		r = b.get(page + "?from=2026-03-03&to=2026-03-04")
		for _, want := range []string{
			`<th scope="row">2026-03-03</th><td>2</td>`,
			`<th scope="row">2026-03-04</th><td>1</td><td>1</td><td>1</td><td>7</td>`,
			`<td>2</td><td>1</td><td>2</td><td>9</td>`, // agent-research: 2 messages, 1 user, 2 conversations, 9 files
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("the page over March 3-4 in Tokyo lacks %q", want)
			}
		}
		// Without dates, the window ends on today in Tokyo.
		if r = b.get(page); !strings.Contains(r.body, `id="an-to" name="to" type="date" value="`+time.Now().In(tokyo).Format(time.DateOnly)+`"`) {
			t.Errorf("the default window does not end today in Tokyo")
		}
	})
}
