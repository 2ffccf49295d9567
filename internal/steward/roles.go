package steward

import "slices"

// RoleScope says where a role applies.
type RoleScope string

const (
	ScopeOrganization RoleScope = "organization"
	ScopeWorkspace    RoleScope = "workspace"
)

// Permission is one thing a role allows. Roles are sets of permissions, and
// a person's permissions are the union of their roles'.
type Permission string

// Organization permissions.
const (
	PermMembersRead     Permission = "members.read"
	PermMembersWrite    Permission = "members.write"
	PermGroupsWrite     Permission = "groups.write"
	PermWorkspacesRead  Permission = "workspaces.read"
	PermWorkspacesWrite Permission = "workspaces.write"
	PermRolesWrite      Permission = "roles.write"
	PermAPIKeysRead     Permission = "api_keys.read"
	PermAPIKeysWrite    Permission = "api_keys.write"
	PermLimitsRead      Permission = "limits.read"
	PermLimitsWrite     Permission = "limits.write"
	PermUsageRead       Permission = "usage.read"
	PermBillingRead     Permission = "billing.read"
	PermAuditRead       Permission = "audit.read"
	PermWebhooksWrite   Permission = "webhooks.write"
	PermSSOWrite        Permission = "sso.write"
)

// Workspace permissions.
const (
	PermModelsUse             Permission = "models.use"
	PermOwnAPIKeysCreate      Permission = "api_keys.create"
	PermWorkspaceMembersWrite Permission = "workspace.members.write"
	PermWorkspaceKeysWrite    Permission = "workspace.api_keys.write"
	PermWorkspaceSettings     Permission = "workspace.settings.write"
	PermWorkspaceUsageRead    Permission = "workspace.usage.read"
	PermWorkspaceObservabilty Permission = "workspace.observability.read"
	PermWorkflowsExecute      Permission = "workspace.workflows.execute"
)

// PermissionInfo describes a permission, for the roles catalogue.
type PermissionInfo struct {
	Name        Permission
	Scope       RoleScope
	Description string
}

// Permissions is every permission, in the order they are listed.

var Permissions = []PermissionInfo{
	{PermMembersRead, ScopeOrganization, "See members and invitations"},
	{PermMembersWrite, ScopeOrganization, "Invite, add, remove members and change their Organization roles"},
	{PermGroupsWrite, ScopeOrganization, "Create and change user groups"},
	{PermWorkspacesRead, ScopeOrganization, "See every Workspace"},
	{PermWorkspacesWrite, ScopeOrganization, "Create, change and archive Workspaces"},
	{PermRolesWrite, ScopeOrganization, "Create and change custom roles"},
	{PermAPIKeysRead, ScopeOrganization, "See every API key of the Organization"},
	{PermAPIKeysWrite, ScopeOrganization, "Create, rotate and delete any API key, and set key policy"},
	{PermLimitsRead, ScopeOrganization, "See rate and spend limits"},
	{PermLimitsWrite, ScopeOrganization, "Change rate and spend limits"},
	{PermUsageRead, ScopeOrganization, "See usage and cost reports"},
	{PermBillingRead, ScopeOrganization, "See billing and spend"},
	{PermAuditRead, ScopeOrganization, "Read and export the audit log"},
	{PermWebhooksWrite, ScopeOrganization, "Create, change and delete webhook endpoints, and read their deliveries"},
	{PermSSOWrite, ScopeOrganization, "See and change the single sign-on connection"},
	{PermModelsUse, ScopeWorkspace, "Call the models with the Workspace's API keys"},
	{PermOwnAPIKeysCreate, ScopeWorkspace, "Create one's own API keys in the Workspace"},
	{PermWorkspaceMembersWrite, ScopeWorkspace, "Add, remove and change the Workspace's members"},
	{PermWorkspaceKeysWrite, ScopeWorkspace, "Manage every API key of the Workspace"},
	{PermWorkspaceSettings, ScopeWorkspace, "Change the Workspace's settings, limits and key policy"},
	{PermWorkspaceUsageRead, ScopeWorkspace, "See the Workspace's usage and cost"},
	{PermWorkspaceObservabilty, ScopeWorkspace, "See the Workspace's traces and metrics"},
	{PermWorkflowsExecute, ScopeWorkspace, "Run the Workspace's workflows"},
}

// PermissionScope returns the scope of a permission, and false if there is
// no such permission.
func PermissionScope(p Permission) (RoleScope, bool) {
	for _, info := range Permissions {
		if info.Name == p {
			return info.Scope, true
		}
	}
	return "", false
}

// Role is a named set of permissions in one scope. Built-in roles carry the
// static UUIDs of Mistral's document and, for some, a legacy letter.
type Role struct {
	ID          string
	Name        string
	Letter      string
	Scope       RoleScope
	Description string
	Permissions []Permission
	Custom      bool
}

// Has reports whether the role grants p.
func (r Role) Has(p Permission) bool { return slices.Contains(r.Permissions, p) }

func scopePermissions(scope RoleScope) []Permission {
	var out []Permission
	for _, info := range Permissions {
		if info.Scope == scope {
			out = append(out, info.Name)
		}
	}
	return out
}

