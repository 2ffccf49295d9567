package webhooks

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/store"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
)

// Delivery is one event for one endpoint, and how its delivery went.
type Delivery struct {
	// ID is the webhook-id of every attempt.
	ID         string
	EndpointID string
	EventType  string
	CreatedAt  time.Time
	Status     string
	Attempts   int
	// NextAttemptAt is when a pending delivery is next tried.
	NextAttemptAt time.Time
	LastAttemptAt *time.Time
	// HTTPStatus is the status of the last answer, if there was one.
	HTTPStatus *int
	// Latency is the last attempt's, from the request to the answer.
	Latency    *time.Duration
	LastError  string
	FinishedAt *time.Time
	payload    []byte
}

// event is a delivery's body, as the Standard Webhooks specification
// suggests: the type, when it happened, and the data.
type event struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// newDelivery makes the delivery of an event to an endpoint, its body
// fixed now so that every attempt sends the same bytes.
func newDelivery(endpointID, eventType string, at time.Time, data any) (Delivery, error) {
	body, err := json.Marshal(event{Type: eventType, Timestamp: at.UTC().Format(time.RFC3339Nano), Data: data})
	if err != nil {
		return Delivery{}, err
	}
	return Delivery{ID: "msg_" + uuid.NewString(), EndpointID: endpointID, EventType: eventType, CreatedAt: at,
		Status: StatusPending, NextAttemptAt: at, payload: body}, nil
}

// insertDeliveries writes deliveries, due at once.
func insertDeliveries(ctx context.Context, tx *store.Tx, ds []Delivery) error {
	if len(ds) == 0 {
		return nil
	}
	rows := make([][]any, len(ds))
	now := store.Micros(tx.Now)
	for i, d := range ds {
		rows[i] = []any{d.ID, d.EndpointID, d.EventType, string(d.payload), now, StatusPending, now}
	}
	return tx.InsertMany(ctx, "webhook_deliveries", []string{"id", "endpoint_id", "event_type", "payload", "created_at", "status", "next_attempt_at"}, rows, "")
}

// failPending gives up an endpoint's pending deliveries, saying why.
func failPending(ctx context.Context, tx *store.Tx, endpointID, why string) error {
	_, err := tx.Exec(ctx, `UPDATE webhook_deliveries SET status = ?, last_error = ?, finished_at = ?, payload = '', claimed_until = NULL
		WHERE endpoint_id = ? AND status = ?`, StatusFailed, why, store.Micros(tx.Now), endpointID, StatusPending)
	return err
}

const deliveryColumns = `id, endpoint_id, event_type, created_at, status, attempts, next_attempt_at, last_attempt_at, last_http_status, last_latency_ms, COALESCE(last_error, ''), finished_at`

func scanDelivery(rows *sql.Rows) (Delivery, error) {
	var d Delivery
	var created, next int64
	var last, finished, latency sql.NullInt64
	var status sql.NullInt32
	if err := rows.Scan(&d.ID, &d.EndpointID, &d.EventType, &created, &d.Status, &d.Attempts, &next, &last, &status, &latency, &d.LastError, &finished); err != nil {
		return d, err
	}
	d.CreatedAt, d.NextAttemptAt, d.LastAttemptAt, d.FinishedAt = store.Time(created), store.Time(next), store.TimePtr(last), store.TimePtr(finished)
	if status.Valid {
		s := int(status.Int32)
		d.HTTPStatus = &s
	}
	if latency.Valid {
		l := time.Duration(latency.Int64) * time.Millisecond
		d.Latency = &l
	}
	return d, nil
}
