package steward

import (
	"time"
)

// EnterpriseAccount links Organizations; it is administered in the Backoffice.
type EnterpriseAccount struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// Organization is the unit the Admin API administers. Every Organization has
// exactly one default Workspace.
type Organization struct {
	ID                  string
	EnterpriseAccountID string
	Name                string
	CreatedAt           time.Time
}

// Workspace groups members, API keys and limits inside an Organization.
type Workspace struct {
	ID             string
	OrganizationID string
	Name           string
	IsDefault      bool
	CreatedAt      time.Time
	ArchivedAt     *time.Time
}

// User is a person; membership of an Organization is separate.
type User struct {
	ID        string
	Email     string
	FirstName string
	LastName  string
	CreatedAt time.Time
}

// AdminAPIKey authenticates Admin API calls for exactly one Organization. The
// secret itself is never stored; Hint shows its first and last characters.
type AdminAPIKey struct {
	ID                  string
	EnterpriseAccountID string
	OrganizationID      string
	Name                string
	Hint                string
	CreatedAt           time.Time
	ExpiresAt           *time.Time
	LastUsedAt          *time.Time
	RevokedAt           *time.Time
}

// BackofficeKey authenticates the Backoffice API for one Enterprise Account.
type BackofficeKey struct {
	ID                  string
	EnterpriseAccountID string
	Name                string
	Hint                string
	CreatedAt           time.Time
	ExpiresAt           *time.Time
	LastUsedAt          *time.Time
	RevokedAt           *time.Time
}

// Built-in Organization role names.
const (
	RoleOrganizationMember  = "member"
	RoleOrganizationBilling = "billing_manager"
	RoleOrganizationAdmin   = "organization_admin"
)

// Built-in Workspace role names used by the foundation; the full set comes
// with the directory.
const (
	RoleWorkspaceAdmin       = "workspace_admin"
	RoleWorkspaceContributor = "workspace_contributor"
)

// DefaultWorkspaceName names the Workspace every Organization starts with.
const DefaultWorkspaceName = "Default Workspace"

// Static UUIDs of built-in roles, from Mistral's document
// (StaticOrganizationRoles and StaticWorkspaceRoles, paired with the role
// names in published order).
const (
	RoleIDOrganizationAdmin = "7bde5959-d676-47d2-b779-35b64323d278"
	RoleIDWorkspaceAdmin    = "731eb2be-a74f-4070-b797-35bf7009e553"
)
