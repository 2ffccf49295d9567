package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// A Workspace's page sets its token limits per model with the Organization
// limits page's form, checked by quota.SetRateLimits against the
// Organization's and audited like the Admin API's changes.
func TestWorkspaceTokenLimits(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn()
		org := e.org()
		var lab, old string
		err := db.Transact(ctx, func(tx *store.Tx) error {
			for _, name := range []string{"Lab", "Old"} {
				ws, err := directory.CreateWorkspace(ctx, tx, steward.SystemActor("test"), e.boot.Organization, directory.NewWorkspace{
					WorkspaceInput: directory.WorkspaceInput{Name: &name}, AdminUserID: e.boot.Admin.ID})
				if err != nil {
					return err
				}
				if name == "Lab" {
					lab = ws.ID
				} else {
					old = ws.ID
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		page := org + "/workspaces/" + lab
		settings := func() quota.Settings {
			t.Helper()
			var s quota.Settings
			if err := db.View(ctx, func(tx *store.Tx) (err error) {
				s, err = quota.Load(ctx, tx, e.boot.Organization.ID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return s
		}
		limitsOf := func(ws string) quota.RateLimits { return settings().RateLimitsOf(ws) }
		refused := func(path string, form url.Values, status int, msg string) {
			t.Helper()
			r := b.form(path, form)
			if r.status != status || !strings.Contains(html.UnescapeString(r.body), msg) {
				t.Errorf("POST %s %v: %d, want %d with %q; body %s", path, form, r.status, status, msg, r.body)
			}
		}

		// The Organization limits small; the Workspace page holds the
		// fragment, posting to the Workspace.
		changed(t, b.form(org+"/limits/models", url.Values{"model": {"small"}, "tokens_per_minute": {"1000"}, "tokens_per_month": {"100000"}}), org+"/limits", "limits_saved")
		changed(t, b.form(org+"/limits", url.Values{"requests_per_second": {"10"}}), org+"/limits", "limits_saved")
		// The spend cap and request rate, from the Workspace's page.
		changed(t, b.form(page+"/limits", url.Values{"from": {"workspace"}, "spend_cap": {"30"}, "requests_per_second": {"7"}}), page, "ws_limits")
		refused(page+"/limits", url.Values{"from": {"workspace"}, "requests_per_second": {"11"}}, http.StatusUnprocessableEntity,
			"a Workspace's requests per second may not exceed the Organization's 10")
		if s := settings(); s.RateLimitsOf(lab).RequestsPerSecond != 7 || s.WorkspaceSpends[lab] != 30 {
			t.Errorf("Workspace limits after the refusal: %d requests per second, a cap of %d; want 7 and 30", s.RateLimitsOf(lab).RequestsPerSecond, s.WorkspaceSpends[lab])
		}
		if r := b.get(page); r.status != http.StatusOK || !strings.Contains(r.body, `action="`+page+`/limits/models"`) ||
			!strings.Contains(r.body, "This Workspace has no token limits of its own.") ||
			!strings.Contains(r.body, `id="ws-cap" name="spend_cap" inputmode="numeric" value="30"`) || !strings.Contains(r.body, `id="ws-rps" name="requests_per_second" inputmode="numeric" value="7"`) ||
			!strings.Contains(r.body, "Spent 0.00 USD of a 30 USD cap.") {
			t.Fatalf("Workspace page: %d %s", r.status, r.body)
		}

		// Within the Organization's: saved, the request rate kept, shown.
		changed(t, b.form(page+"/limits/models", url.Values{"model": {" small "}, "tokens_per_minute": {"500"}}), page, "ws_limits")
		// A model the Organization does not limit takes any limit.
		changed(t, b.form(page+"/limits/models", url.Values{"model": {"large"}, "tokens_per_month": {"9000000"}}), page, "ws_limits")
		rl := limitsOf(lab)
		if rl.RequestsPerSecond != 7 || rl.Models["small"] != (quota.TokenLimits{PerMinute: 500}) || rl.Models["large"] != (quota.TokenLimits{PerMonth: 9000000}) || len(rl.Models) != 2 {
			t.Fatalf("Workspace limits = %+v", rl)
		}
		if r := b.get(page); !strings.Contains(r.body, "<td>small</td><td>500</td><td>none</td>") || !strings.Contains(r.body, "<td>large</td><td>none</td><td>9000000</td>") {
			t.Errorf("Workspace page without its token limits: %s", r.body)
		}
		if r := b.get(org + "/limits"); strings.Contains(r.body, "<td>large</td>") || !strings.Contains(r.body, "<td>small</td><td>1000</td><td>100000</td>") {
			t.Errorf("the Organization's limits page shows a Workspace's limits: %s", r.body)
		}
		entries := func() []audit.Entry {
			t.Helper()
			var list []audit.Entry
			if err := db.View(ctx, func(tx *store.Tx) (err error) {
				list, err = audit.List(ctx, tx, audit.Filter{OrganizationID: e.boot.Organization.ID, EventTypes: []string{audit.EventRateLimitUpdate}, Limit: audit.MaxLimit})
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return list
		}
		list := entries()
		if len(list) != 5 {
			t.Fatalf("%d rate_limit.rule.update entries, want 5", len(list))
		}
		if a := list[0]; a.WorkspaceID != lab || a.TargetType != audit.TargetRateLimitRule || a.TargetMetadata["scope"] != "workspace" ||
			a.TargetMetadata["workspace_name"] != "Lab" || a.EventMetadata["models_after"] != "2" || a.EventMetadata["requests_per_second_after"] != "7" ||
			a.Actor.Type != steward.ActorHuman || a.Actor.UserID != e.boot.Admin.ID {
			t.Errorf("latest entry = %+v, want the Workspace's change by the signed-in admin", a)
		}

		// Never above the Organization's, with the service's message; nothing changes.
		refused(page+"/limits/models", url.Values{"model": {"small"}, "tokens_per_minute": {"2000"}}, http.StatusUnprocessableEntity,
			"a Workspace's token limits of small may not exceed the Organization's")
		refused(page+"/limits/models", url.Values{"model": {"small"}, "tokens_per_month": {"100001"}}, http.StatusUnprocessableEntity,
			"a Workspace's token limits of small may not exceed the Organization's")
		refused(page+"/limits/models", url.Values{"model": {" "}, "tokens_per_minute": {"5"}}, http.StatusUnprocessableEntity,
			"name the model whose token limits to set")
		refused(page+"/limits/models", url.Values{"model": {"small"}, "tokens_per_minute": {"-1"}}, http.StatusUnprocessableEntity,
			"tokens per minute must be a whole number")
		// The Organization's may not fall below the Workspace's.
		refused(org+"/limits/models", url.Values{"model": {"small"}, "tokens_per_minute": {"400"}}, http.StatusUnprocessableEntity,
			"the Organization's limits would fall below those of Workspace "+lab)
		if got := limitsOf(lab).Models["small"]; got != (quota.TokenLimits{PerMinute: 500}) {
			t.Errorf("small after the refusals = %+v", got)
		}
		if got := limitsOf("").Models["small"]; got != (quota.TokenLimits{PerMinute: 1000, PerMonth: 100000}) {
			t.Errorf("the Organization's small after the refusal = %+v", got)
		}
		if n := len(entries()); n != 5 {
			t.Errorf("%d entries after the refusals, want 5", n)
		}

		// Both fields empty remove the model's limits, and only those.
		changed(t, b.form(page+"/limits/models", url.Values{"model": {"small"}}), page, "ws_limits")
		if rl := limitsOf(lab); len(rl.Models) != 1 || rl.Models["large"].PerMonth != 9000000 || rl.RequestsPerSecond != 7 {
			t.Errorf("after removing small = %+v", rl)
		}

		// An archived Workspace's limits can no longer be set.
		changed(t, b.form(org+"/workspaces/"+old+"/archive", url.Values{}), org+"/workspaces", "ws_archived")
		refused(org+"/workspaces/"+old+"/limits/models", url.Values{"model": {"small"}, "tokens_per_minute": {"5"}}, http.StatusConflict,
			"Workspace Old is archived and can no longer change")
		if rl := limitsOf(old); len(rl.Models) != 0 {
			t.Errorf("archived Workspace's limits = %+v", rl)
		}
	})
}
