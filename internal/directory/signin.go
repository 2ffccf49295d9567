package directory

import (
	"context"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// AdminOrganizations returns the Organizations a user administers (as
// organization_admin, directly or through a group), by name: the ones
// whose Admin Panel they may open.
func AdminOrganizations(ctx context.Context, tx *store.Tx, userID string) ([]steward.Organization, error) {
	ids, err := tx.Strings(ctx, `SELECT m.organization_id FROM organization_members m JOIN organizations o ON o.id = m.organization_id
		WHERE m.user_id = ? ORDER BY o.name, o.id`, userID)
	if err != nil {
		return nil, err
	}
	var out []steward.Organization
	for _, id := range ids {
		admin, err := IsOrganizationAdmin(ctx, tx, id, userID)
		if err != nil {
			return nil, err
		}
		if admin {
			org, err := GetOrganization(ctx, tx, id)
			if err != nil {
				return nil, err
			}
			out = append(out, org)
		}
	}
	return out, nil
}

// IsOrganizationAdmin reports whether a user is an organization_admin of
// the Organization, directly or through a group; false for a non-member.
func IsOrganizationAdmin(ctx context.Context, tx *store.Tx, orgID, userID string) (bool, error) {
	g, err := LoadGraph(ctx, tx, orgID, userID)
	if err != nil {
		return false, err
	}
	return g.IsOrganizationAdmin(userID), nil
}

// MemberEnterpriseAccounts returns the Enterprise Accounts a user is a
// member of: the ones whose Backoffice they may open.
func MemberEnterpriseAccounts(ctx context.Context, tx *store.Tx, userID string) ([]steward.EnterpriseAccount, error) {
	ids, err := tx.Strings(ctx, `SELECT m.enterprise_account_id FROM enterprise_account_members m JOIN enterprise_accounts a ON a.id = m.enterprise_account_id
		WHERE m.user_id = ? ORDER BY a.name, a.id`, userID)
	if err != nil {
		return nil, err
	}
	out := make([]steward.EnterpriseAccount, 0, len(ids))
	for _, id := range ids {
		ea, err := GetEnterpriseAccount(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, ea)
	}
	return out, nil
}
