package webhooks

import (
	"context"
	"encoding/json"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/store"
)

// ServerEvents are the events the server-wide endpoint receives: the
// reminders of keys about to expire, as --webhook-url always sent.
var ServerEvents = []string{"api_key.expiring"}

// ConfigureServerEndpoint makes the server-wide endpoint (--webhook-url)
// match the configuration: url, signed with secret, receiving ServerEvents
// of every Organization; an empty url deletes it. Every process runs it at
// start with the same settings, so a change of them takes effect as the
// processes restart. The endpoint is never disabled by failures.
//
// A new endpoint follows every Organization's chain from its head, and the
// chains begun later from their start (see Dispatcher.claim); one whose URL
// or secret changes keeps its cursors.
func ConfigureServerEndpoint(ctx context.Context, db *store.DB, url, secret string) error {
	return db.Transact(ctx, func(tx *store.Tx) error {
		if url == "" {
			if _, err := tx.Exec(ctx, `DELETE FROM webhook_endpoint_cursors WHERE endpoint_id = ?`, ServerEndpointID); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `UPDATE webhook_endpoints SET deleted_at = ?, secret = '' WHERE id = ? AND deleted_at IS NULL`, store.Micros(tx.Now), ServerEndpointID)
			return err
		}
		var live bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhook_endpoints WHERE id = ? AND deleted_at IS NULL)`, ServerEndpointID).Scan(&live); err != nil {
			return err
		}
		events, _ := json.Marshal(ServerEvents)
		now := store.Micros(tx.Now)
		_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (id, url, description, events, secret, created_at, updated_at)
			VALUES (?, ?, 'server-wide (--webhook-url)', ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET url = excluded.url, events = excluded.events, secret = excluded.secret, updated_at = excluded.updated_at,
				created_at = CASE WHEN webhook_endpoints.deleted_at IS NULL THEN webhook_endpoints.created_at ELSE excluded.created_at END,
				deleted_at = NULL, disabled_at = NULL
			WHERE webhook_endpoints.url <> excluded.url OR webhook_endpoints.secret <> excluded.secret OR webhook_endpoints.events <> excluded.events
				OR webhook_endpoints.deleted_at IS NOT NULL`,
			ServerEndpointID, url, string(events), secret, now, now)
		if err != nil || live {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO webhook_endpoint_cursors (endpoint_id, scope, seq)
			SELECT ?, c.scope, `+audit.NextSQL(tx.Dialect(), "c.scope")+` FROM audit_chains c WHERE c.scope LIKE 'org:%'
			ON CONFLICT (endpoint_id, scope) DO UPDATE SET seq = excluded.seq, claimed_until = NULL`, ServerEndpointID)
		return err
	})
}
