package enforce_test

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/billing"
	"github.com/stewardhq/steward/internal/enforce"
	"github.com/stewardhq/steward/internal/limits"
	"github.com/stewardhq/steward/internal/redistest"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

// Two enforcers over one Redis stand for two gateway processes: the month's
// recorded usage is counted once, the cap holds in total, and counters lost
// by Redis start again from the recorded usage.
func TestSharedSpendCapOverRedis(t *testing.T) {
	client, prefix := redistest.Open(t)
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		boot, _, k := setup(t, db)
		setCap(t, db, boot, "", 1) // 1,000,000 micro-units
		prefix := prefix + db.Dialect().String() + ":"

		rec := usage.NewRecorder(db, usage.Options{})
		go rec.Run(ctx)
		defer rec.Close()
		if err := rec.Record(ctx, usage.Event{ID: "before", OrganizationID: k.OrganizationID, WorkspaceID: k.WorkspaceID, Model: "m",
			InputTokens: 600_000, Cost: 600_000, Currency: "USD"}); err != nil {
			t.Fatal(err)
		}

		process := func() *enforce.Enforcer {
			e := enforce.New(db, limits.NewRedis(client, limits.RedisOptions{Prefix: prefix, Seeded: true}), prices(t), time.Now)
			return e
		}
		a, b := process(), process()
		reserve := func(e *enforce.Enforcer, tokens int64) error {
			_, err := e.Reserve(ctx, k, "m", billing.Tokens(tokens, 0))
			return err
		}
		if err := reserve(a, 200_000); err != nil {
			t.Fatalf("first process, 200,000 of the 400,000 left: %v", err)
		}
		// Had the second process added the recorded usage again, this
		// would be refused.
		if err := reserve(b, 200_000); err != nil {
			t.Fatalf("second process, the last 200,000: %v", err)
		}
		refusedWith(t, reserve(b, 1), "spend_limit_exceeded")
		refusedWith(t, reserve(a, 1), "spend_limit_exceeded")

		// Redis restarts empty: the reservations in flight are forgotten,
		// the recorded 600,000 are not.
		redistest.Clean(client, prefix)
		if err := reserve(a, 300_000); err != nil {
			t.Fatalf("after Redis lost the counters, 300,000 of the 400,000 left: %v", err)
		}
		refusedWith(t, reserve(b, 200_000), "spend_limit_exceeded")
		if err := reserve(b, 100_000); err != nil {
			t.Fatalf("the last 100,000: %v", err)
		}
	})
}
