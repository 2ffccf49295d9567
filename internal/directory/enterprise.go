package directory

import (
	"context"
	"database/sql"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// GetEnterpriseAccount returns an Enterprise Account, or KindNotFound.
func GetEnterpriseAccount(ctx context.Context, tx *store.Tx, id string) (steward.EnterpriseAccount, error) {
	var ea steward.EnterpriseAccount
	var created int64
	err := tx.QueryRow(ctx, `SELECT id, name, created_at FROM enterprise_accounts WHERE id = ?`, id).Scan(&ea.ID, &ea.Name, &created)
	ea.CreatedAt = store.Time(created)
	return ea, err
}

// RenameEnterpriseAccount renames an Enterprise Account and audits it in
// the account's chain.
func RenameEnterpriseAccount(ctx context.Context, tx *store.Tx, actor steward.Actor, id, name string) (steward.EnterpriseAccount, error) {
	name, err := validName([]string{"body", "name"}, name)
	if err != nil {
		return steward.EnterpriseAccount{}, err
	}
	ea, err := GetEnterpriseAccount(ctx, tx, id)
	if err != nil || ea.Name == name {
		return ea, err
	}
	if _, err := tx.Exec(ctx, `UPDATE enterprise_accounts SET name = ? WHERE id = ?`, name, id); err != nil {
		return ea, err
	}
	before := ea.Name
	ea.Name = name
	err = audit.Record(ctx, tx, audit.Entry{EnterpriseAccountID: id, Actor: actor, EventType: audit.EventEnterpriseAccountUpdate,
		EventMetadata: map[string]string{"name_before": before, "name_after": name},
		TargetType:    audit.TargetEnterpriseAccount, TargetMetadata: map[string]string{"id": id, "name": name}})
	return ea, err
}

// ListOrganizations returns an Enterprise Account's Organizations by name.
func ListOrganizations(ctx context.Context, tx *store.Tx, enterpriseAccountID string) ([]steward.Organization, []int, error) {
	var orgs []steward.Organization
	var counts []int
	err := tx.Each(ctx, `SELECT id, enterprise_account_id, name, created_at, member_count FROM organizations
		WHERE enterprise_account_id = ? ORDER BY name, id`, []any{enterpriseAccountID}, func(rows *sql.Rows) error {
		var o steward.Organization
		var created int64
		var n int
		if err := rows.Scan(&o.ID, &o.EnterpriseAccountID, &o.Name, &created, &n); err != nil {
			return err
		}
		o.CreatedAt = store.Time(created)
		orgs, counts = append(orgs, o), append(counts, n)
		return nil
	})
	return orgs, counts, err
}

// AccountOrganization returns an Organization of the Enterprise Account, or
// KindNotFound.
func AccountOrganization(ctx context.Context, tx *store.Tx, enterpriseAccountID, orgID string) (steward.Organization, error) {
	if _, err := uuid.Parse(orgID); err != nil {
		return steward.Organization{}, steward.Errorf(steward.KindNotFound, "no Organization %s in this Enterprise Account", orgID)
	}
	org, err := GetOrganization(ctx, tx, orgID)
	if steward.IsKind(store.Translate(err), steward.KindNotFound) || (err == nil && org.EnterpriseAccountID != enterpriseAccountID) {
		return steward.Organization{}, steward.Errorf(steward.KindNotFound, "no Organization %s in this Enterprise Account", orgID)
	}
	return org, err
}

// CreateOrganization creates an Organization, with its default Workspace,
// in an Enterprise Account, and audits both. Names are unique in the
// account, whatever their case (KindConflict).
func CreateOrganization(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, name string) (steward.Organization, steward.Workspace, error) {
	orgs, _, err := ListOrganizations(ctx, tx, enterpriseAccountID)
	if err != nil {
		return steward.Organization{}, steward.Workspace{}, err
	}
	if slices.ContainsFunc(orgs, func(o steward.Organization) bool { return strings.EqualFold(o.Name, strings.TrimSpace(name)) }) {
		return steward.Organization{}, steward.Workspace{}, &steward.Error{Kind: steward.KindConflict, Code: "name_taken", Message: "an Organization called " + strings.TrimSpace(name) + " already exists"}
	}
	return createOrganization(ctx, tx, actor, enterpriseAccountID, name)
}

// EnterpriseMember is a member of an Enterprise Account.
type EnterpriseMember struct {
	User    steward.User
	AdminOf []string
	AddedAt int64
}

// adminOf returns the Organizations of the account a user administers
// directly.
func adminOf(ctx context.Context, tx *store.Tx, enterpriseAccountID, userID string) ([]string, error) {
	return tx.Strings(ctx, `SELECT r.organization_id FROM organization_member_roles r JOIN organizations o ON o.id = r.organization_id
		WHERE o.enterprise_account_id = ? AND r.user_id = ? AND r.role_id = ? ORDER BY r.organization_id`,
		enterpriseAccountID, userID, steward.RoleIDOrganizationAdmin)
}

// ListEnterpriseMembers returns an Enterprise Account's members by email.
func ListEnterpriseMembers(ctx context.Context, tx *store.Tx, enterpriseAccountID string) ([]EnterpriseMember, error) {
	out, err := store.All(ctx, tx, `SELECT u.id, u.email, u.first_name, u.last_name, m.created_at FROM enterprise_account_members m
		JOIN users u ON u.id = m.user_id WHERE m.enterprise_account_id = ? ORDER BY u.email_normalized`, []any{enterpriseAccountID},
		func(r store.Scanner) (EnterpriseMember, error) {
			var m EnterpriseMember
			err := r.Scan(&m.User.ID, &m.User.Email, &m.User.FirstName, &m.User.LastName, &m.AddedAt)
			return m, err
		})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].AdminOf, err = adminOf(ctx, tx, enterpriseAccountID, out[i].User.ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// findUser finds a user by id or email.
func findUser(ctx context.Context, tx *store.Tx, userID, email string) (steward.User, error) {
	var u steward.User
	var err error
	switch {
	case userID != "":
		if _, perr := uuid.Parse(userID); perr != nil {
			return u, steward.Invalid([]string{"body", "user_id"}, "user_id must be a UUID")
		}
		err = tx.QueryRow(ctx, `SELECT id, email, first_name, last_name FROM users WHERE id = ?`, userID).Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName)
	default:
		err = tx.QueryRow(ctx, `SELECT id, email, first_name, last_name FROM users WHERE email_normalized = ?`, strings.ToLower(strings.TrimSpace(email))).
			Scan(&u.ID, &u.Email, &u.FirstName, &u.LastName)
	}
	return u, err
}

// AddEnterpriseMember adds someone who already administers one of the
// account's Organizations; anyone else is KindInvalid, and a member
// KindConflict.
func AddEnterpriseMember(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, userID, email string) (EnterpriseMember, error) {
	if (userID == "") == (email == "") {
		return EnterpriseMember{}, steward.Invalid([]string{"body", "user_id"}, "give either user_id or email")
	}
	u, err := findUser(ctx, tx, userID, email)
	notAdmin := steward.Invalid([]string{"body", "user_id"},
		"only an organization_admin of one of this Enterprise Account's Organizations can become a member: promote them to admin first")
	if steward.IsKind(store.Translate(err), steward.KindNotFound) {
		return EnterpriseMember{}, notAdmin
	}
	if err != nil {
		return EnterpriseMember{}, err
	}
	orgs, err := adminOf(ctx, tx, enterpriseAccountID, u.ID)
	if err != nil {
		return EnterpriseMember{}, err
	}
	if len(orgs) == 0 {
		return EnterpriseMember{}, notAdmin
	}
	if err := insertEnterpriseMember(ctx, tx, actor, enterpriseAccountID, u); err != nil {
		if steward.IsKind(store.Translate(err), steward.KindConflict) {
			return EnterpriseMember{}, &steward.Error{Kind: steward.KindConflict, Code: "already_member", Message: u.Email + " is already a member of this Enterprise Account"}
		}
		return EnterpriseMember{}, err
	}
	return EnterpriseMember{User: u, AdminOf: orgs, AddedAt: store.Micros(tx.Now)}, nil
}

// RemoveEnterpriseMember removes a member of the account; the last one
// stays (KindConflict).
func RemoveEnterpriseMember(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, userID string) error {
	members, err := ListEnterpriseMembers(ctx, tx, enterpriseAccountID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(members, func(m EnterpriseMember) bool { return m.User.ID == userID })
	if i < 0 {
		return steward.Errorf(steward.KindNotFound, "user %s is not a member of this Enterprise Account", userID)
	}
	if len(members) == 1 {
		return &steward.Error{Kind: steward.KindConflict, Code: "last_member", Message: "the last member of an Enterprise Account cannot be removed"}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM enterprise_account_members WHERE enterprise_account_id = ? AND user_id = ?`, enterpriseAccountID, userID); err != nil {
		return err
	}
	err = audit.Record(ctx, tx, audit.Entry{EnterpriseAccountID: enterpriseAccountID, Actor: actor, EventType: audit.EventEnterpriseAccountMemberRemove,
		TargetType: audit.TargetUser, TargetMetadata: map[string]string{"id": userID, "email": members[i].User.Email}})
	return err
}

// PromoteToAdmin makes a member of the Enterprise Account an
// organization_admin of one of its Organizations, adding them to it (and its
// default Workspace) when they are not a member yet.
func PromoteToAdmin(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, orgID, userID string) (steward.User, error) {
	org, err := AccountOrganization(ctx, tx, enterpriseAccountID, orgID)
	if err != nil {
		return steward.User{}, err
	}
	members, err := ListEnterpriseMembers(ctx, tx, enterpriseAccountID)
	if err != nil {
		return steward.User{}, err
	}
	i := slices.IndexFunc(members, func(m EnterpriseMember) bool { return m.User.ID == userID })
	if i < 0 {
		return steward.User{}, steward.Errorf(steward.KindNotFound, "user %s is not a member of this Enterprise Account", userID)
	}
	u := members[i].User
	member, err := isMember(ctx, tx, org.ID, u.ID)
	if err != nil {
		return u, err
	}
	if !member {
		def, err := DefaultWorkspace(ctx, tx, org.ID)
		if err != nil {
			return u, err
		}
		if err := addMember(ctx, tx, org.ID, u.ID, []string{steward.RoleIDOrganizationAdmin}, nil, def.ID, defaultWorkspaceRoles); err != nil {
			return u, err
		}
		return u, recordUser(ctx, tx, actor, org, audit.EventUserCreate, u, map[string]string{"roles": steward.RoleOrganizationAdmin, "promoted": "true"})
	}
	m, err := GetMember(ctx, tx, org.ID, u.ID)
	if err != nil {
		return u, err
	}
	if slices.Contains(m.RoleIDs, steward.RoleIDOrganizationAdmin) {
		return u, nil
	}
	cat, err := LoadCatalog(ctx, tx, org.ID)
	if err != nil {
		return u, err
	}
	return u, setRoles(ctx, tx, actor, org, cat, m, append(slices.Clone(m.RoleIDs), steward.RoleIDOrganizationAdmin))
}
