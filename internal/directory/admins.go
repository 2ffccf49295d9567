package directory

import (
	"context"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// AdminEmails returns the email addresses of the Organization's active
// organization_admins, for the notices Steward sends them.
func AdminEmails(ctx context.Context, tx *store.Tx, orgID string) ([]string, error) {
	return tx.Strings(ctx, `SELECT u.email FROM organization_member_roles r
		JOIN organization_members m ON m.organization_id = r.organization_id AND m.user_id = r.user_id
		JOIN users u ON u.id = r.user_id
		WHERE r.organization_id = ? AND r.role_id = ? AND m.deactivated_at IS NULL ORDER BY u.email`, orgID, steward.RoleIDOrganizationAdmin)
}
