package orgfile

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/stewardhq/steward/client"
)

// server is what Export read of the server: the file it makes, and the
// IDs behind the names the file uses, which Apply adds to as it creates.
type server struct {
	api *client.Admin
	// steward is false when the server does not serve Steward's
	// extensions, such as Mistral's Admin API.
	steward bool
	file    File

	memberID     map[string]string // lower-case email -> user UUID
	memberEmail  map[string]string // user UUID -> email
	workspaceID  map[string]string // name -> UUID
	groupID      map[string]string // name -> UUID
	groupName    map[string]string // UUID -> name
	customRoleID map[string]string // name -> UUID
	keyName      map[string]string // key ID -> its name, or its hidden key
	webhookID    map[string]string // URL -> endpoint ID
	// roles names the roles of each scope: UUID or letter -> name, and
	// name -> UUID.
	roles   map[string]*roleNames
	adminID string // an organization_admin, for new Workspaces
}

// The scopes of roles, as custom roles name them.
const (
	scopeOrganization = "organization"
	scopeWorkspace    = "workspace"
)

// letters name the built-in roles that have a legacy letter, which no
// answer lists.
var letters = map[string]map[string]string{
	scopeOrganization: {"A": "organization_admin", "M": "member", "B": "billing_manager"},
	scopeWorkspace:    {"A": "workspace_admin", "M": "workspace_contributor"},
}

// roleNames is the roles of one scope that the server listed.
type roleNames struct {
	name    map[string]string // UUID -> name
	id      map[string]string // name -> UUID
	builtin map[string]bool   // name -> built in
}

// name returns the name of a role given by name, letter or UUID.
func (s *server) roleName(scope, ref string) string {
	if n, ok := letters[scope][ref]; ok {
		return n
	}
	return cmp.Or(s.roles[scope].name[ref], ref)
}

// roleNames returns the names of roles given by name, letter or UUID,
// sorted and each once.
func (s *server) roleNames(scope string, refs []string) []string {
	out := []string{}
	for _, r := range refs {
		if n := s.roleName(scope, r); !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return sorted(out)
}

// roleRef returns what names a role in a request: its UUID when known
// (Mistral's API takes no names there), else its name.
func (s *server) roleRef(scope, name string) string {
	return cmp.Or(s.roles[scope].id[name], s.customRoleID[name], name)
}

// call sends one request with a JSON body and decodes a JSON answer into
// out, when out is not nil.
func (s *server) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = b
	}
	raw, err := s.api.Send(ctx, method, path, nil, nil, body)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: unexpected answer: %v", method, path, err)
	}
	return nil
}

// Export reads the Organization's configuration through the Admin API.
func Export(ctx context.Context, api *client.Admin) (*File, error) {
	s, err := read(ctx, api)
	if err != nil {
		return nil, err
	}
	return &s.file, nil
}

