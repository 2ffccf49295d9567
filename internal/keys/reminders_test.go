package keys_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	})
}
