package keys

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"time"

	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/store"
)

// Reminders tells owners that their keys are about to expire, by email
// (through the outbox) 7 days and 1 day before. Webhooks receive them as
// api_key.expiring events (package webhooks).
type Reminders struct {
	DB  *store.DB
	Log *slog.Logger
}

// Reminder is one key's reminder.
type Reminder struct {
	Event          string
	KeyID          string
	KeyName        string
	OrganizationID string
	WorkspaceID    string
	UserID         string
	Email          string
	ExpiresAt      time.Time
	DaysLeft       int
}

// RunOnce sends the reminders that are due and returns how many. Each
// reminder is claimed by a compare-and-set on the key, so that several
// processes never send one twice.
func (r *Reminders) RunOnce(ctx context.Context) (int, error) {
	var due []Reminder
	var stages []int
	err := r.DB.View(ctx, func(tx *store.Tx) error {
		return tx.Each(ctx, `SELECT k.id, COALESCE(k.name, ''), k.organization_id, k.workspace_id, k.user_id, u.email, k.expires_at, k.notified_days
			FROM api_keys k JOIN users u ON u.id = k.user_id
			WHERE k.deleted_at IS NULL AND k.expires_at > ? AND k.expires_at <= ? AND k.notified_days <> 1`,
			[]any{store.Micros(tx.Now), store.Micros(tx.Now.Add(7 * 24 * time.Hour))}, func(rows *sql.Rows) error {
				var rm Reminder
				var expires int64
				var notified int
				if err := rows.Scan(&rm.KeyID, &rm.KeyName, &rm.OrganizationID, &rm.WorkspaceID, &rm.UserID, &rm.Email, &expires, &notified); err != nil {
					return err
				}
				rm.ExpiresAt = store.Time(expires)
				stage := 7
				if rm.ExpiresAt.Sub(tx.Now) <= 24*time.Hour {
					stage = 1
				}
				if notified != stage {
					rm.Event, rm.DaysLeft = "api_key.expiring", stage
					due, stages = append(due, rm), append(stages, notified)
				}
				return nil
			})
	})
	if err != nil {
		return 0, err
	}
	sent := 0
	for i, rm := range due {
		claimed := false
		err := r.DB.Transact(ctx, func(tx *store.Tx) error {
			res, err := tx.Exec(ctx, `UPDATE api_keys SET notified_days = ? WHERE id = ? AND notified_days = ?`, rm.DaysLeft, rm.KeyID, stages[i])
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil
			}
			claimed = true
			_, err = outbox.Enqueue(ctx, tx, reminderEmail(rm))
			return err
		})
		if err != nil {
			return sent, err
		}
		if claimed {
			sent++
		}
	}
	return sent, nil
}

func reminderEmail(rm Reminder) outbox.Message {
	name := rm.KeyName
	if name == "" {
		name = rm.KeyID
	}
	when := "in 7 days"
	if rm.DaysLeft == 1 {
		when = "within a day"
	}
	return outbox.Message{
		Kind:    "api_key_expiring",
		To:      rm.Email,
		Subject: fmt.Sprintf("Your API key %s expires %s", name, when),
		Body: fmt.Sprintf(`Your API key %s expires on %s.

Requests made with it will be refused from then on. Rotate it, or create a
new key, before that date.
`, name, rm.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC")),
	}
}

// Run sends due reminders every interval until ctx ends.
func (r *Reminders) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("API key expiry reminders", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
