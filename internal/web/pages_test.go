package web_test

import (
	"context"
	"encoding/csv"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// form posts a form of a signed-in page with its anti-forgery token.
func (b *browser) form(path string, values url.Values) reply {
	b.e.t.Helper()
	values.Set("csrf", b.csrf("/web/organizations"))
	return b.post(path, values)
}

// changed fails unless a post redirected to the page with the notice code.
func changed(t *testing.T, r reply, page, code string) {
	t.Helper()
	if r.status != http.StatusSeeOther || r.location != page+"?done="+code {
		t.Fatalf("post: %d %q, want a redirect to %s?done=%s; body %s", r.status, r.location, page, code, r.body)
	}
}

// TestPagesChangeThroughTheServices posts every form of the Admin Panel
// and the Backoffice and checks the result where the services keep it.
func TestPagesChangeThroughTheServices(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn()
		org, ea := e.org(), "/web/ea/"+e.boot.EnterpriseAccount.ID
		view := func(check func(tx *store.Tx) error) {
			t.Helper()
			if err := db.View(ctx, check); err != nil {
				t.Fatal(err)
			}
		}
		var plain string
		err := db.Transact(ctx, func(tx *store.Tx) error {
			res, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization, []directory.NewMember{{Email: "plain@example.com"}})
			plain = res.EmailToUserID["plain@example.com"]
			return err
		})
		if err != nil {
			t.Fatal(err)
		}

		for _, path := range []string{org + "/members", org + "/workspaces", org + "/workspaces/" + e.boot.DefaultWorkspace.ID, org + "/groups",
			org + "/keys", org + "/limits", org + "/usage?metric=tokens&from=2026-01-01&to=2026-01-31&group=model", org + "/audit", org + "/roles",
			ea + "/orgs", ea + "/members", ea + "/admin-keys"} {
			if r := b.get(path); r.status != 200 || !strings.Contains(r.body, "<h1>") {
				t.Errorf("GET %s: %d %s", path, r.status, r.body)
			}
		}

		// Bad input shows the page again with the service's message.
		if r := b.form(org+"/workspaces", url.Values{"name": {"  "}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "name must not be empty") {
			t.Errorf("empty Workspace name: %d %s", r.status, r.body)
		}
		if r := b.form(org+"/limits", url.Values{"spend_cap": {"-5"}}); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "spend cap must be a whole number") {
			t.Errorf("negative cap: %d %s", r.status, r.body)
		}
		if r := b.get(org + "/audit?event_type=nope"); r.status != http.StatusUnprocessableEntity || !strings.Contains(r.body, "not a known event_type") {
			t.Errorf("unknown audit filter: %d %s", r.status, r.body)
		}

		// Members: role, removal, invitation revoked.
		changed(t, b.form(org+"/members/"+plain+"/role", url.Values{"role": {steward.RoleIDOrganizationBilling}}), org+"/members", "member_updated")
		view(func(tx *store.Tx) error {
			m, err := directory.GetMember(ctx, tx, e.boot.Organization.ID, plain)
			if err == nil && (len(m.RoleIDs) != 1 || m.RoleIDs[0] != steward.RoleIDOrganizationBilling) {
				t.Errorf("roles after the change: %v", m.RoleIDs)
			}
			return err
		})
		if r := b.form(org+"/members/"+e.boot.Admin.ID+"/role", url.Values{"role": {steward.RoleIDOrganizationMember}}); r.status != http.StatusConflict {
			t.Errorf("demoting the last admin: %d %s", r.status, r.body)
		}
		b.form(org+"/invitations", url.Values{"emails": {"gone@example.com"}, "role": {steward.RoleIDOrganizationMember}})
		var invite string
		view(func(tx *store.Tx) error {
			list, err := directory.ListInvitations(ctx, tx, e.boot.Organization.ID, false)
			if len(list) == 1 {
				invite = list[0].ID
			}
			return err
		})
		changed(t, b.form(org+"/invitations/"+invite+"/revoke", url.Values{}), org+"/members", "invite_revoked")
		if n := countInvitations(t, db, e.boot.Organization.ID); n != 0 {
			t.Errorf("%d invitations after revoking, want 0", n)
		}

		// Token limits per model: set, then removed.
		changed(t, b.form(org+"/limits/models", url.Values{"model": {"mistral-large-latest"}, "tokens_per_minute": {"5000"}}), org+"/limits", "limits_saved")
		view(func(tx *store.Tx) error {
			s, err := quota.Load(ctx, tx, e.boot.Organization.ID)
			if got := s.Organization.Models["mistral-large-latest"]; err == nil && (got.PerMinute != 5000 || got.PerMonth != 0) {
				t.Errorf("model limits %+v, want 5000 a minute", got)
			}
			return err
		})
		if r := b.get(org + "/limits"); !strings.Contains(r.body, "mistral-large-latest") || !strings.Contains(r.body, "5000") {
			t.Errorf("limits page without the model's limits")
		}
		changed(t, b.form(org+"/limits/models", url.Values{"model": {"mistral-large-latest"}}), org+"/limits", "limits_saved")
		if r := b.get(org + "/limits"); strings.Contains(r.body, "mistral-large-latest") {
			t.Errorf("the model's limits are still shown after removing them")
		}

		// Workspaces: create, a member with a role, limits, archive.
		changed(t, b.form(org+"/workspaces", url.Values{"name": {"Lab"}}), org+"/workspaces", "ws_created")
		var lab string
		view(func(tx *store.Tx) error {
			list, _, err := directory.ListWorkspaces(ctx, tx, e.boot.Organization.ID, false, "Lab", 1, 10)
			if len(list) == 1 {
				lab = list[0].ID
			}
			return err
		})
		changed(t, b.form(org+"/workspaces/"+lab+"/members", url.Values{"user": {plain}, "role": {steward.RoleIDWorkspaceAdmin}}), org+"/workspaces/"+lab, "ws_members")
		if r := b.get(org + "/workspaces/" + lab); !strings.Contains(r.body, "plain@example.com") || !strings.Contains(r.body, "workspace_admin") {
			t.Errorf("Workspace page after adding: %s", r.body)
		}
		limitEntries := func() int {
			var n int
			view(func(tx *store.Tx) error {
				list, err := audit.List(ctx, tx, audit.Filter{OrganizationID: e.boot.Organization.ID,
					EventTypes: []string{audit.EventRateLimitUpdate, audit.EventWorkspaceMonthlyLimitUpdated}, Limit: audit.MaxLimit})
				n = len(list)
				return err
			})
			return n
		}
		initial := limitEntries()
		changed(t, b.form(org+"/workspaces/"+lab+"/limits", url.Values{"spend_cap": {"40"}, "requests_per_second": {"7"}}), org+"/workspaces", "ws_limits")
		if r := b.get(org + "/workspaces"); !strings.Contains(r.body, `value="40"`) || !strings.Contains(r.body, `value="7"`) {
			t.Errorf("Workspace limits not shown after saving")
		}
		before := limitEntries()
		changed(t, b.form(org+"/workspaces/"+lab+"/limits", url.Values{"spend_cap": {"40"}, "requests_per_second": {"7"}}), org+"/workspaces", "ws_limits")
		if after := limitEntries(); before != initial+2 || after != before {
			t.Errorf("limit entries: %d, %d after saving two limits, %d after saving them unchanged; want 2 more, then none", initial, before, after)
		}
		changed(t, b.form(org+"/workspaces/"+lab+"/members/"+plain+"/remove", url.Values{}), org+"/workspaces/"+lab, "ws_members")
		changed(t, b.form(org+"/workspaces/"+lab, url.Values{"name": {"Lab 2"}, "description": {"wet"}}), org+"/workspaces/"+lab, "ws_updated")
		changed(t, b.form(org+"/workspaces/"+lab+"/key-policy", url.Values{"max_days": {"10"}}), org+"/workspaces/"+lab, "policy_saved")
		view(func(tx *store.Tx) error {
			ws, err := directory.GetWorkspace(ctx, tx, e.boot.Organization.ID, lab)
			if err == nil && (ws.Name != "Lab 2" || ws.Description != "wet") {
				t.Errorf("Workspace after the change: %q %q", ws.Name, ws.Description)
			}
			days, err2 := keys.PolicyDays(ctx, tx, e.boot.Organization.ID, lab)
			if err2 == nil && days != 10 {
				t.Errorf("Workspace key policy %d days, want 10", days)
			}
			return errors.Join(err, err2)
		})

		// Groups: create, member, assignment, nesting, delete.
		changed(t, b.form(org+"/groups", url.Values{"name": {"Ops"}}), org+"/groups", "group_created")
		changed(t, b.form(org+"/groups", url.Values{"name": {"Oncall"}}), org+"/groups", "group_created")
		groups := map[string]string{}
		view(func(tx *store.Tx) error {
			list, _, err := directory.ListGroups(ctx, tx, e.boot.Organization.ID, "", 1, 10)
			for _, g := range list {
				groups[g.Name] = g.ID
			}
			return err
		})
		ops := org + "/groups/" + groups["Ops"]
		changed(t, b.form(ops+"/members", url.Values{"user": {plain}}), ops, "group_saved")
		changed(t, b.form(ops+"/workspaces", url.Values{"workspace": {lab}, "role": {steward.RoleIDWorkspaceContributor}}), ops, "group_saved")
		changed(t, b.form(ops+"/nested", url.Values{"child": {groups["Oncall"]}}), ops, "group_saved")
		if r := b.get(ops); !strings.Contains(r.body, "plain@example.com") || !strings.Contains(r.body, "Lab") ||
			!strings.Contains(r.body, `value="`+groups["Oncall"]+`" checked`) {
			t.Errorf("group page: %s", r.body)
		}
		changed(t, b.form(ops, url.Values{"name": {"Operations"}, "description": {"on call"}}), ops, "group_saved")
		view(func(tx *store.Tx) error {
			g, err := directory.GetGroup(ctx, tx, e.boot.Organization.ID, groups["Ops"])
			if err == nil && (g.Name != "Operations" || g.Description == nil || *g.Description != "on call") {
				t.Errorf("group after the change: %+v", g)
			}
			return err
		})
		changed(t, b.form(org+"/groups/"+groups["Oncall"]+"/delete", url.Values{}), org+"/groups", "group_deleted")
		changed(t, b.form(org+"/workspaces/"+lab+"/archive", url.Values{}), org+"/workspaces", "ws_archived")

		// Roles.
		changed(t, b.form(org+"/roles", url.Values{"name": {"auditor"}, "scope": {"organization"}, "permission": {"audit.read"}}), org+"/roles", "role_created")
		var role string
		view(func(tx *store.Tx) error {
			list, err := directory.ListCustomRoles(ctx, tx, e.boot.Organization.ID)
			if len(list) == 1 {
				role = list[0].ID
			}
			return err
		})
		if r := b.form(org+"/roles", url.Values{"name": {"broken"}, "scope": {"organization"}, "permission": {"models.use"}}); r.status != 422 || !strings.Contains(r.body, "is a workspace permission") {
			t.Errorf("role with a permission of the other scope: %d", r.status)
		}
		changed(t, b.form(org+"/roles/"+role+"/delete", url.Values{}), org+"/roles", "role_deleted")

		// Keys: policy, create, delete.
		changed(t, b.form(org+"/key-policy", url.Values{"max_days": {"30"}}), org+"/keys", "policy_saved")
		if r := b.form(org+"/keys", url.Values{"workspace": {e.boot.DefaultWorkspace.ID}, "name": {"temp"}}); r.status != 200 || !strings.Contains(r.body, "secret-value") {
			t.Fatalf("create key: %d %s", r.status, r.body)
		}
		var key steward.APIKey
		view(func(tx *store.Tx) error {
			list, err := keys.ListKeys(ctx, tx, e.boot.Organization.ID, "", 10, 0)
			if len(list) == 1 {
				key = list[0]
			}
			return err
		})
		if key.ExpiresAt == nil {
			t.Errorf("a key made under a 30-day policy has no expiry")
		}
		changed(t, b.form(org+"/keys/"+key.ID+"/delete", url.Values{}), org+"/keys", "key_deleted")

		// Audit filters: the person, the days.
		today := time.Now().UTC().Format("2006-01-02")
		if r := b.get(org + "/audit?actor=" + e.boot.Admin.ID + "&from=" + today + "&to=" + today + "&event_type=api_key.delete"); !strings.Contains(r.body, "<code>api_key.delete</code>") {
			t.Errorf("audit filtered by person and day misses the deletion: %s", r.body)
		}
		if r := b.get(org + "/audit?actor=" + plain + "&event_type=api_key.delete"); strings.Contains(r.body, "<code>api_key.delete</code>") {
			t.Errorf("audit filtered by another person shows the admin's deletion")
		}
		if r := b.get(org + "/audit?to=2000-01-01"); strings.Contains(r.body, "<code>") {
			t.Errorf("audit up to 2000 shows entries")
		}

		// Audit export.
		r := b.get(org + "/audit.csv?event_type=api_key.delete")
		rows, err := csv.NewReader(strings.NewReader(r.body)).ReadAll()
		if err != nil || r.header.Get("Content-Type") != "text/csv; charset=utf-8" || len(rows) != 2 || rows[1][5] != "api_key.delete" || rows[1][2] != "HUMAN" {
			t.Errorf("CSV export: %v %v %q", err, r.header, r.body)
		}

		// Backoffice: promote the member, add them, remove them.
		changed(t, b.form(ea+"/orgs/"+e.boot.Organization.ID+"/promote", url.Values{"user": {e.boot.Admin.ID}}), ea+"/orgs", "promoted")
		if r := b.form(ea+"/members", url.Values{"email": {"plain@example.com"}}); r.status != 422 {
			t.Errorf("adding a member who administers nothing: %d %s", r.status, r.body)
		}
		changed(t, b.form(org+"/members/"+plain+"/role", url.Values{"role": {steward.RoleIDOrganizationAdmin}}), org+"/members", "member_updated")
		changed(t, b.form(ea+"/members", url.Values{"email": {"plain@example.com"}}), ea+"/members", "ea_member_added")
		changed(t, b.form(ea+"/members/"+plain+"/remove", url.Values{}), ea+"/members", "ea_member_gone")
		changed(t, b.form(ea+"/admin-keys/"+e.boot.AdminKey.ID+"/delete", url.Values{}), ea+"/admin-keys", "admin_key_gone")
		changed(t, b.form(org+"/members/"+plain+"/remove", url.Values{}), org+"/members", "member_removed")
	})
}

