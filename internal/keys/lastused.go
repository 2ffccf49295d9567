package keys

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// LastUsed coalesces "this key was just used" into one write per key per
// flush, so that authenticating a request never writes to the database.
type LastUsed struct {
	mu      sync.Mutex
	pending map[lastUsedKey]time.Time
}

type lastUsedKey struct {
	kind steward.CredentialKind
	id   string
}

// NewLastUsed returns an empty tracker.
func NewLastUsed() *LastUsed {
	return &LastUsed{pending: map[lastUsedKey]time.Time{}}
}

// Touch records that a key was used at t.
func (l *LastUsed) Touch(kind steward.CredentialKind, id string, t time.Time) {
	l.mu.Lock()
	k := lastUsedKey{kind, id}
	if t.After(l.pending[k]) {
		l.pending[k] = t
	}
	l.mu.Unlock()
}

// Flush writes every pending time, never moving a key's last use backwards.
// Times that could not be written are kept for the next flush.
func (l *LastUsed) Flush(ctx context.Context, db *store.DB) error {
	l.mu.Lock()
	batch := l.pending
	l.pending = map[lastUsedKey]time.Time{}
	l.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := db.Transact(ctx, func(tx *store.Tx) error {
		for k, t := range batch {
			table := "admin_api_keys"
			switch k.kind {
			case steward.CredentialBackofficeKey:
				table = "backoffice_keys"
			case steward.CredentialSCIMToken:
				table = "scim_tokens"
			}
			us := store.Micros(t)
			if _, err := tx.Exec(ctx, `UPDATE `+table+` SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, us, k.id, us); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for k, t := range batch {
			l.Touch(k.kind, k.id, t)
		}
	}
	return err
}

// Run flushes every interval until ctx ends, then once more.
func (l *LastUsed) Run(ctx context.Context, db *store.DB, interval time.Duration, log *slog.Logger) {
	FlushEvery(ctx, interval, func(ctx context.Context) error { return l.Flush(ctx, db) }, log)
}

// FlushEvery calls flush every interval until ctx ends, then once more with
// a fresh context, so that a graceful shutdown keeps the last uses.
func FlushEvery(ctx context.Context, interval time.Duration, flush func(context.Context) error, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := flush(fctx); err != nil {
				log.Error("flush key last-used times", "err", err)
			}
			return
		case <-t.C:
			if err := flush(ctx); err != nil {
				log.Warn("flush key last-used times", "err", err)
			}
		}
	}
}
