package steward

// Action is something a route does. Every route names one, and Authorize is
// the only place that decides who may do it.
type Action string

// Actions of the foundation. Later surfaces add theirs here, with the
// credential kinds that may perform them in policy.
const (
	ActionAuditRead       Action = "audit_logs.read"
	ActionMembersRead     Action = "members.read"
	ActionMembersWrite    Action = "members.write"
	ActionRolesRead       Action = "roles.read"
	ActionRolesWrite      Action = "roles.write"
	ActionWorkspacesRead  Action = "workspaces.read"
	ActionWorkspacesWrite Action = "workspaces.write"
	ActionGroupsRead      Action = "groups.read"
	ActionGroupsWrite     Action = "groups.write"
	ActionAPIKeysRead     Action = "api_keys.read"
	ActionAPIKeysWrite    Action = "api_keys.write"
	ActionLimitsRead      Action = "limits.read"
	ActionLimitsWrite     Action = "limits.write"
	ActionUsageRead       Action = "usage.read"
	ActionBackoffice      Action = "backoffice"
	ActionSCIMTokensRead  Action = "scim_tokens.read"
	ActionSCIMTokensWrite Action = "scim_tokens.write"
	ActionSCIMSync        Action = "scim_sync"
	ActionSCIMProvision   Action = "scim.provision"
	ActionWebhooksRead    Action = "webhooks.read"
	ActionWebhooksWrite   Action = "webhooks.write"
	ActionSSORead         Action = "sso.read"
	ActionSSOWrite        Action = "sso.write"
)

// adminOnly is the Admin API's rule: an Admin API key acts as an
// organization_admin of its Organization. A person signed in to the Admin
// Panel gets this principal for a page only when their Organization roles
// hold the permission that opens it (the web layer checks it first: an
// organization_admin holds them all, a billing manager or a custom role
// some).
var adminOnly = []CredentialKind{CredentialAdminAPIKey, CredentialWebSession}

// policy lists, for each action, the credential kinds allowed to perform it.
// An action absent from this table is denied to everyone.
var policy = map[Action][]CredentialKind{
	ActionAuditRead:       adminOnly,
	ActionMembersRead:     adminOnly,
	ActionMembersWrite:    adminOnly,
	ActionRolesRead:       adminOnly,
	ActionRolesWrite:      adminOnly,
	ActionWorkspacesRead:  adminOnly,
	ActionWorkspacesWrite: adminOnly,
	ActionGroupsRead:      adminOnly,
	ActionGroupsWrite:     adminOnly,
	ActionAPIKeysRead:     adminOnly,
	ActionAPIKeysWrite:    adminOnly,
	ActionLimitsRead:      adminOnly,
	ActionLimitsWrite:     adminOnly,
	ActionUsageRead:       adminOnly,
	ActionBackoffice:      {CredentialBackofficeKey, CredentialWebSession},
	ActionSCIMTokensRead:  adminOnly,
	ActionSCIMTokensWrite: adminOnly,
	ActionSCIMSync:        adminOnly,
	ActionSCIMProvision:   {CredentialSCIMToken},
	ActionWebhooksRead:    adminOnly,
	ActionWebhooksWrite:   adminOnly,
	ActionSSORead:         adminOnly,
	ActionSSOWrite:        adminOnly,
}

// Authorize decides whether p may perform a. It returns nil, or an *Error of
// KindUnauthenticated (no credential) or KindForbidden (the wrong kind of
// credential, or an action nobody may perform).
func Authorize(p Principal, a Action) error {
	if p.Kind == CredentialNone {
		return &Error{Kind: KindUnauthenticated, Message: "missing API key: send it in the x-api-key header or as Authorization: Bearer"}
	}
	allowed, ok := policy[a]
	if !ok {
		return Errorf(KindForbidden, "action %q is not permitted", a)
	}
	for _, k := range allowed {
		if k == p.Kind {
			switch {
			case a != ActionBackoffice && p.OrganizationID == "":
				return Errorf(KindForbidden, "this credential belongs to no Organization")
			case a == ActionBackoffice && (p.EnterpriseAccountID == "" || (k == CredentialWebSession && p.OrganizationID != "")):
				// A session signed in to an Organization's Admin Panel is
				// not a Backoffice session, even for the same person.
				return Errorf(KindForbidden, "this credential belongs to no Enterprise Account's Backoffice")
			}
			return nil
		}
	}
	switch {
	case p.Kind == CredentialWorkspaceAPIKey && allowed[0] == CredentialAdminAPIKey:
		return Errorf(KindForbidden, "a standard (Workspace) API key never grants admin access: use an Admin API key")
	default:
		return Errorf(KindForbidden, "%s cannot be used here: this route requires %s", p.Kind.article(), allowed[0].article())
	}
}
