package usage_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/usage/usagetest"
)

// BenchmarkRecord measures sustained ingestion: many goroutines each
// recording one event at a time, group-committed.
func BenchmarkRecord(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		for _, callers := range []int{64, 1024, 4096} {
			b.Run(fmt.Sprintf("%s/callers=%d", engine.Name, callers), func(b *testing.B) {
				db, _ := engine.Open(b)
				r := usage.NewRecorder(db, usage.Options{})
				ctx := context.Background()
				now := time.Now()
				usagetest.RecordParallel(b, r, callers, func(n int64) error {
					return r.Record(ctx, usage.Event{
						ID:             "bench-" + strconv.FormatInt(n, 10),
						Time:           now.Add(time.Duration(n) * time.Millisecond),
						OrganizationID: "org-" + strconv.FormatInt(n%10, 10),
						WorkspaceID:    "ws-" + strconv.FormatInt(n%30, 10),
						KeyID:          "key-" + strconv.FormatInt(n%100, 10),
						UserID:         "user-" + strconv.FormatInt(n%50, 10),
						Model:          "model-" + strconv.FormatInt(n%5, 10),
						InputTokens:    n % 4000,
						OutputTokens:   n % 1000,
						Cost:           n % 100000,
						Currency:       "EUR",
						Endpoint:       "chat.completions",
					})
				})
			})
		}
	}
}
