package directory_test

import (
	"context"
	"testing"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func setup(t testing.TB, db *store.DB) (bootstrap.Result, string) {
	t.Helper()
	ctx := context.Background()
	boot, err := bootstrap.Run(ctx, db, bootstrap.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var user string
	err = db.Transact(ctx, func(tx *store.Tx) error {
		res, err := directory.CreateMembers(ctx, tx, steward.SystemActor("test"), boot.Organization, []directory.NewMember{{Email: "ann@example.com"}})
		user = res.EmailToUserID["ann@example.com"]
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return boot, user
}

func TestAccessFollowsChangesAtOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, ann := setup(t, db)
		access := directory.NewAccess(db)
		org, ws := boot.Organization.ID, boot.DefaultWorkspace.ID
		can := func() bool {
			t.Helper()
			p, err := access.WorkspacePermissions(ctx, org, ann, ws)
			if err != nil {
				t.Fatal(err)
			}
			return p.Has(steward.PermModelsUse)
		}
		if !can() {
			t.Fatal("a new member cannot use the default Workspace")
		}
		actor := steward.SystemActor("test")
		change := func(fn func(tx *store.Tx) error) {
			t.Helper()
			if err := db.Transact(ctx, fn); err != nil {
				t.Fatal(err)
			}
		}
		change(func(tx *store.Tx) error {
			_, _, err := directory.AddWorkspaceMembers(ctx, tx, actor, boot.Organization, ws,
				[]directory.WorkspaceMemberInput{{UserID: ann, Roles: directory.RoleInput{RoleNames: &[]string{"billing"}}}}, true)
			return err
		})
		if can() {
			t.Fatal("still allowed after the role became billing")
		}
		var group steward.Group
		change(func(tx *store.Tx) error {
			var err error
			name := "Devs"
			if group, err = directory.CreateGroup(ctx, tx, actor, boot.Organization, directory.GroupInput{Name: &name}); err != nil {
				return err
			}
			if err := directory.ChangeGroupMembers(ctx, tx, actor, boot.Organization, group.ID, []string{ann}, false); err != nil {
				return err
			}
			return directory.AssignGroup(ctx, tx, actor, boot.Organization, directory.AssignmentChange{GroupID: group.ID, WorkspaceID: ws})
		})
		if !can() {
			t.Fatal("not allowed through the group")
		}
		change(func(tx *store.Tx) error {
			return directory.ChangeGroupMembers(ctx, tx, actor, boot.Organization, group.ID, []string{ann}, true)
		})
		if can() {
			t.Fatal("still allowed after leaving the group")
		}
		// A rolled-back change changes nothing.
		_ = db.Transact(ctx, func(tx *store.Tx) error {
			_ = directory.ChangeGroupMembers(ctx, tx, actor, boot.Organization, group.ID, []string{ann}, false)
			return context.Canceled
		})
		if can() {
			t.Fatal("allowed by a rolled-back change")
		}
		change(func(tx *store.Tx) error { return directory.RemoveMember(ctx, tx, actor, boot.Organization, ann) })
		if p, _ := access.WorkspacePermissions(ctx, org, ann, ws); p != 0 {
			t.Fatalf("a removed member keeps %v", p.List())
		}
	})
}

// BenchmarkWorkspacePermissions measures the question the gateway asks on
// every request about a key's owner, answered from memory.
//
//	go test ./internal/directory -run '^$' -bench WorkspacePermissions
func BenchmarkWorkspacePermissions(b *testing.B) {
	db, _ := storetest.OpenSQLite(b)
	boot, ann := setup(b, db)
	access := directory.NewAccess(db)
	ctx := context.Background()
	org, ws := boot.Organization.ID, boot.DefaultWorkspace.ID
	if _, err := access.WorkspacePermissions(ctx, org, ann, ws); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		p, err := access.WorkspacePermissions(ctx, org, ann, ws)
		if err != nil || !p.Has(steward.PermModelsUse) {
			b.Fatal("denied")
		}
	}
}

