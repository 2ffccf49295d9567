package analytics

import (
	"context"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/store"
)

// Service is the analytics reports as the surfaces (Admin API, web pages)
// read them: each method is one read-only transaction. Its errors are those
// of the function of the same name, which takes the caller's Tx.
type Service struct {
	db *store.DB
}

// NewService returns the analytics reports over db.
func NewService(db *store.DB) *Service { return &Service{db: db} }

// WorkByUser returns the Organization's chat activity per user in w.
func (s *Service) WorkByUser(ctx context.Context, org string, w Window) ([]UserStat, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]UserStat, error) { return WorkByUser(ctx, tx, org, w) })
}

// WorkByAgent returns the Organization's chat activity per agent in w.
func (s *Service) WorkByAgent(ctx context.Context, org string, w Window) ([]AgentStat, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]AgentStat, error) { return WorkByAgent(ctx, tx, org, w) })
}

// WorkByTime returns the Organization's chat activity per granularity
// bucket of w.
func (s *Service) WorkByTime(ctx context.Context, org string, w Window, granularity string) ([]TimeStat, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]TimeStat, error) { return WorkByTime(ctx, tx, org, w, granularity) })
}

// CodeByWorkspace returns the coding activity of one Workspace of the
// Organization, archived or not (KindNotFound if it has none such), or of
// all of them when workspace is empty.
func (s *Service) CodeByWorkspace(ctx context.Context, org, workspace string, w Window) (WorkspaceStats, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (WorkspaceStats, error) {
		if workspace != "" {
			if _, err := directory.GetWorkspace(ctx, tx, org, workspace); err != nil {
				return WorkspaceStats{}, err
			}
		}
		return CodeByWorkspace(ctx, tx, org, workspace, w)
	})
}

// CodeByOrganization returns the Organization's next-edit suggestions.
func (s *Service) CodeByOrganization(ctx context.Context, org string, w Window) (OrganizationStats, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (OrganizationStats, error) { return CodeByOrganization(ctx, tx, org, w) })
}
