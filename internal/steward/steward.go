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
	Description    string
	Icon           string
	IsDefault      bool
	// MemberCount counts direct members.
	MemberCount int
	// SpendLimit is the monthly spend cap in whole currency units, if any.
	SpendLimit *int64
	CreatedAt  time.Time
	ArchivedAt *time.Time
}

// MaxActiveWorkspaces is how many Workspaces an Organization may have that
// are not archived.
const MaxActiveWorkspaces = 500

// Group is a user group of an Organization.
type Group struct {
	ID             string
	OrganizationID string
	Name           string
	Description    *string
	// TargetType is "W" (Workspace) or "O" (Organization), or empty.
	TargetType         string
	OrganizationRoleID string
	// ExternallyManaged groups come from an identity provider, which alone
	// changes their name and members.
	ExternallyManaged bool
	ParentIDs         []string
	CreatedAt         time.Time
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

// DefaultWorkspaceName names the Workspace every Organization starts with.
const DefaultWorkspaceName = "Default Workspace"

// Member is a user as a member of one Organization.
type Member struct {
	User User
	// JoinedAt is when the user became a member.
	JoinedAt time.Time
	// RoleIDs are the member's Organization roles, built-in and custom.
	RoleIDs           []string
	SubscriptionTypes []string
	Workspaces        []MemberWorkspace
	// DeactivatedAt is when the member's identity provider deactivated
	// them (SCIM active: false); nil while they are active. Mistral's
	// member objects have no field for it.
	DeactivatedAt *time.Time
}

// MemberWorkspace is a Workspace a member belongs to, with their roles there.
type MemberWorkspace struct {
	WorkspaceID string
	Name        string
	IsDefault   bool
	RoleIDs     []string
}

// Invitation asks someone to join an Organization.
type Invitation struct {
	ID                    string
	OrganizationID        string
	Email                 string
	RoleIDs               []string
	SubscriptionTypes     []string
	WorkspaceIDs          []string
	SeatAutomaticGranting bool
	EmailLanguage         string
	CreatedAt             time.Time
	ExpiresAt             time.Time
	AcceptedAt            *time.Time
	RevokedAt             *time.Time
}

// Expired reports whether the invitation can no longer be accepted at now.
func (i Invitation) Expired(now time.Time) bool { return !now.Before(i.ExpiresAt) }

// SubscriptionTypes are the product seats a member can hold (Mistral's
// PlanType).
var SubscriptionTypes = []string{"API", "CHAT", "ON_PREMISE", "LICENSE", "MISTRAL_CODE"}

// APIKey is a Workspace API key: it calls the models on behalf of its owner
// in one Workspace. Its secret is never stored; HiddenKey masks it.
type APIKey struct {
	ID             string
	OrganizationID string
	WorkspaceID    string
	WorkspaceName  string
	UserID         string
	Name           *string
	HiddenKey      string
	Product        string
	CreatedBy      string
	CreatedAt      time.Time
	// ExpiresAt is when the key stops working: the start (UTC) of its
	// expiration date.
	ExpiresAt  *time.Time
	LastUsedAt *time.Time
	// PreviousExpiresAt is when the secret replaced by the last rotation
	// stops working, if it still works.
	PreviousExpiresAt *time.Time
}

// Expired reports whether the key no longer works at now.
func (k APIKey) Expired(now time.Time) bool { return k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) }
