package directory

import (
	"context"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

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
