package directory

import (
	"context"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// OrganizationAccess is an Organization and what a member may do in it.
type OrganizationAccess struct {
	Organization steward.Organization
	Permissions  steward.PermissionSet
}

// OrganizationPermissions returns what a user may do in an Organization
// through their Organization roles, their own and their groups': none for
// someone who is not an active member.
func OrganizationPermissions(ctx context.Context, tx *store.Tx, orgID, userID string) (steward.PermissionSet, error) {
	g, err := LoadGraph(ctx, tx, orgID, userID)
	if err != nil {
		return 0, err
	}
	return g.Permissions(g.OrganizationGrants(userID)), nil
}

// PanelOrganizations returns the Organizations in which a user holds at
// least one Organization permission, by name, with those permissions: the
// ones whose Admin Panel shows them a page.
func PanelOrganizations(ctx context.Context, tx *store.Tx, userID string) ([]OrganizationAccess, error) {
	ids, err := tx.Strings(ctx, `SELECT m.organization_id FROM organization_members m JOIN organizations o ON o.id = m.organization_id
		WHERE m.user_id = ? ORDER BY o.name, o.id`, userID)
	if err != nil {
		return nil, err
	}
	var out []OrganizationAccess
	for _, id := range ids {
		perms, err := OrganizationPermissions(ctx, tx, id, userID)
		if err != nil {
			return nil, err
		}
		if perms == 0 {
			continue
		}
		org, err := GetOrganization(ctx, tx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, OrganizationAccess{Organization: org, Permissions: perms})
	}
	return out, nil
}
