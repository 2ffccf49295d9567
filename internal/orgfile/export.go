package orgfile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
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
	orgRoleName  map[string]string // UUID -> name
	adminID      string            // an organization_admin, for new Workspaces
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

// notServed tells whether err is the 404 of a route the server does not
// have, rather than of an object it does not have.
func notServed(err error) bool {
	var e *client.APIError
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound && e.Type != "not_found_error"
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
		customRoleID: map[string]string{}, orgRoleName: map[string]string{}}
	s.file.Version = Version

	var org struct {
		TimeZone string `json:"time_zone"`
	}
	switch err := s.call(ctx, http.MethodGet, "/v1/admin/organization", nil, &org); {
	case err == nil:
		s.steward = true
		s.file.Organization = &Organization{TimeZone: org.TimeZone}
	case notServed(err):
	default:
		return nil, err
	}

	var roles struct {
		Organization []struct{ UUID, Name string } `json:"organization_roles"`
	}
	if err := s.call(ctx, http.MethodGet, "/v1/admin/roles", nil, &roles); err != nil {
		return nil, err
	}
	adminRole := ""
	for _, r := range roles.Organization {
		s.orgRoleName[r.UUID] = r.Name
		if r.Name == "organization_admin" {
			adminRole = r.UUID
		}
	}

	members := []Member{}
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
		var names []string
		for _, r := range raw {
			if r == adminRole && s.adminID == "" {
				s.adminID = id
			}
			names = append(names, cmpOr(s.orgRoleName[r], r))
		}
		members = append(members, Member{Email: *m.Email, Roles: sorted(names)})
	}
	s.file.Members = &members

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
		s.file.SpendLimit.Amount = ptr(int64(*c.UsageLimit))
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
				ws.SpendLimit.Amount = ptr(int64(*w.SpendLimit.Value))
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
		}
		workspaces = append(workspaces, ws)
	}
	s.file.Workspaces = &workspaces

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

func ptr[T any](v T) *T { return &v }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
