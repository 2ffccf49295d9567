package keys

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/outbox"
	"github.com/stewardhq/steward/internal/poll"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Reminders tells owners that their keys are about to expire, by email
// (through the outbox) 7 days and 1 day before. Each reminder is also an
// alert, an api_key.expiring audit entry written with its email, which
// webhooks deliver (package webhooks).
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
			if err := recordExpiring(ctx, tx, rm); err != nil {
				return err
			}
			if _, err := outbox.Enqueue(ctx, tx, reminderEmail(rm)); err != nil {
				return err
			}
			return tellAdmins(ctx, tx, rm)
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

// recordExpiring writes the reminder's alert, an api_key.expiring audit
// entry, through the transaction that claims the reminder.
func recordExpiring(ctx context.Context, tx *store.Tx, rm Reminder) error {
	zone, err := quota.TimeZoneOf(ctx, tx, rm.OrganizationID)
	if err != nil {
		return err
	}
	return audit.Record(ctx, tx, audit.Entry{
		OrganizationID: rm.OrganizationID,
		WorkspaceID:    rm.WorkspaceID,
		Actor:          steward.SystemActor("alerts"),
		EventType:      audit.EventAPIKeyExpiring,
		EventMetadata: map[string]string{
			"scope":        "workspace",
			"workspace_id": rm.WorkspaceID,
			"threshold":    strconv.Itoa(rm.DaysLeft),
			"period":       tx.Now.In(zone).Format("2006-01"),
			"expires_at":   rm.ExpiresAt.UTC().Format(time.RFC3339),
			"user_id":      rm.UserID,
		},
		TargetType:     audit.TargetAPIKey,
		TargetMetadata: map[string]string{"id": rm.KeyID, "name": rm.KeyName},
	})
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

// tellAdmins e-mails the reminder's alert to the Organization's admins and
// billing managers, as the other alerts are (but to the key's owner, whose
// own e-mail says more).
func tellAdmins(ctx context.Context, tx *store.Tx, rm Reminder) error {
	to, err := directory.EmailsWithRoles(ctx, tx, rm.OrganizationID, steward.RoleIDOrganizationAdmin, steward.RoleIDOrganizationBilling)
	if err != nil {
		return err
	}
	name := rm.KeyName
	if name == "" {
		name = rm.KeyID
	}
	for _, addr := range to {
		if addr == rm.Email {
			continue
		}
		if _, err := outbox.Enqueue(ctx, tx, outbox.Message{
			Kind:    "api_key_expiring",
			To:      addr,
			Subject: fmt.Sprintf("The API key %s of %s expires on %s", name, rm.Email, rm.ExpiresAt.UTC().Format("2 January 2006")),
			Body: fmt.Sprintf(`The API key %s (%s) of %s, in Workspace %s, expires on %s.

Requests made with it will be refused from then on. Its owner was told too.
`, name, rm.KeyID, rm.Email, rm.WorkspaceID, rm.ExpiresAt.UTC().Format("2 January 2006 at 15:04 UTC")),
		}); err != nil {
			return err
		}
	}
	return nil
}

// Run sends due reminders at once and then every interval until ctx ends.
func (r *Reminders) Run(ctx context.Context, interval time.Duration) {
	poll.New(0).Run(ctx, interval, func() bool {
		if _, err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.Log.Warn("API key expiry reminders", "err", err)
		}
		return false
	})
}
