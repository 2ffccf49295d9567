package quota

import (
	"context"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/usage"
)

// ScopeMonth is where a scope (the Organization or one of its Workspaces)
// stands this month: its spend against its cap, its tokens per model, and
// its rate limits, whose per-month token limits those tokens count against.
type ScopeMonth struct {
	Spend  Spend
	Tokens map[string]int64
	Limits RateLimits
}

// WorkspaceMonth is a Workspace's ScopeMonth.
type WorkspaceMonth struct {
	Workspace steward.Workspace
	ScopeMonth
}

// Standings are this month so far of an Organization and of each of its
// active Workspaces (at most directory.MaxPageSize, by name).
type Standings struct {
	// Start is this month's first instant, in the Organization's time zone.
	Start        time.Time
	Organization ScopeMonth
	Workspaces   []WorkspaceMonth
}

// Standings returns where the Organization and each of its active
// Workspaces stand in the calendar month of the Organization's time zone
// that holds now, as the caps count it, in one read-only transaction.
func (s *Service) Standings(ctx context.Context, orgID string) (Standings, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (Standings, error) {
		var out Standings
		set, err := Load(ctx, tx, orgID)
		if err != nil {
			return out, err
		}
		start, end := usage.Month(tx.Now, set.Location)
		out.Start = start
		scope := func(workspaceID string) (ScopeMonth, error) {
			spent, tokens, err := usage.MonthSpend(ctx, tx, orgID, workspaceID, start, end)
			return ScopeMonth{Spend: Spend{Cap: set.SpendCapOf(workspaceID), Spent: spent}, Tokens: tokens, Limits: set.RateLimitsOf(workspaceID)}, err
		}
		if out.Organization, err = scope(""); err != nil {
			return out, err
		}
		all, _, err := directory.ListWorkspaces(ctx, tx, orgID, false, "", 1, directory.MaxPageSize)
		if err != nil {
			return out, err
		}
		for _, ws := range all {
			m, err := scope(ws.ID)
			if err != nil {
				return out, err
			}
			out.Workspaces = append(out.Workspaces, WorkspaceMonth{Workspace: ws, ScopeMonth: m})
		}
		return out, nil
	})
}
