package web_test

import (
	"context"
	"html"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/web"
)

// The usage explorer counts days in the Organization's time zone, as the
// spend caps count months: 23:30 UTC on 28 February is 1 March in Paris,
// and 22:30 UTC on 31 March is 1 April there.
func TestUsagePageCountsTheOrganizationsMonths(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		org, ws := e.boot.Organization.ID, e.boot.DefaultWorkspace.ID
		err := db.Transact(ctx, func(tx *store.Tx) error {
			return quota.SetTimeZone(ctx, tx, steward.SystemActor("test"), e.boot.Organization, "Europe/Paris")
		})
		if err != nil {
			t.Fatal(err)
		}
		recordUsage(t, db, []usage.Event{
			{ID: "feb", Time: time.Date(2026, 2, 28, 23, 30, 0, 0, time.UTC), OrganizationID: org, WorkspaceID: ws, Model: "small",
				InputTokens: 1, Currency: "USD", Endpoint: "chat.completions"},
			{ID: "mar", Time: time.Date(2026, 3, 31, 22, 30, 0, 0, time.UTC), OrganizationID: org, WorkspaceID: ws, Model: "small",
				InputTokens: 10, Currency: "USD", Endpoint: "chat.completions"},
		})
		b := e.browser()
		b.mustSignIn()
		r := b.get(e.org() + "/usage?metric=tokens&from=2026-03-01&to=2026-03-31&group=model")
		if r.status != 200 {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		i := strings.Index(r.body, `<figcaption id="chart-tokens">`)
		if i < 0 {
			t.Fatalf("the page has no chart summary: %s", r.body)
		}
		if got, want := r.body[i:min(i+120, len(r.body))], "tokens per day from March 1, 2026 to March 31, 2026, stacked by model; 1 series, 1 in all."; !strings.Contains(got, want) {
			t.Fatalf("March in Paris: the summary says %q, want %q", got, want)
		}
	})
}

// TestUsageExplorer reads a range grouped by key, user, Workspace and
// model, checks the table, the chart, the CSV export and the measure the
// page opens on (tokens when nothing has a price), and the refusals.
func TestUsageExplorer(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		org, ws := e.boot.Organization.ID, e.boot.DefaultWorkspace.ID
		name := "first"
		k, err := keys.NewService(db).CreateKey(ctx, steward.SystemActor("test"), org, keys.NewKey{WorkspaceID: ws, UserID: e.boot.Admin.ID, Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		day := func(d int) time.Time { return time.Date(2026, 5, d, 12, 0, 0, 0, time.UTC) }
		recordUsage(t, db, []usage.Event{
			{ID: "1", Time: day(3), OrganizationID: org, WorkspaceID: ws, KeyID: k.Key.ID, UserID: e.boot.Admin.ID, Model: "large", InputTokens: 100, OutputTokens: 50, Currency: "USD", Endpoint: "chat.completions"},
			{ID: "2", Time: day(3), OrganizationID: org, WorkspaceID: ws, KeyID: k.Key.ID, UserID: e.boot.Admin.ID, Model: "small", InputTokens: 10, OutputTokens: 5, Currency: "USD", Endpoint: "chat.completions"},
			{ID: "3", Time: day(9), OrganizationID: org, WorkspaceID: ws, Model: "small", InputTokens: 1, OutputTokens: 1, Currency: "USD", Endpoint: "chat.completions"},
			{ID: "4", Time: day(20), OrganizationID: org, WorkspaceID: ws, KeyID: k.Key.ID, Model: "small", InputTokens: 1000, Currency: "USD", Endpoint: "chat.completions"},
		})
		b := e.browser()
		b.mustSignIn()
		base := e.org() + "/usage"
		r := b.get(base + "?from=2026-05-01&to=2026-05-10&group=key")
		if r.status != 200 {
			t.Fatalf("GET: %d %s", r.status, r.body)
		}
		for _, want := range []string{
			// No price: the page opens on tokens.
			`<option value="tokens" selected>tokens</option>`,
			`<figcaption id="chart-tokens">tokens per day from May 1, 2026 to May 10, 2026, stacked by key; 2 series, 167 in all.</figcaption>`,
			`<a href="` + e.org() + `/keys/` + k.Key.ID + `">first</a></td><td>2</td><td>110</td><td>55</td><td>0.00</td>`,
			`none</td><td>1</td><td>1</td><td>1</td><td>0.00</td>`,
			`<th scope="row">Total</th><td>3</td><td>111</td><td>56</td>`,
			`href="` + e.org() + `/usage.csv?from=2026-05-01&amp;group=key&amp;metric=tokens&amp;to=2026-05-10"`,
		} {
			if !strings.Contains(r.body, want) {
				t.Errorf("the explorer lacks %s", want)
			}
		}
		if n := strings.Count(r.body, "<rect x="); n != 2 {
			t.Errorf("the chart has %d bars, want 2 (one a day and key with usage)", n)
		}
		r = b.get(base + "?from=2026-05-01&to=2026-05-31&group=model&metric=requests")
		if !strings.Contains(r.body, "requests per day from May 1, 2026 to May 31, 2026, stacked by model; 2 series, 4 in all.") ||
			!strings.Contains(r.body, `small</td><td>3</td>`) {
			t.Errorf("by model: %s", r.body)
		}
		csvReply := b.get(e.org() + "/usage.csv?from=2026-05-01&to=2026-05-31&group=user&metric=tokens")
		want := "day,group,id,name,requests,input_tokens,output_tokens,cost,currency\n" +
			"2026-05-03,user," + e.boot.Admin.ID + ",admin@example.com,2,110,55,0.00,USD\n" +
			"2026-05-09,user,,none,1,1,1,0.00,USD\n" +
			"2026-05-20,user,,none,1,1000,0,0.00,USD\n"
		if csvReply.status != 200 || csvReply.body != want || !strings.HasPrefix(csvReply.header.Get("Content-Type"), "text/csv") {
			t.Errorf("CSV: %d %q, want %q", csvReply.status, csvReply.body, want)
		}
		for _, bad := range []struct{ query, field string }{
			{"?from=2026-05-10&to=2026-05-01", "to must be on or after from"},
			{"?from=2024-01-01&to=2026-05-01", "longer than 400 days"},
			{"?group=colour", `cannot group by "colour"`},
			{"?metric=joy", "metric must be cost, tokens or requests"},
			{"?from=May", "from must be a date"},
		} {
			if r := b.get(base + bad.query); r.status != 422 || !strings.Contains(html.UnescapeString(r.body), bad.field) {
				t.Errorf("%s: %d, want 422 saying %q", bad.query, r.status, bad.field)
			}
		}
	})
}

// recordUsage records usage events through a recorder of their own.
func recordUsage(t testing.TB, db *store.DB, events []usage.Event) {
	t.Helper()
	rec := usage.NewRecorder(db, usage.Options{})
	go rec.Run(context.Background())
	if err := rec.RecordMany(context.Background(), events); err != nil {
		t.Fatalf("record usage: %v", err)
	}
	if err := rec.Close(); err != nil {
		t.Fatal(err)
	}
}
