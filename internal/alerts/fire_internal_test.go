package alerts

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/bootstrap"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
)

// Processes that all found an alert due fire it once: the row of
// alerts_fired decides, not what each read before.
func TestOneAlertFiredOnceByEveryProcessThatFoundItDue(t *testing.T) {
	for _, e := range storetest.Engines(t) {
		t.Run(e.Name, func(t *testing.T) {
			ctx := context.Background()
			db, cfg := e.Open(t)
			boot, err := bootstrap.Run(ctx, db, bootstrap.Options{})
			if err != nil {
				t.Fatal(err)
			}
			s := scope{orgID: boot.Organization.ID, period: "2026-03"}
			a := s.spendAlert(80, 85_000_000, 100)
			a.orgID, a.period, a.below = s.orgID, s.period, []int{50}
			var fired atomic.Int64
			var wg sync.WaitGroup
			for range 4 {
				other := storetest.OpenAgain(t, cfg)
				wg.Go(func() {
					ok, err := store.Write(ctx, other, func(tx *store.Tx) (bool, error) { return fire(ctx, tx, a) })
					if err != nil {
						t.Error(err)
					}
					if ok {
						fired.Add(1)
					}
				})
			}
			wg.Wait()
			var entries, rows int
			err = db.View(ctx, func(tx *store.Tx) error {
				if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM audit_log WHERE event_type = ?`, a.entry.EventType).Scan(&entries); err != nil {
					return err
				}
				return tx.QueryRow(ctx, `SELECT COUNT(*) FROM alerts_fired WHERE organization_id = ?`, s.orgID).Scan(&rows)
			})
			if err != nil {
				t.Fatal(err)
			}
			if fired.Load() != 1 || entries != 1 || rows != 2 {
				t.Fatalf("fired %d times, %d entries, %d rows of alerts_fired; want once, one entry, the 80%% and 50%% rows", fired.Load(), entries, rows)
			}
		})
	}
}
