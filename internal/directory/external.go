package directory

import (
	"context"
	"strings"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// What an identity provider (SCIM) changes in the directory. Its groups are
// externally managed: their name, members and existence change only here,
// while their Workspace assignments and Organization role stay manageable
// through the Admin API.

// SetMemberActive deactivates a member (keeping their memberships, roles,
// keys and history, but no access: their keys stop working) or reactivates
// them, and audits a change. Setting the state a member already has changes
// nothing.
func SetMemberActive(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, userID string, active bool) error {
	m, err := GetMember(ctx, tx, org.ID, userID)
	if err != nil {
		return err
	}
	q, event := `UPDATE organization_members SET deactivated_at = ? WHERE organization_id = ? AND user_id = ? AND deactivated_at IS NULL`, audit.EventUserDeactivate
	args := []any{store.Micros(tx.Now), org.ID, userID}
	if active {
		q, event = `UPDATE organization_members SET deactivated_at = NULL WHERE organization_id = ? AND user_id = ? AND deactivated_at IS NOT NULL`, audit.EventUserReactivate
		args = args[1:]
	}
	res, err := tx.Exec(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err
	}
	accessChanged(tx, org.ID)
	return recordUser(ctx, tx, actor, org, event, m.User, nil)
}

// DeactivatedMembers returns which of the Organization's members are
// deactivated.
func DeactivatedMembers(ctx context.Context, tx *store.Tx, orgID string) (map[string]bool, error) {
	ids, err := tx.Strings(ctx, `SELECT user_id FROM organization_members WHERE organization_id = ? AND deactivated_at IS NOT NULL`, orgID)
	set := map[string]bool{}
	for _, id := range ids {
		set[id] = true
	}
	return set, err
}

// UpdateUserInfo changes a member's address and names, and audits the
// change with before and after values. A user is shared by every
// Organization they belong to, so their address changes only while they
// belong to this one alone (KindConflict otherwise); an address another user
// has is KindConflict too.
func UpdateUserInfo(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, userID, email, first, last string) error {
	m, err := GetMember(ctx, tx, org.ID, userID)
	if err != nil {
		return err
	}
	u := m.User
	display, normalized, err := NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return err
	}
	for _, e := range []*steward.Error{checkPersonName([]string{"body", "first_name"}, first), checkPersonName([]string{"body", "last_name"}, last)} {
		if e != nil {
			return e
		}
	}
	meta := map[string]string{}
	if display != u.Email {
		if !strings.EqualFold(display, u.Email) {
			var others int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM organization_members WHERE user_id = ? AND organization_id <> ?`, userID, org.ID).Scan(&others); err != nil {
				return err
			}
			if others > 0 {
				return &steward.Error{Kind: steward.KindConflict, Code: "shared_user",
					Message: "user " + u.Email + " also belongs to other Organizations: their address cannot be changed from this one"}
			}
		}
		meta["email_before"], meta["email_after"] = u.Email, display
	}
	if first != u.FirstName {
		meta["first_name_before"], meta["first_name_after"] = u.FirstName, first
	}
	if last != u.LastName {
		meta["last_name_before"], meta["last_name_after"] = u.LastName, last
	}
	if len(meta) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE users SET email = ?, email_normalized = ?, first_name = ?, last_name = ? WHERE id = ?`,
		display, normalized, first, last, userID); err != nil {
		if steward.IsKind(store.Translate(err), steward.KindConflict) {
			return &steward.Error{Kind: steward.KindConflict, Code: "email_taken", Message: "another user already has the address " + display}
		}
		return err
	}
	u.Email = display
	return recordUser(ctx, tx, actor, org, audit.EventUserInfoUpdate, u, meta)
}

// CreateExternalGroup creates an externally managed group with the given id
// and audits it.
func CreateExternalGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id, name, externalID string) (steward.Group, error) {
	in := GroupInput{Name: &name}
	if err := steward.Invalids(in.validate(true)); err != nil {
		return steward.Group{}, err
	}
	g := steward.Group{ID: id, OrganizationID: org.ID, Name: strings.TrimSpace(name), ExternallyManaged: true, CreatedAt: tx.Now}
	if _, err := tx.Exec(ctx, `INSERT INTO user_groups (id, organization_id, name, externally_managed, external_id, created_at, updated_at)
		VALUES (?, ?, ?, TRUE, ?, ?, ?)`, g.ID, org.ID, g.Name, nullable(externalID), store.Micros(tx.Now), store.Micros(tx.Now)); err != nil {
		return g, groupNameTaken(err, g.Name)
	}
	err := audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupCreate, g, map[string]string{"externally_managed": "true"}))
	return g, err
}

// RenameExternalGroup renames an externally managed group and audits it.
func RenameExternalGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id, name string) error {
	g, err := externalGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	in := GroupInput{Name: &name}
	if err := steward.Invalids(in.validate(false)); err != nil {
		return err
	}
	name = strings.TrimSpace(name)
	if name == g.Name {
		return nil
	}
	if _, err := tx.Exec(ctx, `UPDATE user_groups SET name = ?, updated_at = ? WHERE id = ?`, name, store.Micros(tx.Now), id); err != nil {
		return groupNameTaken(err, name)
	}
	before := g.Name
	g.Name = name
	return audit.Record(ctx, tx, groupEntry(actor, org, audit.EventGroupUpdate, g, map[string]string{"name_before": before, "name_after": name}))
}

// ChangeExternalGroupMembers adds members of the Organization to an
// externally managed group, or with remove takes them out; see
// ChangeGroupMembers. Users who are not members of the Organization are
// left out (the identity provider may name users an admin removed).
func ChangeExternalGroupMembers(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string, userIDs []string, remove bool) error {
	g, err := externalGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	for start := 0; start < len(userIDs); start += MaxBatch {
		if err := changeGroupMembers(ctx, tx, actor, org, g, userIDs[start:min(start+MaxBatch, len(userIDs))], remove, true); err != nil {
			return err
		}
	}
	return nil
}

// DeleteExternalGroup deletes an externally managed group; see DeleteGroup.
func DeleteExternalGroup(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, id string) error {
	g, err := externalGroup(ctx, tx, org.ID, id)
	if err != nil {
		return err
	}
	return deleteGroup(ctx, tx, actor, org, g)
}

// externalGroup returns an externally managed group of the Organization, or
// a KindNotFound error.
func externalGroup(ctx context.Context, tx *store.Tx, orgID, id string) (steward.Group, error) {
	g, err := GetGroup(ctx, tx, orgID, id)
	if err == nil && !g.ExternallyManaged {
		return g, steward.Errorf(steward.KindNotFound, "user group %s is not managed by an identity provider", id)
	}
	return g, err
}
