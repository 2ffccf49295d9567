package usage

import (
	"context"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

// Service is the usage reports as the surfaces read them: each method is
// one read-only transaction. Its errors are those of the function of the
// same name, which takes the caller's Tx. (The reports that need an
// Organization's time zone or caps are quota.Service's.)
type Service struct {
	db *store.DB
}

// NewService returns the usage reports over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// Report returns an Organization's usage per bucket, grouped by any of
// GroupWorkspace, GroupKey, GroupUser and GroupModel.
func (s *Service) Report(ctx context.Context, orgID string, from, to time.Time, bucket Bucket, groupBy []string) ([]Row, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]Row, error) { return Report(ctx, tx, orgID, from, to, bucket, groupBy) })
}
