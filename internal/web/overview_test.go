package web_test

import (
	"context"
	"html"
	"net/http"
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

// seedKeyUsage records usage of today in the default Workspace by key k of
// the bootstrap admin: 3 requests of 1,000 tokens costing 4.50 in all.
func seedKeyUsage(t testing.TB, e *env, keyID string) {
	t.Helper()
	var events []usage.Event
	for i, id := range []string{"a", "b", "c"} {
		events = append(events, usage.Event{ID: "seed-" + id, Time: time.Now().Add(-time.Duration(i) * time.Minute), OrganizationID: e.boot.Organization.ID,
			WorkspaceID: e.boot.DefaultWorkspace.ID, KeyID: keyID, UserID: e.boot.Admin.ID, Model: "small", InputTokens: 600, OutputTokens: 400,
			Cost: 1_500_000, Currency: "USD", Endpoint: "chat.completions"})
	}
	recordUsage(t, e.db, events)
}

// TestOverview checks each figure of the overview and its link: the spend
// against the Organization's cap and the Workspace's, the daily charts, the
// top Workspaces, keys and users, a limit close to exhaustion, a key that
// expires within 14 days (and not one that expires later), and the latest
// change as a sentence; a billing manager sees the spend, the usage and the
// limits but not the keys nor the log.
func TestOverview(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		seedRoles(t, e)
		ctx := context.Background()
		ks := keys.NewService(db)
		actor := steward.SystemActor("test")
		soon, later := "soon", "later"
		k, err := ks.CreateKey(ctx, actor, e.boot.Organization.ID, keys.NewKey{WorkspaceID: e.boot.DefaultWorkspace.ID, UserID: e.boot.Admin.ID, Name: &soon,
			Expiration: time.Now().UTC().AddDate(0, 0, 5).Format(time.DateOnly)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.CreateKey(ctx, actor, e.boot.Organization.ID, keys.NewKey{WorkspaceID: e.boot.DefaultWorkspace.ID, UserID: e.boot.Admin.ID, Name: &later,
			Expiration: time.Now().UTC().AddDate(0, 0, 40).Format(time.DateOnly)}); err != nil {
			t.Fatal(err)
		}
		seedKeyUsage(t, e, k.Key.ID)
		q := quota.NewService(db)
		orgCap, wsCap := int64(100), int64(5)
		if err := q.SetSpendCap(ctx, actor, e.boot.Organization.ID, "", &orgCap); err != nil {
			t.Fatal(err)
		}
		if err := q.SetSpendCap(ctx, actor, e.boot.Organization.ID, e.boot.DefaultWorkspace.ID, &wsCap); err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn()
		org, ws := e.org(), e.boot.DefaultWorkspace
		r := b.get(org + "/")
		if r.status != http.StatusOK {
			t.Fatalf("overview: %d %s", r.status, r.body)
		}
		body := html.UnescapeString(r.body)
		for _, want := range []string{
			`<a href="` + org + `/limits" class="figure" id="org-spend">4.50 USD</a>`,
			"of the Organization's 100 USD cap",
			`<td><a href="` + org + `/workspaces/` + ws.ID + `">` + ws.Name + `</a></td><td>4.50</td><td>5</td>`,
			"Requests per day from ", ": 3 in all.",
			"Tokens per day from ", ": 3000 in all.",
			`<caption><a href="` + org + `/usage?group=workspace&from=`,
			`<td><a href="` + org + `/keys/` + k.Key.ID + `">soon</a></td><td>4.50</td><td>3</td>`,
			`<td><a href="` + org + `/audit?actor=` + e.boot.Admin.ID + `">admin@example.com</a></td><td>4.50</td><td>3</td>`,
			`<a href="` + org + `/workspaces/` + ws.ID + `">Spend cap of Workspace ` + ws.Name + `</a>: 4.50 of 5 (90%)`,
			`<a href="` + org + `/keys/` + k.Key.ID + `">soon</a> in Workspace ` + ws.Name + `: expires `,
			`Steward (test) changed <a href="` + org + `/workspaces/` + ws.ID + `">the monthly spend cap of Workspace ` + ws.Name + `</a>.`,
			"amount: <del>none</del> → <ins>5</ins>",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the overview lacks %q", want)
			}
		}
		if strings.Contains(body, ">later</a> in Workspace") {
			t.Errorf("the overview lists a key that expires in 40 days as expiring")
		}
		billing := e.browser()
		billing.signIn("billing@example.com", "a member's own password")
		r = billing.get(org + "/")
		body = html.UnescapeString(r.body)
		if r.status != http.StatusOK || !strings.Contains(body, "4.50 USD") || !strings.Contains(body, "Limits close to exhaustion") || !strings.Contains(body, "Requests per day") {
			t.Fatalf("a billing manager's overview: %d %s", r.status, body)
		}
		for _, hidden := range []string{"Keys expiring", "Latest changes", "/keys/" + k.Key.ID, "/workspaces/" + ws.ID} {
			if strings.Contains(body, hidden) {
				t.Errorf("a billing manager's overview shows %q", hidden)
			}
		}
	})
}
