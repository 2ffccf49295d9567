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
