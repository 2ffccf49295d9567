package directory

import (
	"context"
	"database/sql"
	"slices"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// EmailsWithRoles returns the e-mail addresses of the Organization's
// active members who hold one of the Organization roles roleIDs, themselves
// or through a group, in order: those whom Steward tells of what needs an
// admin's attention (alerts, a disabled webhook endpoint).
func EmailsWithRoles(ctx context.Context, tx *store.Tx, orgID string, roleIDs ...string) ([]string, error) {
	g, err := LoadGraph(ctx, tx, orgID)
	if err != nil {
		return nil, err
	}
	var to []string
	err = tx.Each(ctx, `SELECT u.id, u.email FROM organization_members m JOIN users u ON u.id = m.user_id
		WHERE m.organization_id = ? AND m.deactivated_at IS NULL ORDER BY u.email`, []any{orgID}, func(rows *sql.Rows) error {
		var id, email string
		if err := rows.Scan(&id, &email); err != nil {
			return err
		}
		if slices.ContainsFunc(g.OrganizationGrants(id), func(gr steward.Grant) bool { return slices.Contains(roleIDs, gr.RoleID) }) {
			to = append(to, email)
		}
		return nil
	})
	return to, err
}