// read reads the server: the file Export writes of it, and the IDs behind
// its names. Against a server without Steward's extensions the file leaves
// out what only they serve.
func read(ctx context.Context, api *client.Admin) (*server, error) {
	s := &server{api: api, memberID: map[string]string{}, memberEmail: map[string]string{},
		workspaceID: map[string]string{}, groupID: map[string]string{}, groupName: map[string]string{},
		customRoleID: map[string]string{}, keyName: map[string]string{}, webhookID: map[string]string{}, roles: map[string]*roleNames{}}
	s.file.Version = Version

	var org struct {
		TimeZone string `json:"time_zone"`
	}
	switch err := s.call(ctx, http.MethodGet, "/v1/admin/organization", nil, &org); {
	case err == nil:
		s.steward = true
		s.file.Organization = &Organization{TimeZone: org.TimeZone}
	case errors.Is(err, client.ErrNotServed):
	default:
		return nil, err
	}

	type roleOut struct {
		UUID, Name   string
		IsCustomRole bool `json:"is_custom_role"`
	}
	var roles struct {
		Organization []roleOut `json:"organization_roles"`
		Workspace    []roleOut `json:"workspace_roles"`
	}
	if err := s.call(ctx, http.MethodGet, "/v1/admin/roles", nil, &roles); err != nil {
		return nil, err
	}
	for scope, list := range map[string][]roleOut{scopeOrganization: roles.Organization, scopeWorkspace: roles.Workspace} {
		names := &roleNames{name: map[string]string{}, id: map[string]string{}, builtin: map[string]bool{}}
		for _, r := range list {
			names.name[r.UUID], names.id[r.Name], names.builtin[r.Name] = r.Name, r.UUID, !r.IsCustomRole
		}
		s.roles[scope] = names
	}

	type member struct {
		id, email string
		rawRoles  []string
	}
	var members []member
	for m, err := range api.Members(ctx, "") {
		if err != nil {
			return nil, err
		}
		if m.Email == nil {
			continue
		}
		id := m.Uuid.String()
		s.memberID[strings.ToLower(*m.Email)] = id
		s.memberEmail[id] = *m.Email
		var raw []string
		if b, err := m.RawRoles.MarshalJSON(); err == nil {
			_ = json.Unmarshal(b, &raw)
		}
		if s.adminID == "" && slices.Contains(s.roleNames(scopeOrganization, raw), "organization_admin") {
			s.adminID = id
		}
		members = append(members, member{id: id, email: *m.Email, rawRoles: raw})
	}

	var rate rateLimitJSON
	if err := s.call(ctx, http.MethodGet, "/v1/admin/rate-limit", nil, &rate); err != nil {
		return nil, err
	}
	s.file.RateLimit = rate.file()

	var spend struct {
		Limits struct {
			Completion struct {
				NoMonthlyLimit *bool    `json:"no_monthly_limit"`
				UsageLimit     *float64 `json:"usage_limit"`
			} `json:"completion"`
		} `json:"limits"`
	}
	if err := s.call(ctx, http.MethodGet, "/v1/admin/spend-limit", nil, &spend); err != nil {
		return nil, err
	}
	s.file.SpendLimit = &SpendLimit{}
	if c := spend.Limits.Completion; c.UsageLimit != nil && (c.NoMonthlyLimit == nil || !*c.NoMonthlyLimit) {
		s.file.SpendLimit.Amount = new(int64(*c.UsageLimit))
	}

	if s.steward {
		var policy KeyPolicy
		if err := s.callPolicy(ctx, "/v1/admin/api-key-policy", &policy); err != nil {
			return nil, err
		}
		s.file.KeyPolicy = &policy
		var list struct {
			Items []struct {
				UUID        string   `json:"uuid"`
				Name        string   `json:"name"`
				Description string   `json:"description"`
				Scope       string   `json:"scope"`
				Permissions []string `json:"permissions"`
			} `json:"items"`
		}
		if err := s.call(ctx, http.MethodGet, "/v1/admin/custom-roles", nil, &list); err != nil {
			return nil, err
		}
		roles := []CustomRole{}
		for _, r := range list.Items {
			s.customRoleID[r.Name] = r.UUID
			roles = append(roles, CustomRole{Name: r.Name, Description: r.Description, Scope: r.Scope, Permissions: sorted(r.Permissions)})
		}
		s.file.CustomRoles = &roles
	}

	workspaces := []Workspace{}
	for w, err := range api.Workspaces(ctx, false) {
		if err != nil {
			return nil, err
		}
		id := w.Uuid.String()
		s.workspaceID[w.Name] = id
		ws := Workspace{Name: w.Name, Description: deref(w.Description), Icon: deref(w.Icon)}
		if w.SpendLimit != nil || s.steward {
			ws.SpendLimit = &SpendLimit{}
		}
		if w.SpendLimit != nil {
			if w.SpendLimit.Value != nil && (w.SpendLimit.NoMonthlyLimit == nil || !*w.SpendLimit.NoMonthlyLimit) {
				ws.SpendLimit.Amount = new(int64(*w.SpendLimit.Value))
			}
		}
		if s.steward {
			var rate rateLimitJSON
			if err := s.call(ctx, http.MethodGet, "/v1/admin/workspaces/"+url.PathEscape(id)+"/rate-limit", nil, &rate); err != nil {
				return nil, err
			}
			ws.RateLimit = rate.file()
			var policy KeyPolicy
			if err := s.callPolicy(ctx, "/v1/admin/workspaces/"+url.PathEscape(id)+"/api-key-policy", &policy); err != nil {
				return nil, err
			}
			ws.KeyPolicy = &policy
			if ws.ModelAccess, err = s.callModels(ctx, "/v1/admin/workspaces/"+url.PathEscape(id)+"/allowed-models"); err != nil {
				return nil, err
			}
		}
		workspaces = append(workspaces, ws)
	}
	s.file.Workspaces = &workspaces

	if s.steward {
		list := []APIKey{}
		for k, err := range api.APIKeys(ctx, "") {
			if err != nil {
				return nil, err
			}
			id := k.KeyId.String()
			s.keyName[id] = cmp.Or(deref(k.Name), k.HiddenKey)
			own, err := s.callModels(ctx, "/v1/admin/api-keys/"+url.PathEscape(id)+"/allowed-models")
			if err != nil {
				return nil, err
			}
			if own.AllowedModels != nil {
				list = append(list, APIKey{ID: id, Name: deref(k.Name), ModelAccess: own})
			}
		}
		slices.SortFunc(list, func(a, b APIKey) int { return cmp.Compare(a.ID, b.ID) })
		s.file.APIKeys = &list
	}

	if s.steward {
		hooks, err := s.webhooks(ctx)
		if err != nil {
			return nil, err
		}
		s.file.Webhooks = &hooks
	}

	s.file.Members = &[]Member{}
	for _, m := range members {
		fm := Member{Email: m.email, Roles: s.roleNames(scopeOrganization, m.rawRoles)}
		// Mistral's member objects name built-in roles only, and the
		// Workspace roles they list include those given through groups;
		// Steward's extensions tell every role a member holds and why.
		if s.steward {
			if err := s.memberRoles(ctx, m.id, &fm); err != nil {
				return nil, err
			}
		}
		*s.file.Members = append(*s.file.Members, fm)
	}

	groups := []Group{}
	for g, err := range api.UserGroups(ctx) {
		if err != nil {
			return nil, err
		}
		// A group an identity provider keeps is changed there, not here.
		if g.ExternallyManaged != nil && *g.ExternallyManaged {
			continue
		}
		id := g.Uuid.String()
		s.groupID[g.Name] = id
		s.groupName[id] = g.Name
		grp := Group{Name: g.Name, Description: deref(g.Description)}
		if g.OrganizationRole != nil {
			grp.OrganizationRole = s.roleName(scopeOrganization, *g.OrganizationRole)
		}
		for m, err := range api.UserGroupMembers(ctx, g.Uuid) {
			if err != nil {
				return nil, err
			}
			if m.Email != nil {
				grp.Members = append(grp.Members, *m.Email)
			}
		}
		grp.Members = sorted(grp.Members)
		var nested struct {
			Children []struct{ UUID, Name string } `json:"children"`
		}
		if err := s.call(ctx, http.MethodGet, "/v1/admin/user-groups/"+url.PathEscape(id)+"/nested", nil, &nested); err != nil {
			return nil, err
		}
		for _, c := range nested.Children {
			grp.Nested = append(grp.Nested, c.Name)
		}
		grp.Nested = sorted(grp.Nested)
		for a, err := range api.UserGroupWorkspaces(ctx, g.Uuid) {
			if err != nil {
				return nil, err
			}
			if grp.Workspaces == nil {
				grp.Workspaces = map[string][]string{}
			}
			var roles []string
			for _, r := range a.Roles {
				roles = append(roles, r.Name)
			}
			grp.Workspaces[a.WorkspaceName] = sorted(roles)
		}
		groups = append(groups, grp)
	}
	s.file.Groups = &groups
	return s, nil
}

