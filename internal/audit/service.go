package audit

import (
	"context"

	"github.com/stewardhq/steward/internal/store"
)

// Service reads the audit log for the surfaces (Admin API, web pages), each
// method in one read-only transaction. Entries are written by Record, in
// the transaction of the change they describe.
type Service struct {
	db *store.DB
}

// NewService returns the audit log over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// List returns the entries that match f, as the function List does.
func (s *Service) List(ctx context.Context, f Filter) ([]Entry, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]Entry, error) { return List(ctx, tx, f) })
}

// ListUpTo returns the entries that match f, newest first (from after
// f.OlderThan, if set), at most max of them, read MaxLimit at a time in one
// snapshot; f.Limit is its own.
func (s *Service) ListUpTo(ctx context.Context, f Filter, max int) ([]Entry, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]Entry, error) {
		var all []Entry
		for len(all) < max {
			f.Limit = min(MaxLimit, max-len(all))
			entries, err := List(ctx, tx, f)
			if err != nil {
				return nil, err
			}
			all = append(all, entries...)
			if len(entries) < f.Limit {
				break
			}
			last := entries[len(entries)-1]
			f.OlderThan = &Cursor{CreatedAt: last.CreatedAt, LogID: last.LogID}
		}
		return all, nil
	})
}
