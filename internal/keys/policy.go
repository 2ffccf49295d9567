package keys

import (
	"context"
	"strconv"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MaxPolicyDays is the longest maximum a policy may set (ten years).
const MaxPolicyDays = 3650

// PolicyDays returns the expiration maximum, in days, set for the
// Organization (workspaceID "") or for one Workspace; 0 when none is set.
func PolicyDays(ctx context.Context, tx *store.Tx, orgID, workspaceID string) (int, error) {
	var days int
	err := tx.QueryRow(ctx, `SELECT max_expiration_days FROM api_key_policies WHERE organization_id = ? AND workspace_id = ?`, orgID, workspaceID).Scan(&days)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return 0, nil
	}
	return days, err
}

// EffectiveMaxDays returns the shorter of the Organization's and the
// Workspace's maxima; 0 when neither is set.
func EffectiveMaxDays(ctx context.Context, tx *store.Tx, orgID, workspaceID string) (int, error) {
	org, err := PolicyDays(ctx, tx, orgID, "")
	if err != nil {
		return 0, err
	}
	ws, err := PolicyDays(ctx, tx, orgID, workspaceID)
	switch {
	case err != nil:
		return 0, err
	case org == 0:
		return ws, nil
	case ws == 0:
		return org, nil
	}
	return min(org, ws), nil
}

// SetPolicy sets (days > 0) or removes (days 0) the expiration maximum of
// the Organization (workspaceID "") or of an active Workspace, and audits
// it with before and after values. A Workspace maximum may only be shorter
// than the Organization's (KindInvalid). Existing keys are not changed.
func SetPolicy(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, workspaceID string, days int) error {
	field := []string{"body", "max_expiration_days"}
	if days < 0 || days > MaxPolicyDays {
		return steward.Invalid(field, "max_expiration_days must be between 1 and %d, or null for no maximum", MaxPolicyDays)
	}
	entry := audit.Entry{EnterpriseAccountID: org.EnterpriseAccountID, OrganizationID: org.ID, Actor: actor,
		EventType: audit.EventAPIKeyPolicyUpdate, TargetType: audit.TargetAPIKeyPolicy,
		TargetMetadata: map[string]string{"scope": "organization"}}
	if workspaceID != "" {
		ws, err := directory.ActiveWorkspace(ctx, tx, org.ID, workspaceID)
		if err != nil {
			return err
		}
		orgDays, err := PolicyDays(ctx, tx, org.ID, "")
		if err != nil {
			return err
		}
		if days > 0 && orgDays > 0 && days > orgDays {
			return steward.Invalid(field, "a Workspace maximum may only be shorter than the Organization's %d days", orgDays)
		}
		entry.WorkspaceID = ws.ID
		entry.TargetMetadata = map[string]string{"scope": "workspace", "workspace_id": ws.ID, "workspace_name": ws.Name}
	}
	before, err := PolicyDays(ctx, tx, org.ID, workspaceID)
	if err != nil || before == days {
		return err
	}
	if days == 0 {
		_, err = tx.Exec(ctx, `DELETE FROM api_key_policies WHERE organization_id = ? AND workspace_id = ?`, org.ID, workspaceID)
	} else {
		_, err = tx.Exec(ctx, `INSERT INTO api_key_policies (organization_id, workspace_id, max_expiration_days) VALUES (?, ?, ?)
			ON CONFLICT (organization_id, workspace_id) DO UPDATE SET max_expiration_days = excluded.max_expiration_days`, org.ID, workspaceID, days)
	}
	if err != nil {
		return err
	}
	show := func(d int) string {
		if d == 0 {
			return "none"
		}
		return strconv.Itoa(d)
	}
	entry.EventMetadata = map[string]string{"max_expiration_days_before": show(before), "max_expiration_days_after": show(days)}
	return audit.Record(ctx, tx, entry)
}
