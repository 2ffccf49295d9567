// Package metering meters the gateway: its Meter turns each answered
// request into a usage event for the durable usage recorder
// (usage.Recorder), and Analytics derives, in the transaction that stores
// those events, what they count in the product analytics. It is the
// composition the gateway's inference.Recorder asks for, kept out of the
// gateway, usage and analytics packages.
package metering

import (
	"context"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/analytics"
	"github.com/stewardhq/steward/internal/inference"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// Meter is the gateway's inference.Recorder: it writes each answered request's usage
// as a usage event, through the usage recorder.
type Meter struct {
	Usage *usage.Recorder
	// Intents stores each model request's reservation while its upstream
	// works (usage.Intent). It is for a process whose intents a crash
	// leaves are settled: on SQLite at its next start
	// (usage.Recorder.SettleOrphans), on PostgreSQL by the sweep of any
	// process (usage.Process, usage.Recorder.Sweep). Without it, an answer
	// waits for its final usage event.
	Intents bool
}

var _ inference.Recorder = Meter{}

// Record writes u durably. The event's id is made here, time-ordered, never
// taken from the client's request id: a client could otherwise replay an
// id and have its usage ignored as a duplicate. The gateway gives ctx a
// deadline of its own, detached from the client's going away.
func (m Meter) Record(ctx context.Context, u inference.Usage) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	return m.Usage.Record(ctx, event(id.String(), u))
}

// Intend queues u as the intent of a request, under an event id made as
// Record makes it, which its final event keeps.
func (m Meter) Intend(u inference.Usage) (inference.Intent, error) {
	if !m.Intents {
		return inference.Direct(m), nil
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	in, err := m.Usage.Intend(event(id.String(), u))
	if err != nil {
		return nil, err
	}
	return intent{in}, nil
}

// intent is a usage.Intent taking an inference.Usage.
type intent struct{ *usage.Intent }

func (in intent) Settle(ctx context.Context, u inference.Usage) error {
	return in.Intent.Settle(ctx, event("", u))
}

// event is u's usage event of id.
func event(id string, u inference.Usage) usage.Event {
	return usage.Event{
		ID: id, Time: u.Time, OrganizationID: u.Key.OrganizationID, WorkspaceID: u.Key.WorkspaceID,
		KeyID: u.Key.CredentialID, UserID: u.Key.UserID, Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		Pages: u.Pages, AudioSeconds: u.AudioSeconds,
		Cost: u.Cost, Currency: u.Currency, Estimated: u.Estimated, Overrun: u.Overrun, Endpoint: u.Endpoint, RequestID: u.RequestID,
		Product: u.Key.Product,
	}
}

// Analytics is the usage recorder's Derive: it counts, in the transaction
// that stores the usage, what the requests count in the product analytics.
// A chat completion is a message of the key's user; a coding product's chat
// and FIM completions count their tokens by model. Usage events are
// inserted once, so each request counts once.
func Analytics(ctx context.Context, tx *store.Tx, inserted []usage.Event) error {
	var events []analytics.Event
	for _, u := range inserted {
		if u.UserID == "" {
			continue
		}
		base := analytics.Event{Time: u.Time, OrganizationID: u.OrganizationID, WorkspaceID: u.WorkspaceID, UserID: u.UserID, KeyID: u.KeyID}
		if u.Endpoint == "chat" {
			e := base
			e.ID, e.Type = u.ID, analytics.TypeChatMessage
			events = append(events, e)
		}
		if keys.CodingProduct(u.Product) && (u.Endpoint == "chat" || u.Endpoint == "fim") {
			e := base
			e.ID, e.Type, e.Model, e.InputTokens, e.OutputTokens = u.ID+"/tokens", analytics.TypeTokens, u.Model, u.InputTokens, u.OutputTokens
			events = append(events, e)
		}
	}
	return analytics.Write(ctx, tx, events)
}