// A Workspace's new name reaches the access graph, which holds it; a new
// description or icon, which it does not hold, changes nothing it caches.
func TestWorkspaceUpdatesChangeAccessOnlyByName(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, _ := setup(t, db)
		access := directory.NewAccess(db)
		org, ws := boot.Organization.ID, boot.DefaultWorkspace.ID
		var heard []store.Change
		db.Subscribe(func(c store.Change) {
			if c.Topic == directory.TopicAccess {
				heard = append(heard, c)
			}
		})
		update := func(in directory.WorkspaceInput) {
			t.Helper()
			err := db.Transact(ctx, func(tx *store.Tx) error {
				_, err := directory.UpdateWorkspace(ctx, tx, steward.SystemActor("test"), boot.Organization, ws, in)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if _, err := access.Graph(ctx, org); err != nil {
			t.Fatal(err)
		}
		description, icon, name := "for the robots", "🤖", "Robots"
		update(directory.WorkspaceInput{Description: &description, Icon: &icon})
		if len(heard) != 0 {
			t.Errorf("a new description and icon published %v", heard)
		}
		update(directory.WorkspaceInput{Name: &name})
		g, err := access.Graph(ctx, org)
		if err != nil {
			t.Fatal(err)
		}
		if len(heard) != 1 || g.Workspaces[ws].Name != name {
			t.Errorf("after a rename: published %v, the graph names the Workspace %q; want one change and %q", heard, g.Workspaces[ws].Name, name)
		}
	})
}

// An Organization is read once a process and answered from memory
// afterwards, until a change of it is published; one that does not exist
// is NotFound every time.
func TestOrganizationsAreReadOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, _ := setup(t, db)
		org := boot.Organization
		rename := func(name string, publish bool) {
			t.Helper()
			err := db.Transact(ctx, func(tx *store.Tx) error {
				if publish {
					tx.Notify(store.Change{Topic: directory.TopicOrganizations, OrganizationID: org.ID})
				}
				_, err := tx.Exec(ctx, `UPDATE organizations SET name = ? WHERE id = ?`, name, org.ID)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		named := func(want string) {
			t.Helper()
			got, err := directory.Organization(ctx, db, org.ID)
			if err != nil || got.Name != want || got.EnterpriseAccountID != org.EnterpriseAccountID {
				t.Fatalf("Organization = %+v, %v; want %q of %s", got, err, want, org.EnterpriseAccountID)
			}
		}
		named(org.Name)
		rename("Behind its back", false)
		named(org.Name)
		rename("Published", true)
		named("Published")
		for range 2 {
			if _, err := directory.Organization(ctx, db, "00000000-0000-0000-0000-000000000000"); !steward.IsKind(err, steward.KindNotFound) {
				t.Fatalf("an unknown Organization: %v, want NotFound", err)
			}
		}
	})
}

// Two changes of different fields of one Workspace, group or custom role,
// made at once both last: the second reads the row once the first has
// committed, instead of writing the first's field back as it was
// (PostgreSQL; SQLite runs one writer at a time).
func TestConcurrentUpdatesKeepBothFields(t *testing.T) {
	ctx := context.Background()
	db, _ := storetest.OpenPostgres(t)
	boot, _ := setup(t, db)
	actor, org := steward.SystemActor("test"), boot.Organization
	groupName := "Devs"
	group, err := store.Write(ctx, db, func(tx *store.Tx) (steward.Group, error) {
		return directory.CreateGroup(ctx, tx, actor, org, directory.GroupInput{Name: &groupName})
	})
	if err != nil {
		t.Fatal(err)
	}
	roleName, perms := "Key auditor", []string{string(steward.PermAPIKeysRead)}
	role, err := store.Write(ctx, db, func(tx *store.Tx) (directory.CustomRole, error) {
		return directory.CreateCustomRole(ctx, tx, actor, org.ID, directory.CustomRoleInput{Name: &roleName, Scope: steward.ScopeOrganization, Permissions: &perms})
	})
	if err != nil {
		t.Fatal(err)
	}
	name, description := "Renamed", "described"
	for _, c := range []struct {
		what          string
		first, second func(tx *store.Tx) error
		read          func(tx *store.Tx) (string, string, error)
	}{
		{"Workspace", func(tx *store.Tx) error {
			_, err := directory.UpdateWorkspace(ctx, tx, actor, org, boot.DefaultWorkspace.ID, directory.WorkspaceInput{Name: &name})
			return err
		}, func(tx *store.Tx) error {
			_, err := directory.UpdateWorkspace(ctx, tx, actor, org, boot.DefaultWorkspace.ID, directory.WorkspaceInput{Description: &description})
			return err
		}, func(tx *store.Tx) (string, string, error) {
			w, err := directory.GetWorkspace(ctx, tx, org.ID, boot.DefaultWorkspace.ID)
			return w.Name, w.Description, err
		}},
		{"group", func(tx *store.Tx) error {
			_, err := directory.UpdateGroup(ctx, tx, actor, org, group.ID, directory.GroupInput{Name: &name})
			return err
		}, func(tx *store.Tx) error {
			_, err := directory.UpdateGroup(ctx, tx, actor, org, group.ID, directory.GroupInput{Description: &description})
			return err
		}, func(tx *store.Tx) (string, string, error) {
			g, err := directory.GetGroup(ctx, tx, org.ID, group.ID)
			if g.Description == nil {
				return g.Name, "", err
			}
			return g.Name, *g.Description, err
		}},
		{"custom role", func(tx *store.Tx) error {
			_, err := directory.UpdateCustomRole(ctx, tx, actor, org.ID, role.ID, directory.CustomRoleInput{Name: &name})
			return err
		}, func(tx *store.Tx) error {
			_, err := directory.UpdateCustomRole(ctx, tx, actor, org.ID, role.ID, directory.CustomRoleInput{Description: &description})
			return err
		}, func(tx *store.Tx) (string, string, error) {
			r, err := directory.GetCustomRole(ctx, tx, org.ID, role.ID)
			return r.Name, r.Description, err
		}},
	} {
		// The second reaches its read (and, without the lock,
		// reads the old name) while the first holds its change
		// uncommitted.
		storetest.Meanwhile(t, db, c.first, func() error { return db.Transact(ctx, c.second) })
		var gotName, gotDescription string
		err := db.View(ctx, func(tx *store.Tx) error {
			var err error
			gotName, gotDescription, err = c.read(tx)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if gotName != name || gotDescription != description {
			t.Errorf("after two changes at once the %s is named %q and described %q; want %q and %q", c.what, gotName, gotDescription, name, description)
		}
	}
}