// memberRoles reads a member's own roles into m: their Organization roles,
// custom ones included, and the Workspace roles given to them directly in
// each Workspace the file can name (not an archived one).
func (s *server) memberRoles(ctx context.Context, id string, m *Member) error {
	type role struct{ Name string }
	type source struct {
		Kind string `json:"kind"`
	}
	var roles struct {
		Organization []role `json:"organization_roles"`
		Workspaces   []struct {
			UUID string `json:"workspace_uuid"`
			Name string `json:"name"`
		} `json:"workspaces"`
	}
	base := "/v1/admin/users/" + url.PathEscape(id)
	if err := s.call(ctx, http.MethodGet, base+"/roles", nil, &roles); err != nil {
		return err
	}
	m.Roles = nil
	for _, r := range roles.Organization {
		m.Roles = append(m.Roles, r.Name)
	}
	m.Roles = sorted(m.Roles)
	direct := map[string][]string{}
	for _, ws := range roles.Workspaces {
		if s.workspaceID[ws.Name] != ws.UUID {
			continue
		}
		var access struct {
			Roles []struct {
				Role    role     `json:"role"`
				Sources []source `json:"sources"`
			} `json:"workspace_roles"`
		}
		if err := s.call(ctx, http.MethodGet, base+"/access/"+url.PathEscape(ws.UUID), nil, &access); err != nil {
			return err
		}
		for _, r := range access.Roles {
			if slices.Contains(r.Sources, source{Kind: "direct"}) {
				direct[ws.Name] = append(direct[ws.Name], r.Role.Name)
			}
		}
		if direct[ws.Name] != nil {
			direct[ws.Name] = sorted(direct[ws.Name])
		}
	}
	m.Workspaces = &direct
	return nil
}

