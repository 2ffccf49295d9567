package keys_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

func list(names ...string) *steward.ModelAllowList { return steward.NewModelAllowList(names) }

// show writes a list for messages: "every model" for no list.
func show(l *steward.ModelAllowList) string {
	if l == nil {
		return "every model"
	}
	return fmt.Sprintf("%q", l.Names())
}

// lastEntry returns the newest audit entry of an event type in the
// Organization, Steward's own included.
func lastEntry(t *testing.T, db *store.DB, orgID, event string) (audit.Entry, int) {
	t.Helper()
	var entries []audit.Entry
	err := db.View(context.Background(), func(tx *store.Tx) error {
		var err error
		entries, err = audit.List(context.Background(), tx, audit.Filter{OrganizationID: orgID, EventTypes: []string{event}, Limit: audit.MaxLimit})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		return audit.Entry{}, 0
	}
	return entries[0], len(entries)
}

// allowed checks what the key check gives a key: the models it may call.
func allowed(t *testing.T, c *keys.Checker, secret string, want *steward.ModelAllowList) *steward.ModelAllowList {
	t.Helper()
	k, err := c.Check(context.Background(), secret)
	if err != nil {
		t.Fatal(err)
	}
	if !k.Models.Equal(want) {
		t.Fatalf("the key check allows %s, want %s", show(k.Models), show(want))
	}
	return k.Models
}

// TestModelAllowLists: a Workspace's list and a key's own are stored,
// audited with before and after, checked against the models served, and
// reach the key check at once, intersected.
func TestModelAllowLists(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		org, ws := f.boot.Organization, f.boot.DefaultWorkspace.ID
		svc := keys.NewService(db)
		served := []string{"a", "b", "c"}
		k1, s1 := f.newKey(t, ws, "")
		_, s2 := f.newKey(t, ws, "")

		if l, err := svc.WorkspaceModels(ctx, org.ID, ws); err != nil || l != nil {
			t.Fatalf("a new Workspace's list: %s, %v; want none", show(l), err)
		}
		if m, err := svc.KeyModels(ctx, org.ID, k1.ID); err != nil || m.Own != nil || m.Workspace != nil || m.Effective != nil {
			t.Fatalf("a new key's lists: %+v, %v; want none", m, err)
		}
		allowed(t, f.checker, s1, nil)

		// The Workspace's list holds every key of it, one shared value.
		l, err := svc.SetWorkspaceModels(ctx, actor, org.ID, ws, list("b", "a"), served)
		if err != nil || !slices.Equal(l.Names(), []string{"a", "b"}) {
			t.Fatalf("SetWorkspaceModels = %s, %v", show(l), err)
		}
		if e, n := lastEntry(t, db, org.ID, audit.EventWorkspaceUpdate); n != 1 || e.WorkspaceID != ws || e.TargetType != audit.TargetWorkspace ||
			e.EventMetadata["allowed_models_before"] != "all" || e.EventMetadata["allowed_models_after"] != `["a","b"]` || e.TargetMetadata["id"] != ws {
			t.Fatalf("audit entry %+v (%d)", e, n)
		}
		if p1, p2 := allowed(t, f.checker, s1, list("a", "b")), allowed(t, f.checker, s2, list("a", "b")); p1 != p2 {
			t.Error("two keys of one Workspace, without lists of their own, do not share their allow list")
		}

		// A key's own list restricts it further.
		m, err := svc.SetKeyModels(ctx, actor, org.ID, k1.ID, list("b", "c"), served)
		if err != nil || !m.Own.Equal(list("b", "c")) || !m.Workspace.Equal(list("a", "b")) || !m.Effective.Equal(list("b")) {
			t.Fatalf("SetKeyModels = %+v, %v", m, err)
		}
		if e, n := lastEntry(t, db, org.ID, audit.EventAPIKeyUpdate); n != 1 || e.TargetType != audit.TargetAPIKey || e.TargetMetadata["id"] != k1.ID ||
			e.EventMetadata["allowed_models_before"] != "all" || e.EventMetadata["allowed_models_after"] != `["b","c"]` {
			t.Fatalf("audit entry %+v (%d)", e, n)
		}
		allowed(t, f.checker, s1, list("b"))
		allowed(t, f.checker, s2, list("a", "b"))

		// Unknown names are refused, each named; nothing changes.
		_, err = svc.SetWorkspaceModels(ctx, actor, org.ID, ws, list("a", "typo", "zz"), served)
		var se *steward.Error
		if !steward.IsKind(err, steward.KindInvalid) {
			t.Fatalf("unknown names: %v, want KindInvalid", err)
		}
		se = err.(*steward.Error)
		if len(se.Also) != 1 || !strings.Contains(se.Message, `"typo" is not a model this server serves`) ||
			!strings.Contains(se.Also[0].Message, `"zz" is not a model`) || !slices.Equal(se.Field, []string{"body", "allowed_models"}) {
			t.Fatalf("unknown names: %+v %+v", se, se.Also)
		}
		if _, err := svc.SetKeyModels(ctx, actor, org.ID, k1.ID, list("nope"), served); !steward.IsKind(err, steward.KindInvalid) {
			t.Fatalf("an unknown name on a key's list: %v", err)
		}
		if _, n := lastEntry(t, db, org.ID, audit.EventWorkspaceUpdate); n != 1 {
			t.Fatalf("%d workspace.update entries after refusals, want 1", n)
		}
		allowed(t, f.checker, s2, list("a", "b"))

		// A model no longer served may stay on a list it is on, not join
		// one; the same list again changes nothing and is not audited.
		if _, err := svc.SetWorkspaceModels(ctx, actor, org.ID, ws, list("a", "b"), []string{"c"}); err != nil {
			t.Fatalf("the same list, its models no longer served: %v", err)
		}
		if _, err := svc.SetWorkspaceModels(ctx, actor, org.ID, ws, list("a"), []string{"c"}); err != nil {
			t.Fatalf("a model no longer served, kept: %v", err)
		}
		if _, err := svc.SetWorkspaceModels(ctx, actor, org.ID, ws, list("a", "b"), []string{"c"}); !steward.IsKind(err, steward.KindInvalid) {
			t.Fatalf("a model no longer served, added back: %v", err)
		}
		if _, n := lastEntry(t, db, org.ID, audit.EventWorkspaceUpdate); n != 2 {
			t.Fatalf("%d workspace.update entries, want 2", n)
		}
		allowed(t, f.checker, s1, list())
		allowed(t, f.checker, s2, list("a"))

		// An empty list allows nothing; null allows every model again.
		if _, err := svc.SetKeyModels(ctx, actor, org.ID, k1.ID, list(), served); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SetWorkspaceModels(ctx, actor, org.ID, ws, nil, served); err != nil {
			t.Fatal(err)
		}
		if e, _ := lastEntry(t, db, org.ID, audit.EventWorkspaceUpdate); e.EventMetadata["allowed_models_before"] != `["a"]` || e.EventMetadata["allowed_models_after"] != "all" {
			t.Fatalf("audit entry of the removal %+v", e.EventMetadata)
		}
		allowed(t, f.checker, s1, list())
		allowed(t, f.checker, s2, nil)
		m, err = svc.SetKeyModels(ctx, actor, org.ID, k1.ID, nil, served)
		if err != nil || m.Own != nil || m.Effective != nil {
			t.Fatalf("a key's list removed: %+v, %v", m, err)
		}
		allowed(t, f.checker, s1, nil)

		// A fresh key check reads the lists as they are stored.
		if _, err := svc.SetWorkspaceModels(ctx, actor, org.ID, ws, list("c"), served); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.SetKeyModels(ctx, actor, org.ID, k1.ID, list("a", "c"), served); err != nil {
			t.Fatal(err)
		}
		fresh, err := keys.NewChecker(ctx, db, directory.NewAccess(db))
		if err != nil {
			t.Fatal(err)
		}
		allowed(t, fresh, s1, list("c"))
		allowed(t, fresh, s2, list("c"))
	})
}

