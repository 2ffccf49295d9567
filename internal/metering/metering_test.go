package metering_test

import (
	"context"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/metering"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
)

// A client that repeats its x-request-id must not make Steward drop its
// usage as a duplicate, and a client that hangs up must not take its usage
// back.
func TestRecorderMakesItsOwnIDsAndOutlivesTheClient(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		rec := usage.NewRecorder(db, usage.Options{})
		done := make(chan struct{})
		go func() { defer close(done); rec.Run(context.Background()) }()
		defer func() { _ = rec.Close(); <-done }()
		r := metering.Recorder{Usage: rec}
		u := gateway.Usage{RequestID: "client-chosen", Time: time.Now(), Key: keys.CheckedKey{ID: "k", OrganizationID: "o", WorkspaceID: "w", UserID: "u"},
			Model: "m", Endpoint: "chat", InputTokens: 10, OutputTokens: 5, Cost: 7, Currency: "EUR"}
		if err := r.Record(context.Background(), u); err != nil {
			t.Fatal(err)
		}
		if err := r.Record(context.Background(), u); err != nil {
			t.Fatalf("a second request with the same client request id: %v", err)
		}
		ctx := context.Background()
		var n, tokens, ids int64
		err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT COUNT(*), SUM(input_tokens + output_tokens), COUNT(DISTINCT id) FROM usage_events
				WHERE organization_id = 'o' AND request_id = 'client-chosen'`).Scan(&n, &tokens, &ids)
		})
		if err != nil || n != 2 || tokens != 30 || ids != 2 {
			t.Fatalf("usage = %d events (%d ids) with the request id, %d tokens (%v); want 2 events, 2 ids and 30 tokens", n, ids, tokens, err)
		}
	})
}
