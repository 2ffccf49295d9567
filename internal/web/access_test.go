package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

var (
	navRE     = regexp.MustCompile(`(?s)<nav aria-label="Admin Panel">(.*?)</nav>`)
	navLinkRE = regexp.MustCompile(`<a href="[^"]*"[^>]*>([^<]+)</a>`)
)

// menu returns the labels of the Admin Panel's menu on a page.
func menu(body string) []string {
	m := navRE.FindStringSubmatch(body)
	if m == nil {
		return nil
	}
	var out []string
	for _, l := range navLinkRE.FindAllStringSubmatch(m[1], -1) {
		out = append(out, l[1])
	}
	return out
}

// seedRoles makes members with other roles than organization_admin, each
// with a password: a billing manager, a member whose custom role reads keys
// and the audit log, one whose custom role reads Workspaces, and a plain
// member.
func seedRoles(t testing.TB, e *env) map[string]string {
	t.Helper()
	ctx := context.Background()
	users := map[string]string{}
	err := e.db.Transact(ctx, func(tx *store.Tx) error {
		name, perms := "Key auditor", []string{string(steward.PermAPIKeysRead), string(steward.PermAuditRead)}
		role, err := directory.CreateCustomRole(ctx, tx, steward.SystemActor("test"), e.boot.Organization.ID,
			directory.CustomRoleInput{Name: &name, Scope: steward.ScopeOrganization, Permissions: &perms})
		if err != nil {
			return err
		}
		readerName, readerPerms := "Workspace reader", []string{string(steward.PermWorkspacesRead)}
		reader, err := directory.CreateCustomRole(ctx, tx, steward.SystemActor("test"), e.boot.Organization.ID,
			directory.CustomRoleInput{Name: &readerName, Scope: steward.ScopeOrganization, Permissions: &readerPerms})
		if err != nil {
			return err
		}
		billing, custom, readers := []string{steward.RoleOrganizationBilling}, []string{role.ID}, []string{reader.ID}
		res, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization, []directory.NewMember{
			{Email: "billing@example.com", Roles: directory.RoleInput{RoleNames: &billing}},
			{Email: "auditor@example.com", Roles: directory.RoleInput{Roles: &custom}},
			{Email: "reader@example.com", Roles: directory.RoleInput{Roles: &readers}},
			{Email: "plain@example.com"},
		})
		users = res.EmailToUserID
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		e.setPassword(u, "a member's own password")
	}
	return users
}

// TestWhoSeesWhat signs in with each Organization role and checks the
// menu, the landing page, that every page the role opens answers 200 and
// every other one 403 (404 for someone without any page, as for an
// Organization that does not exist), and that a form the role may not post
// changes nothing.
func TestWhoSeesWhat(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		seedRoles(t, e)
		org := e.org()
		pages := map[string]string{"Overview": "/", "Members": "/members", "Workspaces": "/workspaces", "Groups": "/groups", "Roles": "/roles",
			"API keys": "/keys", "Limits": "/limits", "Usage": "/usage", "Analytics": "/analytics", "Audit log": "/audit"}
		every := []string{"Overview", "Members", "Workspaces", "Groups", "Roles", "API keys", "Limits", "Usage", "Analytics", "Audit log"}
		for _, tc := range []struct {
			email, password string
			// menu is the menu's pages, in order; land is where /web/ leads.
			menu []string
			land string
		}{
			{"admin@example.com", adminPassword, every, "/"},
			{"billing@example.com", "a member's own password", []string{"Overview", "Limits", "Usage", "Analytics"}, "/"},
			{"auditor@example.com", "a member's own password", []string{"API keys", "Audit log"}, "/keys"},
			{"reader@example.com", "a member's own password", []string{"Workspaces"}, "/workspaces"},
			{"plain@example.com", "a member's own password", nil, ""},
		} {
			t.Run(tc.email, func(t *testing.T) {
				b := e.browser()
				if r := b.signIn(tc.email, tc.password); r.status != http.StatusSeeOther {
					t.Fatalf("sign in: %d %s", r.status, r.body)
				}
				home := b.get("/web/")
				if tc.land == "" {
					if home.status != 200 || !strings.Contains(home.body, "No role of yours opens a page") {
						t.Fatalf("start page: %d %s", home.status, home.body)
					}
				} else {
					if home.status != http.StatusSeeOther || home.location != org+"/" {
						t.Fatalf("start page: %d %q, want the overview", home.status, home.location)
					}
					if r := b.get(org + "/"); tc.land == "/" && r.status != 200 || tc.land != "/" && r.location != org+tc.land {
						t.Fatalf("overview: %d %q, want to land on %s", r.status, r.location, tc.land)
					}
				}
				for _, name := range every {
					r := b.get(org + pages[name])
					want := http.StatusForbidden
					switch {
					case slices.Contains(tc.menu, name):
						want = http.StatusOK
					case tc.menu == nil:
						want = http.StatusNotFound
					case name == "Overview":
						want = http.StatusSeeOther
					}
					if r.status != want {
						t.Errorf("%s: %d, want %d", name, r.status, want)
					}
					if want == http.StatusOK {
						if got := menu(r.body); !slices.Equal(got[:min(len(got), len(tc.menu))], tc.menu) {
							t.Errorf("%s: the menu is %q, want %q first", name, got, tc.menu)
						}
					}
				}
			})
		}
		// A member who reads Workspaces gets no form to change them.
		reader := e.browser()
		reader.signIn("reader@example.com", "a member's own password")
		for _, path := range []string{"/workspaces", "/workspaces/" + e.boot.DefaultWorkspace.ID} {
			r := reader.get(org + path)
			if n := strings.Count(r.body, `<form method="post"`); r.status != 200 || n != 1 {
				t.Errorf("%s for a Workspace reader: %d, %d forms to post, want only the sign-out: %s", path, r.status, n, r.body)
			}
		}
		// A billing manager sees limits but cannot change them.
		b := e.browser()
		b.signIn("billing@example.com", "a member's own password")
		if r := b.get(org + "/limits"); strings.Contains(r.body, `action="`+org+`/limits"`) {
			t.Errorf("the limits page offers a billing manager its form: %s", r.body)
		}
		csrf := b.csrf(org + "/limits")
		if r := b.post(org+"/limits", url.Values{"csrf": {csrf}, "spend_cap": {"5"}}); r.status != http.StatusForbidden {
			t.Errorf("a billing manager's spend cap: %d, want 403", r.status)
		}
		set, err := quota.NewService(db).Settings(context.Background(), e.boot.Organization.ID)
		if err != nil || set.SpendCap != nil {
			t.Errorf("the spend cap after a billing manager's post: %v %v, want none", set.SpendCap, err)
		}
	})
}
