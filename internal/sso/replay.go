package sso

import (
	"context"
	"errors"
	"time"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// ErrReplayed is what Replay.Use returns for a key used before.
var ErrReplayed = errors.New("sso: this identifier was used before")

// Replay remembers identifiers that may be used once (SAML assertion ids,
// OpenID Connect nonces) until they expire, in the database, so that every
// process of a cluster refuses a second use.
type Replay struct{ db *store.DB }

// NewReplay returns the replay guard over db.
func NewReplay(db *store.DB) *Replay { return &Replay{db: db} }

// Use records key as used until until, and returns ErrReplayed when it was
// used before and has not expired. Keys are stored hashed, so their length
// does not matter; expired ones are deleted on the way.
func (g *Replay) Use(ctx context.Context, key string, until time.Time) error {
	hash := steward.HashToken(key)
	used := false
	err := g.db.Transact(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM sso_replay WHERE expires_at <= ?`, store.Micros(tx.Now)); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `INSERT INTO sso_replay (replay_key, expires_at) VALUES (?, ?) ON CONFLICT (replay_key) DO NOTHING`,
			hash, store.Micros(until))
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		used = n == 0
		return err
	})
	if err == nil && used {
		return ErrReplayed
	}
	return err
}
