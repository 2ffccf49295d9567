package metering_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/metering"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/usage"
	"github.com/stewardhq/steward/internal/usage/usagetest"
)

// A client that repeats its x-request-id must not make Steward drop its
// usage as a duplicate, and a client that hangs up must not take its usage
// back.
func TestMeterMakesItsOwnIDsAndOutlivesTheClient(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		rec := usage.NewRecorder(db, usage.Options{})
		done := make(chan struct{})
		go func() { defer close(done); rec.Run(context.Background()) }()
		defer func() { _ = rec.Close(); <-done }()
		r := metering.Meter{Usage: rec}
		u := inference.Usage{RequestID: "client-chosen", Time: time.Now(), Key: steward.Principal{CredentialID: "k", OrganizationID: "o", WorkspaceID: "w", UserID: "u"},
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

// A chat completion is a message of the key's user; a coding product's
// chat and FIM completions count their tokens too; embeddings count in
// neither.
func TestMeterCountsAnalytics(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		rec := usage.NewRecorder(db, usage.Options{Derive: metering.Analytics})
		done := make(chan struct{})
		go func() { defer close(done); rec.Run(context.Background()) }()
		defer func() { _ = rec.Close(); <-done }()
		r := metering.Meter{Usage: rec}
		day := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
		api := steward.Principal{CredentialID: "k1", OrganizationID: "o", WorkspaceID: "w", UserID: "ann", Product: "API"}
		vibe := steward.Principal{CredentialID: "k2", OrganizationID: "o", WorkspaceID: "w", UserID: "bob", Product: "Vibe"}
		for _, u := range []inference.Usage{
			{Time: day, Key: api, Model: "small", Endpoint: "chat", InputTokens: 10, OutputTokens: 5},
			{Time: day, Key: api, Model: "small", Endpoint: "chat", InputTokens: 1, OutputTokens: 1},
			{Time: day, Key: vibe, Model: "codestral", Endpoint: "chat", InputTokens: 100, OutputTokens: 20},
			{Time: day, Key: vibe, Model: "codestral", Endpoint: "fim", InputTokens: 30, OutputTokens: 3},
			{Time: day, Key: vibe, Model: "embed", Endpoint: "embeddings", InputTokens: 1000},
		} {
			if err := r.Record(context.Background(), u); err != nil {
				t.Fatal(err)
			}
		}
		ctx := context.Background()
		w := analytics.Window{Start: day.Truncate(24 * time.Hour), End: day.Add(24 * time.Hour)}
		var users []analytics.UserStat
		var code analytics.WorkspaceStats
		err := db.View(ctx, func(tx *store.Tx) error {
			var err error
			if users, err = analytics.WorkByUser(ctx, tx, "o", w); err != nil {
				return err
			}
			code, err = analytics.CodeByWorkspace(ctx, tx, "o", "", w)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(users) != 2 || users[0].UserID != "ann" || users[0].MessagesCount != 2 || users[1].UserID != "bob" || users[1].MessagesCount != 1 {
			t.Errorf("messages by user = %+v", users)
		}
		if len(code.ConsumedTokens) != 1 || code.ConsumedTokens[0].Model != "codestral" || code.ConsumedTokens[0].InputTokens != 130 ||
			code.ConsumedTokens[0].OutputTokens != 23 || code.ConsumedTokens[0].Day != "2026-03-02" {
			t.Errorf("consumed tokens = %+v", code.ConsumedTokens)
		}
	})
}

// BenchmarkGatewayUsage records usage the way the gateway does: requests in
// flight, each a chat completion of one Workspace key, group-committed with
// the analytics it counts in. With 4 callers a batch holds about as few
// events as under the load run's 5,000 requests/s, so that what a batch
// costs whatever its size shows; with 64 it holds 32.
//
//	go test ./internal/metering -run '^$' -bench GatewayUsage -benchtime 20000x
func BenchmarkGatewayUsage(b *testing.B) {
	for _, engine := range storetest.Engines(b) {
		for _, callers := range []int{4, 64} {
			b.Run(fmt.Sprintf("%s/callers=%d", engine.Name, callers), func(b *testing.B) {
				db, _ := engine.Open(b)
				rec := usage.NewRecorder(db, usage.Options{Derive: metering.Analytics})
				r := metering.Meter{Usage: rec}
				key := steward.Principal{CredentialID: "k", OrganizationID: "o", WorkspaceID: "w", UserID: "u", Product: "API"}
				usagetest.RecordParallel(b, rec, callers, func(int64) error {
					return r.Record(context.Background(), inference.Usage{Time: time.Now(), Key: key, Model: "m", Endpoint: "chat",
						InputTokens: 12, OutputTokens: 2, Cost: 2, Currency: "EUR"})
				})
			})
		}
	}
}
