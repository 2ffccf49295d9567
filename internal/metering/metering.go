// Package metering connects the gateway to what stands behind it: usage
// events go to the durable usage recorder, and chat completions to the
// product analytics. It is the composition the gateway's consumer-side
// interfaces ask for, kept out of those packages.
package metering

import (
	"context"
	"log/slog"
	"sync"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/usage"
)

// Recorder writes the gateway's usage as usage events and, when Analytics
// is set, as product-analytics events.
type Recorder struct {
	Usage *usage.Recorder
	// Analytics, when set, counts each chat completion as a message of the
	// key's user and, for a key of a coding product, the tokens of its
	// chat and FIM completions. A failure there is logged to Log and does
	// not fail the request: the usage is what must not be lost.
	Analytics *analytics.Recorder
	Log       *slog.Logger
}

var _ gateway.Recorder = Recorder{}

// Record writes u durably. The event's id is made here, time-ordered, never
// taken from the client's request id: a client could otherwise replay an
// id and have its usage ignored as a duplicate. The gateway gives ctx a
// deadline of its own, detached from the client's going away. The
// analytics events are written alongside, in their own group commit, and
// Record waits for both.
func (r Recorder) Record(ctx context.Context, u gateway.Usage) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	if events := analyticsEvents(id.String(), u); r.Analytics != nil && len(events) > 0 {
		wg.Go(func() {
			if _, err := r.Analytics.Record(ctx, events); err != nil && r.Log != nil {
				r.Log.Error("record gateway analytics", "events", len(events), "err", err)
			}
		})
	}
	err = r.Usage.Record(ctx, usage.Event{
		ID: id.String(), Time: u.Time, OrganizationID: u.Key.OrganizationID, WorkspaceID: u.Key.WorkspaceID,
		KeyID: u.Key.ID, UserID: u.Key.UserID, Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		Cost: u.Cost, Currency: u.Currency, Estimated: u.Estimated, Endpoint: u.Endpoint, RequestID: u.RequestID,
	})
	wg.Wait()
	return err
}

// analyticsEvents are what a request counts in the product analytics: a
// chat completion is a message of the key's user; a coding product's chat
// and FIM completions count their tokens by model.
func analyticsEvents(id string, u gateway.Usage) []analytics.Event {
	base := analytics.Event{Time: u.Time, OrganizationID: u.Key.OrganizationID, WorkspaceID: u.Key.WorkspaceID,
		UserID: u.Key.UserID, KeyID: u.Key.ID}
	var out []analytics.Event
	if u.Endpoint == "chat" {
		e := base
		e.ID, e.Type = id, analytics.TypeChatMessage
		out = append(out, e)
	}
	if keys.CodingProduct(u.Key.Product) && (u.Endpoint == "chat" || u.Endpoint == "fim") {
		e := base
		e.ID, e.Type, e.Model, e.InputTokens, e.OutputTokens = id+"/tokens", analytics.TypeTokens, u.Model, u.InputTokens, u.OutputTokens
		out = append(out, e)
	}
	return out
}
