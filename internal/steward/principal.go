package steward

import "context"

// CredentialKind says what authenticated a request.
type CredentialKind int

const (
	// CredentialNone is an anonymous request.
	CredentialNone CredentialKind = iota
	// CredentialAdminAPIKey is an Organization's Admin API key.
	CredentialAdminAPIKey
	// CredentialWorkspaceAPIKey is a standard key for the model API.
	CredentialWorkspaceAPIKey
	// CredentialBackofficeKey is an Enterprise Account's Backoffice key.
	CredentialBackofficeKey
	// CredentialWebSession is a person signed in to the Admin Panel (with
	// OrganizationID set, for a member whose roles open the page) or to the
	// Backoffice (with only EnterpriseAccountID set, for an Enterprise
	// Account member).
	CredentialWebSession
	// CredentialSCIMToken is an Organization's SCIM bearer token, accepted
	// only by the SCIM service provider.
	CredentialSCIMToken
	// CredentialReportToken is the check API's report token: the proxy in
	// front of the models, trusted to report what each checked request
	// used. It belongs to the deployment, not to an Organization.
	CredentialReportToken
)

func (k CredentialKind) String() string {
	switch k {
	case CredentialAdminAPIKey:
		return "Admin API key"
	case CredentialWorkspaceAPIKey:
		return "Workspace API key"
	case CredentialBackofficeKey:
		return "Backoffice key"
	case CredentialWebSession:
		return "signed-in session"
	case CredentialSCIMToken:
		return "SCIM token"
	case CredentialReportToken:
		return "check API report token"
	default:
		return "no credential"
	}
}

// article returns the kind with its indefinite article, for messages.
func (k CredentialKind) article() string {
	if k == CredentialAdminAPIKey {
		return "an " + k.String()
	}
	return "a " + k.String()
}

// Principal is who is calling: what the credential a request presents
// stands for, whatever its kind (package auth makes it). Every surface
// works with it, the model gateway included.
type Principal struct {
	Kind CredentialKind
	// CredentialID and CredentialName identify the key that authenticated.
	CredentialID   string
	CredentialName string
	// OrganizationID is set for Organization-scoped credentials; every
	// object the principal reaches must belong to it.
	OrganizationID      string
	EnterpriseAccountID string
	// WorkspaceID is the Workspace of a Workspace API key: its requests'
	// limits and usage are counted there.
	WorkspaceID string
	// UserID is the person behind the credential, when there is one.
	UserID string
	// Product is what a Workspace API key is for (keys.Products), which
	// decides how its usage is counted in product analytics.
	Product string
	// Models are the models a Workspace API key may call: its Workspace's
	// allow list and its own, intersected; nil allows every model. The
	// key check shares one value among the keys it applies to.
	Models *ModelAllowList
}

// MayUse reports whether p may call model. A model it may not call is
// answered as a model that does not exist.
func (p Principal) MayUse(model string) bool { return p.Models.Allows(model) }

// Actor returns the audit actor for changes made by p.
func (p Principal) Actor() Actor {
	switch p.Kind {
	case CredentialAdminAPIKey, CredentialWorkspaceAPIKey:
		return Actor{Type: ActorAPIKey, UserID: p.UserID, Metadata: map[string]string{
			"api_key_id":   p.CredentialID,
			"api_key_name": p.CredentialName,
			"api_key_kind": p.Kind.String(),
		}}
	case CredentialBackofficeKey:
		return Actor{Type: ActorOther, Metadata: map[string]string{
			"backoffice_key_id":   p.CredentialID,
			"backoffice_key_name": p.CredentialName,
		}}
	case CredentialWebSession:
		return Actor{Type: ActorHuman, UserID: p.UserID, Metadata: map[string]string{
			"email":      p.CredentialName,
			"session_id": p.CredentialID,
		}}
	case CredentialSCIMToken:
		return Actor{Type: ActorOther, Metadata: map[string]string{
			"via":             "scim",
			"scim_token_id":   p.CredentialID,
			"scim_token_name": p.CredentialName,
		}}
	default:
		return Actor{Type: ActorOther, Metadata: map[string]string{}}
	}
}

type principalKey struct{}

// WithPrincipal returns a context carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal in ctx; an anonymous one if none.
func PrincipalFrom(ctx context.Context) Principal {
	p, _ := ctx.Value(principalKey{}).(Principal)
	return p
}

// Actor types, as Mistral's audit log spells them.
const (
	ActorHuman  = "HUMAN"
	ActorAPIKey = "API_KEY"
	ActorOther  = "OTHER"
)

// Actor is who made a change, as recorded in the audit log.
type Actor struct {
	Type     string
	UserID   string
	Metadata map[string]string
}

// SystemActor is Steward itself acting, e.g. the first-start bootstrap.
func SystemActor(name string) Actor {
	return Actor{Type: ActorOther, Metadata: map[string]string{"name": name}}
}
