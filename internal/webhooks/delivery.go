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
	// payload is the body, until the delivery is finished.
	payload []byte
}

// event is a delivery's body, as the Standard Webhooks specification
// suggests: the type, when it happened, and the data.
type event struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      any    `json:"data"`
}

// body is an event's body, fixed when its deliveries are made so that
// every attempt sends the same bytes.
func body(eventType string, at time.Time, data any) ([]byte, error) {
	return json.Marshal(event{Type: eventType, Timestamp: at.UTC().Format(time.RFC3339Nano), Data: data})
}

// newDelivery makes the delivery of an event to an endpoint, due at once.
func newDelivery(endpointID, eventType string, at time.Time, data any) (Delivery, error) {
	b, err := body(eventType, at, data)
	return Delivery{ID: "msg_" + uuid.NewString(), EndpointID: endpointID, EventType: eventType, CreatedAt: at,
		Status: StatusPending, NextAttemptAt: at, payload: b}, err
}

// insertDelivery writes a pending delivery with its body.
func insertDelivery(ctx context.Context, tx *store.Tx, d Delivery) error {
	_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (id, endpoint_id, event_type, payload, created_at, status, next_attempt_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, d.ID, d.EndpointID, d.EventType, string(d.payload), store.Micros(d.CreatedAt), d.Status, store.Micros(d.NextAttemptAt))
	return err
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