// TestModelAllowListsBelongToTheirOrganization: another Organization's
// Workspace or key is not found, and an archived Workspace's list cannot
// change.
func TestModelAllowListsBelongToTheirOrganization(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		org, ws := f.boot.Organization, f.boot.DefaultWorkspace.ID
		svc := keys.NewService(db)
		k, _ := f.newKey(t, ws, "")
		var other steward.Organization
		var lab steward.Workspace
		f.change(t, func(tx *store.Tx) error {
			var err error
			if other, _, err = directory.CreateOrganization(ctx, tx, actor, f.boot.EnterpriseAccount.ID, "Other"); err != nil {
				return err
			}
			name := "Lab"
			if lab, err = directory.CreateWorkspace(ctx, tx, actor, org, directory.NewWorkspace{WorkspaceInput: directory.WorkspaceInput{Name: &name}, AdminUserID: f.boot.Admin.ID}); err != nil {
				return err
			}
			return directory.ArchiveWorkspace(ctx, tx, actor, org, lab.ID)
		})
		served := []string{"a"}
		for what, err := range map[string]error{
			"another Organization's Workspace, read": second(svc.WorkspaceModels(ctx, other.ID, ws)),
			"another Organization's Workspace, set":  second(svc.SetWorkspaceModels(ctx, actor, other.ID, ws, list("a"), served)),
			"another Organization's key, read":       second(svc.KeyModels(ctx, other.ID, k.ID)),
			"another Organization's key, set":        second(svc.SetKeyModels(ctx, actor, other.ID, k.ID, list("a"), served)),
			"a key id that is no UUID, set":          second(svc.SetKeyModels(ctx, actor, org.ID, "not-a-uuid", list("a"), served)),
		} {
			if !steward.IsKind(err, steward.KindNotFound) {
				t.Errorf("the list of %s: %v, want KindNotFound", what, err)
			}
		}
		if l, err := svc.WorkspaceModels(ctx, org.ID, ws); err != nil || l != nil {
			t.Fatalf("the Workspace's list after the other Organization's attempts: %s, %v", show(l), err)
		}
		_, err := svc.SetWorkspaceModels(ctx, actor, org.ID, lab.ID, list("a"), served)
		if se, ok := err.(*steward.Error); !ok || se.Kind != steward.KindConflict || se.Code != "workspace_archived" {
			t.Fatalf("an archived Workspace's list: %v", err)
		}
		if l, err := svc.WorkspaceModels(ctx, org.ID, lab.ID); err != nil || l != nil {
			t.Fatalf("an archived Workspace's list is read: %s, %v", show(l), err)
		}
	})
}

