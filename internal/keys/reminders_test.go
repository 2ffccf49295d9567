package keys_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// Several processes run the reminders at once; each reminder is sent by
// one of them only.
func TestRemindersRunOnceAcrossProcesses(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		f := newFixture(t, db)
		for range 3 {
			f.newKey(t, f.boot.DefaultWorkspace.ID, time.Now().UTC().AddDate(0, 0, 5).Format(keys.DateLayout))
		}
		var sent atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			r := &keys.Reminders{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			wg.Go(func() {
				n, err := r.RunOnce(ctx)
				if err != nil {
					t.Error(err)
				}
				sent.Add(int64(n))
			})
		}
		wg.Wait()
		if sent.Load() != 3 {
			t.Fatalf("%d reminders sent by four runs at once; want 3", sent.Load())
		}
		entries, err := audit.NewService(db).List(ctx, audit.Filter{OrganizationID: f.boot.Organization.ID, EventTypes: []string{audit.EventAPIKeyExpiring}, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 3 {
			t.Fatalf("%d api_key.expiring entries, want one a reminder (3)", len(entries))
		}
		for _, e := range entries {
			m := e.EventMetadata
			_, err := time.Parse("2006-01", m["period"])
			if m["threshold"] != "7" || m["scope"] != "workspace" || m["workspace_id"] != f.boot.DefaultWorkspace.ID || e.TargetMetadata["id"] == "" || err != nil {
				t.Errorf("api_key.expiring entry %+v %+v", m, e.TargetMetadata)
			}
		}
	})
}