// Built-in role names and ids. Mistral's document lists the static UUIDs
// (StaticOrganizationRoles, StaticWorkspaceRoles) without naming them; they
// are paired with the role names in published order.
const (
	RoleOrganizationMember  = "member"
	RoleOrganizationBilling = "billing_manager"
	RoleOrganizationAdmin   = "organization_admin"

	RoleIDOrganizationMember  = "0d48f530-095c-43fe-8aea-6673bcacabe6"
	RoleIDOrganizationBilling = "c955f4e1-9477-43f0-8349-6fbc629fccc9"
	RoleIDOrganizationAdmin   = "7bde5959-d676-47d2-b779-35b64323d278"

	RoleWorkspaceAdmin       = "workspace_admin"
	RoleWorkspaceContributor = "workspace_contributor"

	RoleIDWorkspaceAdmin       = "731eb2be-a74f-4070-b797-35bf7009e553"
	RoleIDWorkspaceContributor = "b23cd6e0-91cd-4a8a-9869-b30366bf3966"
)

// OrganizationRoles are the built-in Organization roles.
var OrganizationRoles = []Role{
	{ID: RoleIDOrganizationMember, Name: RoleOrganizationMember, Letter: "M", Scope: ScopeOrganization,
		Description: "Member of the Organization, with access to the Workspaces they belong to"},
	{ID: RoleIDOrganizationBilling, Name: RoleOrganizationBilling, Letter: "B", Scope: ScopeOrganization,
		Description: "Sees usage, spend, limits and invoices, but not settings or members",
		Permissions: []Permission{PermUsageRead, PermBillingRead, PermLimitsRead}},
	{ID: RoleIDOrganizationAdmin, Name: RoleOrganizationAdmin, Letter: "A", Scope: ScopeOrganization,
		Description: "Full control of the Organization and access to every Workspace",
		Permissions: scopePermissions(ScopeOrganization)},
}

var modelUser = []Permission{PermModelsUse}
var keyMaker = []Permission{PermModelsUse, PermOwnAPIKeysCreate}

// WorkspaceRoles are the built-in Workspace roles.
var WorkspaceRoles = []Role{
	{ID: "d7ea77c5-9260-41d0-ab26-52b5add3ee56", Name: "billing", Scope: ScopeWorkspace,
		Description: "Sees the Workspace's usage and cost only", Permissions: []Permission{PermWorkspaceUsageRead}},
	{ID: "48436751-ee56-44bd-8a2d-712233977821", Name: "user", Scope: ScopeWorkspace,
		Description: "Uses the Workspace's models", Permissions: modelUser},
	{ID: "375cd0db-3bbe-4b79-80f3-954ccf04f3d1", Name: "contributor", Scope: ScopeWorkspace,
		Description: "Uses the Workspace's models and creates their own API keys", Permissions: keyMaker},
	{ID: "578584f1-4319-4c88-9948-38a5184483b6", Name: "dev", Scope: ScopeWorkspace,
		Description: "Developer: uses the models and creates their own API keys", Permissions: keyMaker},
	{ID: "d79b3027-4eb2-4521-8722-825acfee7d8b", Name: "dev_contributor", Scope: ScopeWorkspace,
		Description: "Developer and contributor: uses the models and creates their own API keys", Permissions: keyMaker},
	{ID: "252a0825-40b9-4b98-be80-7658956f13e9", Name: "mistral_code_user", Scope: ScopeWorkspace,
		Description: "Uses the coding assistant's models", Permissions: modelUser},
	{ID: "17aa61c5-1c61-477e-a40a-e52c8ccd74b9", Name: "cloud_user", Scope: ScopeWorkspace,
		Description: "Uses the Workspace's models from cloud integrations", Permissions: modelUser},
	{ID: RoleIDWorkspaceContributor, Name: RoleWorkspaceContributor, Letter: "M", Scope: ScopeWorkspace,
		Description: "Member of the Workspace: uses its models and creates their own API keys", Permissions: keyMaker},
	{ID: RoleIDWorkspaceAdmin, Name: RoleWorkspaceAdmin, Letter: "A", Scope: ScopeWorkspace,
		Description: "Administers the Workspace: members, API keys, settings and key policy",
		Permissions: scopePermissions(ScopeWorkspace)},
	{ID: "ff86d432-7f27-47f8-b02f-b5c102ef6a55", Name: "observability_viewer", Scope: ScopeWorkspace,
		Description: "Sees the Workspace's traces, metrics and usage",
		Permissions: []Permission{PermWorkspaceObservabilty, PermWorkspaceUsageRead}},
	{ID: "0f9acbf6-93b5-42c7-a227-fc7652755f65", Name: "workflow_executor", Scope: ScopeWorkspace,
		Description: "Runs the Workspace's workflows", Permissions: []Permission{PermModelsUse, PermWorkflowsExecute}},
}

// BuiltinRoles returns the built-in roles of a scope.
func BuiltinRoles(scope RoleScope) []Role {
	if scope == ScopeWorkspace {
		return WorkspaceRoles
	}
	return OrganizationRoles
}

// BuiltinRole finds a built-in role of scope by UUID, name or letter.
func BuiltinRole(scope RoleScope, ref string) (Role, bool) {
	for _, r := range BuiltinRoles(scope) {
		if r.ID == ref || r.Name == ref || (r.Letter != "" && r.Letter == ref) {
			return r, true
		}
	}
	return Role{}, false
}
