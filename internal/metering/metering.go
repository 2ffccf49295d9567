// Package metering connects the gateway to what stands behind it: usage
// events go to the durable usage recorder. It is the composition the
// gateway's consumer-side interfaces ask for, kept out of both packages.
package metering

import (
	"context"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/usage"
)

// Recorder writes the gateway's usage as usage events.
type Recorder struct {
	Usage *usage.Recorder
}

var _ gateway.Recorder = Recorder{}

// Record writes u durably. The event's id is made here, time-ordered, never
// taken from the client's request id: a client could otherwise replay an
// id and have its usage ignored as a duplicate. The gateway gives ctx a
// deadline of its own, detached from the client's going away.
func (r Recorder) Record(ctx context.Context, u gateway.Usage) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	return r.Usage.Record(ctx, usage.Event{
		ID: id.String(), Time: u.Time, OrganizationID: u.Key.OrganizationID, WorkspaceID: u.Key.WorkspaceID,
		KeyID: u.Key.ID, UserID: u.Key.UserID, Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		Cost: u.Cost, Currency: u.Currency, Estimated: u.Estimated, Endpoint: u.Endpoint, RequestID: u.RequestID,
	})
}
