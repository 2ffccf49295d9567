// Package metering connects the gateway to what stands behind it: usage
// events go to the durable usage recorder. It is the composition the
// gateway's consumer-side interfaces ask for, kept out of both packages.
package metering

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/gateway"
	"github.com/stewardhq/steward/internal/usage"
)

// recordTimeout bounds how long a request's usage may take to be written
// after the client has gone.
const recordTimeout = 30 * time.Second

// Recorder writes the gateway's usage as usage events.
type Recorder struct {
	Usage *usage.Recorder
}

var _ gateway.Recorder = Recorder{}

// Record writes u durably. The event's id is made here, time-ordered, never
// taken from the client's request id: a client could otherwise replay an
// id and have its usage ignored as a duplicate. The write outlives the
// client's going away, bounded by recordTimeout.
func (r Recorder) Record(ctx context.Context, u gateway.Usage) error {
	id, err := uuid.NewV7()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	return r.Usage.Record(ctx, usage.Event{
		ID: id.String(), Time: u.Time, OrganizationID: u.Key.OrganizationID, WorkspaceID: u.Key.WorkspaceID,
		KeyID: u.Key.ID, UserID: u.Key.UserID, Model: u.Model, InputTokens: u.InputTokens, OutputTokens: u.OutputTokens,
		Cost: u.Cost, Currency: u.Currency, Estimated: u.Estimated, Endpoint: u.Endpoint,
	})
}