func second[T any](_ T, err error) error { return err }

// TestModelAllowListsReachOtherProcesses: a list changed through another
// process reaches this one's key check through the change feed.
func TestModelAllowListsReachOtherProcesses(t *testing.T) {
	ctx := context.Background()
	f, other := elsewhere(t)
	org, ws := f.boot.Organization, f.boot.DefaultWorkspace.ID
	k, secret := f.newKey(t, ws, "")
	elsewhere := keys.NewService(other)
	reaches := func(what string, want *steward.ModelAllowList) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err := f.checker.Check(ctx, secret)
			if err != nil {
				t.Fatal(err)
			}
			if got.Models.Equal(want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the key check still allows %s, want %s", what, show(got.Models), show(want))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	if _, err := elsewhere.SetWorkspaceModels(ctx, actor, org.ID, ws, list("a", "b"), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	reaches("the Workspace's list", list("a", "b"))
	if _, err := elsewhere.SetKeyModels(ctx, actor, org.ID, k.ID, list("b"), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	reaches("the key's list", list("b"))
	if _, err := elsewhere.SetWorkspaceModels(ctx, actor, org.ID, ws, nil, nil); err != nil {
		t.Fatal(err)
	}
	reaches("the Workspace's list removed", list("b"))
	if _, err := elsewhere.SetKeyModels(ctx, actor, org.ID, k.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	reaches("the key's list removed", nil)
}