// webhooks reads the Organization's webhook endpoints, oldest first,
// without their secrets, which no answer but the one creating or rotating
// them carries.
func (s *server) webhooks(ctx context.Context) ([]Webhook, error) {
	out := []Webhook{}
	for page := 1; ; page++ {
		raw, err := s.api.Send(ctx, http.MethodGet, "/v1/admin/webhooks", url.Values{"page": {fmt.Sprint(page)}, "page_size": {"100"}}, nil, nil)
		if err != nil {
			return nil, err
		}
		var list struct {
			Items []struct {
				ID          string   `json:"id"`
				URL         string   `json:"url"`
				Description string   `json:"description"`
				Events      []string `json:"events"`
				Enabled     bool     `json:"enabled"`
			} `json:"items"`
		}
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, fmt.Errorf("GET /v1/admin/webhooks: unexpected answer: %v", err)
		}
		for _, w := range list.Items {
			s.webhookID[w.URL] = w.ID
			out = append(out, Webhook{URL: w.URL, Description: w.Description, Events: w.Events, Enabled: new(w.Enabled)})
		}
		if len(list.Items) < 100 {
			return out, nil
		}
	}
}

// callPolicy reads an API-key expiration policy.
func (s *server) callPolicy(ctx context.Context, path string, p *KeyPolicy) error {
	var out struct {
		MaxExpirationDays *int `json:"max_expiration_days"`
	}
	if err := s.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return err
	}
	p.MaxExpirationDays = out.MaxExpirationDays
	return nil
}

// callModels reads an allow list of models: a Workspace's, or a key's own.
func (s *server) callModels(ctx context.Context, path string) (*ModelAccess, error) {
	var out struct {
		AllowedModels *[]string `json:"allowed_models"`
	}
	if err := s.call(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, err
	}
	if out.AllowedModels != nil {
		sortedNames := sorted(*out.AllowedModels)
		out.AllowedModels = &sortedNames
	}
	return &ModelAccess{AllowedModels: out.AllowedModels}, nil
}

// rateLimitJSON is a rate limit as the Admin API reads and writes it.
type rateLimitJSON struct {
	RequestsPerSecond   *int           `json:"requests_per_second"`
	TokensLimitsByModel map[string]any `json:"tokens_limits_by_model"`
}

func (r rateLimitJSON) file() *RateLimit {
	out := &RateLimit{TokensLimitsByModel: r.TokensLimitsByModel}
	if r.RequestsPerSecond != nil {
		out.RequestsPerSecond = *r.RequestsPerSecond
	}
	if len(out.TokensLimitsByModel) == 0 {
		out.TokensLimitsByModel = nil
	}
	return out
}

// deref returns what p points at, or the zero value when p is nil.
func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}