// The audit log's pages follow one another: the link to older entries keeps
// its filters and leads to the next 50.
func TestAuditLogPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn()
		if err := db.Transact(ctx, func(tx *store.Tx) error {
			for i := range 60 {
				if err := audit.Record(ctx, tx, audit.Entry{EnterpriseAccountID: e.boot.EnterpriseAccount.ID, OrganizationID: e.boot.Organization.ID,
					Actor: steward.SystemActor("test"), EventType: audit.EventRateLimitUpdate, TargetType: audit.TargetRateLimitRule,
					EventMetadata: map[string]string{"n": strconv.Itoa(i)}}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		first := b.get(e.org() + "/audit?event_type=" + audit.EventRateLimitUpdate)
		m := regexp.MustCompile(`<a href="([^"]+)">Older entries</a>`).FindStringSubmatch(first.body)
		if first.status != 200 || m == nil {
			t.Fatalf("first page: %d, no link to older entries: %.300s", first.status, first.body)
		}
		link := html.UnescapeString(m[1])
		q, err := url.ParseQuery(strings.TrimPrefix(link, "?"))
		if err != nil || q.Get("event_type") != audit.EventRateLimitUpdate || q.Get("before") == "" || q.Get("before_id") == "" {
			t.Fatalf("the link to older entries is %q (%v)", link, err)
		}
		second := b.get(e.org() + "/audit" + link)
		rows := strings.Count(second.body, "<code>"+audit.EventRateLimitUpdate+"</code>")
		if second.status != 200 || rows != 10 || strings.Contains(second.body, "Older entries") {
			t.Fatalf("second page: %d with %d entries, want the 10 oldest and no further link", second.status, rows)
		}
	})
}
