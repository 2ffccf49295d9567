package web_test

import (
	"context"
	"html"
	"net/url"
	"slices"
	"strings"
	"testing"

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
