// Package directory administers who and what an Organization holds:
// Enterprise Accounts, Organizations and their Workspaces, users and their
// memberships. Each function takes the caller's transaction and writes its
// audit entries through it.
package directory

import (
	"context"
	"net/mail"
	"strings"

	"github.com/google/uuid"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// MaxNameLen bounds names of accounts, Organizations and Workspaces.
const MaxNameLen = 200

func validName(field []string, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", steward.Invalid(field, "name must not be empty")
	case len(name) > MaxNameLen:
		return "", steward.Invalid(field, "name must be at most %d bytes", MaxNameLen)
	}
	return name, nil
}

// CreateEnterpriseAccount creates an Enterprise Account and audits it in the
// account's own chain.
func CreateEnterpriseAccount(ctx context.Context, tx *store.Tx, actor steward.Actor, name string) (steward.EnterpriseAccount, error) {
	name, err := validName([]string{"body", "name"}, name)
	if err != nil {
		return steward.EnterpriseAccount{}, err
	}
	ea := steward.EnterpriseAccount{ID: uuid.NewString(), Name: name, CreatedAt: tx.Now}
	if _, err := tx.Exec(ctx, `INSERT INTO enterprise_accounts (id, name, created_at) VALUES (?, ?, ?)`,
		ea.ID, ea.Name, store.Micros(tx.Now)); err != nil {
		return steward.EnterpriseAccount{}, err
	}
	err = audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: ea.ID,
		Actor:               actor,
		EventType:           audit.EventEnterpriseAccountCreate,
		TargetType:          audit.TargetEnterpriseAccount,
		TargetMetadata:      map[string]string{"id": ea.ID, "name": ea.Name},
	})
	return ea, err
}

// createOrganization creates an Organization of an Enterprise Account with
// its default Workspace, and audits both.
func createOrganization(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID, name string) (steward.Organization, steward.Workspace, error) {
	name, err := validName([]string{"body", "name"}, name)
	if err != nil {
		return steward.Organization{}, steward.Workspace{}, err
	}
	org := steward.Organization{ID: uuid.NewString(), EnterpriseAccountID: enterpriseAccountID, Name: name, CreatedAt: tx.Now}
	if _, err := tx.Exec(ctx, `INSERT INTO organizations (id, enterprise_account_id, name, created_at) VALUES (?, ?, ?, ?)`,
		org.ID, org.EnterpriseAccountID, org.Name, store.Micros(tx.Now)); err != nil {
		return steward.Organization{}, steward.Workspace{}, err
	}
	if err := audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: enterpriseAccountID,
		OrganizationID:      org.ID,
		Actor:               actor,
		EventType:           audit.EventOrganizationCreate,
		TargetType:          audit.TargetOrganization,
		TargetMetadata:      map[string]string{"id": org.ID, "name": org.Name},
	}); err != nil {
		return steward.Organization{}, steward.Workspace{}, err
	}
	ws := steward.Workspace{ID: uuid.NewString(), OrganizationID: org.ID, Name: steward.DefaultWorkspaceName, IsDefault: true, CreatedAt: tx.Now}
	if _, err := tx.Exec(ctx, `INSERT INTO workspaces (id, organization_id, name, is_default, created_at) VALUES (?, ?, ?, ?, ?)`,
		ws.ID, ws.OrganizationID, ws.Name, true, store.Micros(tx.Now)); err != nil {
		return steward.Organization{}, steward.Workspace{}, err
	}
	err = audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: enterpriseAccountID,
		OrganizationID:      org.ID,
		WorkspaceID:         ws.ID,
		Actor:               actor,
		EventType:           audit.EventWorkspaceCreate,
		TargetType:          audit.TargetWorkspace,
		TargetMetadata:      map[string]string{"id": ws.ID, "name": ws.Name, "is_default": "true"},
	})
	return org, ws, err
}

// NormalizeEmail validates an address and returns it as given (trimmed) and
// in the lower-case form that uniqueness is checked on.
func NormalizeEmail(field []string, email string) (display, normalized string, err error) {
	email = strings.TrimSpace(email)
	addr, perr := mail.ParseAddress(email)
	if perr != nil || addr.Address != email || addr.Name != "" || len(email) > 254 {
		return "", "", steward.Invalid(field, "%q is not a valid email address", email)
	}
	return email, strings.ToLower(email), nil
}

// AddOrganizationAdmin creates the user with this email if needed, makes
// them a member of the Organization with the organization_admin role and
// workspace_admin of its default Workspace, and audits it. It returns the
// user.
func AddOrganizationAdmin(ctx context.Context, tx *store.Tx, actor steward.Actor, org steward.Organization, defaultWorkspace steward.Workspace, email string) (steward.User, error) {
	display, normalized, err := NormalizeEmail([]string{"body", "email"}, email)
	if err != nil {
		return steward.User{}, err
	}
	u, _, err := ensureUser(ctx, tx, display, normalized, "", "")
	if err != nil {
		return steward.User{}, err
	}
	if err := addMember(ctx, tx, org.ID, u.ID, []string{steward.RoleIDOrganizationAdmin}, nil, defaultWorkspace.ID, []string{steward.RoleIDWorkspaceAdmin}); err != nil {
		return steward.User{}, err
	}
	return u, recordUser(ctx, tx, actor, org, audit.EventUserCreate, u, map[string]string{
		"roles": steward.RoleOrganizationAdmin, "workspace_roles": defaultWorkspace.ID + ":" + steward.RoleWorkspaceAdmin,
	})
}

// insertEnterpriseMember makes a user a member of an Enterprise Account
// and audits it in the account's chain. The caller must ensure the user
// administers one of its Organizations.
func insertEnterpriseMember(ctx context.Context, tx *store.Tx, actor steward.Actor, enterpriseAccountID string, u steward.User) error {
	if _, err := tx.Exec(ctx, `INSERT INTO enterprise_account_members (enterprise_account_id, user_id, created_at) VALUES (?, ?, ?)`,
		enterpriseAccountID, u.ID, store.Micros(tx.Now)); err != nil {
		return err
	}
	err := audit.Record(ctx, tx, audit.Entry{
		EnterpriseAccountID: enterpriseAccountID,
		Actor:               actor,
		EventType:           audit.EventEnterpriseAccountMemberAdd,
		TargetType:          audit.TargetUser,
		TargetMetadata:      map[string]string{"id": u.ID, "email": u.Email},
	})
	return err
}
