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
