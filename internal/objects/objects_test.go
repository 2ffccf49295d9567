package objects_test

import (
	"context"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/objects"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// An object is found with the Workspace that created it, once; Owned and
// Count see only a Workspace's own objects of a kind; a forgotten object
// is not found again.
func TestObjectsBelongToTheirWorkspace(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := objects.NewService(db)
		at := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
		record := func(kind, id, org, ws string) {
			t.Helper()
			if err := s.Record(ctx, inference.Object{Kind: kind, ID: id, OrganizationID: org, WorkspaceID: ws, KeyID: "key-" + ws, Created: at}); err != nil {
				t.Fatal(err)
			}
		}
		record(inference.ObjectFile, "f1", "org1", "ws1")
		record(inference.ObjectFile, "f2", "org1", "ws1")
		record(inference.ObjectFile, "f3", "org1", "ws2")
		record(inference.ObjectFile, "f4", "org2", "ws1")
		record(inference.ObjectAgent, "f1", "org1", "ws2")
		// A second record of the same object keeps the first.
		record(inference.ObjectFile, "f1", "org1", "ws2")

		o, err := s.Find(ctx, inference.ObjectFile, "f1")
		want := inference.Object{Kind: inference.ObjectFile, ID: "f1", OrganizationID: "org1", WorkspaceID: "ws1", KeyID: "key-ws1", Created: at}
		if err != nil || o != want {
			t.Fatalf("Find = %+v, %v; want %+v", o, err, want)
		}
		if _, err := s.Find(ctx, inference.ObjectBatchJob, "f1"); !steward.IsKind(err, steward.KindNotFound) {
			t.Fatalf("Find of another kind: %v, want not found", err)
		}
		ids := []string{"f1", "f2", "f3", "f4", "f9"}
		owned, err := s.Owned(ctx, "org1", "ws1", inference.ObjectFile, ids)
		if got := slices.Sorted(maps.Keys(owned)); err != nil || !slices.Equal(got, []string{"f1", "f2"}) {
			t.Fatalf("Owned by org1/ws1 = %v, %v", got, err)
		}
		owned, err = s.Owned(ctx, "org2", "ws1", inference.ObjectFile, ids)
		if got := slices.Sorted(maps.Keys(owned)); err != nil || !slices.Equal(got, []string{"f4"}) {
			t.Fatalf("Owned by org2/ws1 = %v, %v", got, err)
		}
		if n, err := s.Count(ctx, "org1", "ws1", inference.ObjectFile); err != nil || n != 2 {
			t.Fatalf("Count = %d, %v", n, err)
		}
		if err := s.Forget(ctx, inference.ObjectFile, "f1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Find(ctx, inference.ObjectFile, "f1"); !steward.IsKind(err, steward.KindNotFound) {
			t.Fatalf("Find of a forgotten object: %v", err)
		}
		if o, err := s.Find(ctx, inference.ObjectAgent, "f1"); err != nil || o.WorkspaceID != "ws2" {
			t.Fatalf("the agent of the same id: %+v, %v", o, err)
		}
		// More ids than one query asks about.
		many := make([]string, 1200)
		for i := range many {
			many[i] = "m" + time.Duration(i).String()
			record(inference.ObjectLibrary, many[i], "org1", "ws1")
		}
		owned, err = s.Owned(ctx, "org1", "ws1", inference.ObjectLibrary, many)
		if err != nil || len(owned) != len(many) {
			t.Fatalf("Owned of %d ids: %d, %v", len(many), len(owned), err)
		}
	})
}
