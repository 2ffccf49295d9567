package directory_test

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// A member's Organization permissions are their roles' and their groups':
// a plain member has none and no Admin Panel, a group's billing_manager
// role gives its three permissions, an organization_admin has them all.
func TestOrganizationPermissionsAndPanelOrganizations(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, ann := setup(t, db)
		org := boot.Organization
		check := func(user string, want steward.PermissionSet, panels int) {
			t.Helper()
			err := db.View(ctx, func(tx *store.Tx) error {
				got, err := directory.OrganizationPermissions(ctx, tx, org.ID, user)
				if err != nil {
					return err
				}
				if got != want {
					t.Errorf("permissions of %s: %v, want %v", user, got.List(), want.List())
				}
				list, err := directory.PanelOrganizations(ctx, tx, user)
				if len(list) != panels || (panels == 1 && (list[0].Organization.ID != org.ID || list[0].Permissions != want)) {
					t.Errorf("panel Organizations of %s: %+v, want %d", user, list, panels)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		var all, billing steward.PermissionSet
		for _, p := range steward.Permissions {
			if p.Scope == steward.ScopeOrganization {
				all = all.With(p.Name)
			}
		}
		for _, p := range []steward.Permission{steward.PermUsageRead, steward.PermBillingRead, steward.PermLimitsRead} {
			billing = billing.With(p)
		}
		check(boot.Admin.ID, all, 1)
		check(ann, 0, 0)
		check("5b0f4a1e-0000-4000-8000-000000000000", 0, 0)
		err := db.Transact(ctx, func(tx *store.Tx) error {
			actor, name := steward.SystemActor("test"), "Finance"
			g, err := directory.CreateGroup(ctx, tx, actor, org, directory.GroupInput{Name: &name})
			if err != nil {
				return err
			}
			if err := directory.SetGroupOrganizationRole(ctx, tx, actor, org, g.ID, steward.RoleOrganizationBilling); err != nil {
				return err
			}
			return directory.ChangeGroupMembers(ctx, tx, actor, org, g.ID, []string{ann}, false)
		})
		if err != nil {
			t.Fatal(err)
		}
		check(ann, billing, 1)
	})
}

// LastActive is the latest of a member's key use in the Organization and
// of their sessions' last request; a member never seen is left out.
func TestLastActive(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, ann := setup(t, db)
		org := boot.Organization.ID
		k, err := keys.NewService(db).CreateKey(ctx, steward.SystemActor("test"), org, keys.NewKey{WorkspaceID: boot.DefaultWorkspace.ID, UserID: boot.Admin.ID})
		if err != nil {
			t.Fatal(err)
		}
		used, seen := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		err = db.Transact(ctx, func(tx *store.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE api_keys SET last_used_at = ? WHERE id = ?`, store.Micros(used), k.Key.ID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO web_sessions (id, token_hash, user_id, method, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				"s1", "hash", boot.Admin.ID, "password", store.Micros(seen), store.Micros(seen), store.Micros(seen.Add(time.Hour)))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		got, err := directory.NewService(db, directory.InviteSettings{}).LastActive(ctx, org, []string{boot.Admin.ID, ann})
		if err != nil || len(got) != 1 || !got[boot.Admin.ID].Equal(used) {
			t.Errorf("LastActive = %v %v, want the admin at %v (the key's use, later than the session's) and not ann", got, err, used)
		}
	})
}
