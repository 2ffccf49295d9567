package web_test

import (
	"context"
	"html"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// The invitation form offers what POST /v1/admin/users-invite takes:
// several addresses, an Organization role and Workspaces, which invitees
// join with the default Workspace role, as the page says.
func TestInviteSeveralWithRoleAndWorkspaces(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn()
		org := e.org()
		var lab string
		err := db.Transact(ctx, func(tx *store.Tx) error {
			name := "Lab"
			ws, err := directory.CreateWorkspace(ctx, tx, steward.SystemActor("test"), e.boot.Organization, directory.NewWorkspace{
				WorkspaceInput: directory.WorkspaceInput{Name: &name}, AdminUserID: e.boot.Admin.ID})
			lab = ws.ID
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := b.get(org + "/members"); !strings.Contains(html.UnescapeString(r.body), "Invitees join every Workspace as workspace_contributor") ||
			!strings.Contains(r.body, `name="workspace" value="`+lab+`"`) {
			t.Fatalf("members page: %s", r.body)
		}
		r := b.form(org+"/invitations", url.Values{"emails": {"a@example.com, b@example.com\nnot-an-address"},
			"role": {steward.RoleIDOrganizationBilling}, "workspace": {lab}})
		if r.status != 200 || !strings.Contains(r.body, "2 invitation(s) sent.") || !strings.Contains(r.body, "Not valid addresses: not-an-address.") {
			t.Fatalf("invite: %d %s", r.status, r.body)
		}
		if err := db.View(ctx, func(tx *store.Tx) error {
			list, err := directory.ListInvitations(ctx, tx, e.boot.Organization.ID, false)
			var emails []string
			for _, inv := range list {
				emails = append(emails, inv.Email)
				if !slices.Equal(inv.RoleIDs, []string{steward.RoleIDOrganizationBilling}) || !slices.Equal(inv.WorkspaceIDs, []string{lab}) {
					t.Errorf("invitation %+v, want billing_manager and Lab", inv)
				}
			}
			slices.Sort(emails)
			if !slices.Equal(emails, []string{"a@example.com", "b@example.com"}) {
				t.Errorf("invited %v", emails)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
	})
}

// A member whom the identity provider deactivated is marked so on the
// members page (Mistral's member objects have no field for it), and no
// longer once reactivated.
func TestMembersPageShowsDeactivatedMembers(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn()
		var ada string
		setActive := func(active bool) {
			t.Helper()
			err := db.Transact(ctx, func(tx *store.Tx) error {
				if ada == "" {
					res, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization, []directory.NewMember{{Email: "ada@example.com"}})
					if err != nil {
						return err
					}
					ada = res.EmailToUserID["ada@example.com"]
				}
				return directory.SetMemberActive(ctx, tx, steward.SystemActor("test"), e.boot.Organization, ada, active)
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		marked := func() bool {
			t.Helper()
			r := b.get(e.org() + "/members")
			if r.status != 200 || !strings.Contains(r.body, "<td>ada@example.com") || !strings.Contains(r.body, "<td>"+e.boot.Admin.Email+"</td>") {
				t.Fatalf("members page: %d %s", r.status, r.body)
			}
			return strings.Contains(r.body, `<td>ada@example.com <span class="tag"`) && strings.Contains(r.body, ">deactivated</span>")
		}
		setActive(false)
		if !marked() {
			t.Fatal("a deactivated member is not marked deactivated")
		}
		setActive(true)
		if marked() {
			t.Fatal("a reactivated member is still marked deactivated")
		}
	})
}

// TestMembersSearchLastActiveAndResend searches members by name and by
// part of an address (a LIKE wildcard matching itself), shows when each was
// last active (their session), and resends an invitation: a new link, the
// old one refused, the roles kept, the audit entry a resend.
func TestMembersSearchLastActiveAndResend(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		err := db.Transact(ctx, func(tx *store.Tx) error {
			_, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), e.boot.Organization, []directory.NewMember{
				{Email: "ada@example.com", FirstName: "Ada", LastName: "Lovelace"},
				{Email: "grace_h@example.com", FirstName: "Grace", LastName: "Hopper"},
				{Email: "gracehx@example.com"},
			})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn()
		org := e.org()
		emails := func(body string) []string {
			var out []string
			for _, m := range []string{"admin@example.com", "ada@example.com", "grace_h@example.com", "gracehx@example.com"} {
				if strings.Contains(body, "<td>"+m) {
					out = append(out, m)
				}
			}
			return out
		}
		for _, tc := range []struct {
			q    string
			want []string
		}{
			{"lovelace", []string{"ada@example.com"}},
			{"Grace Hop", []string{"grace_h@example.com"}},
			{"grace_", []string{"grace_h@example.com"}},
			{"GRACE", []string{"grace_h@example.com", "gracehx@example.com"}},
			{"nobody", nil},
		} {
			r := b.get(org + "/members?q=" + url.QueryEscape(tc.q))
			if got := emails(r.body); r.status != 200 || !slices.Equal(got, tc.want) {
				t.Errorf("search %q: %d %q, want %q", tc.q, r.status, got, tc.want)
			}
		}
		// The admin is signed in: last active is today; Ada never was.
		r := b.get(org + "/members?q=example.com")
		today := time.Now().UTC().Format("2006-01-02")
		admin, _, _ := strings.Cut(r.body[strings.Index(r.body, "<td>admin@example.com"):], "</tr>")
		ada, _, _ := strings.Cut(r.body[strings.Index(r.body, "<td>ada@example.com"):], "</tr>")
		if !strings.Contains(admin, "<td>"+today) || !strings.Contains(ada, "<td>never</td>") {
			t.Errorf("last active: admin %s; ada %s", admin, ada)
		}

		if r := b.form(org+"/invitations", url.Values{"emails": {"new@example.com"}, "role": {steward.RoleIDOrganizationBilling}}); r.status != 200 {
			t.Fatalf("invite: %d %s", r.status, r.body)
		}
		pending := func() []steward.Invitation {
			var list []steward.Invitation
			if err := db.View(ctx, func(tx *store.Tx) error {
				var err error
				list, err = directory.ListInvitations(ctx, tx, e.boot.Organization.ID, false)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			return list
		}
		before := pending()
		if len(before) != 1 {
			t.Fatalf("pending invitations: %+v", before)
		}
		r = b.form(org+"/invitations/"+before[0].ID+"/resend", url.Values{})
		changed(t, r, org+"/members", "invite_resent")
		after := pending()
		if len(after) != 1 || after[0].ID == before[0].ID || after[0].Email != "new@example.com" || !slices.Equal(after[0].RoleIDs, []string{steward.RoleIDOrganizationBilling}) {
			t.Errorf("after the resend: %+v, want one new invitation of new@example.com as billing manager", after)
		}
		if r := b.form(org+"/invitations/"+before[0].ID+"/resend", url.Values{}); r.status != 404 {
			t.Errorf("resending the replaced invitation: %d, want 404", r.status)
		}
		entries, err := audit.NewService(db).List(ctx, audit.Filter{OrganizationID: e.boot.Organization.ID, EventTypes: []string{audit.EventInviteResend}, Limit: 5})
		if err != nil || len(entries) != 1 || entries[0].TargetMetadata["email"] != "new@example.com" || entries[0].Actor.UserID != e.boot.Admin.ID {
			t.Errorf("resend audit entries: %+v %v", entries, err)
		}
	})
}
