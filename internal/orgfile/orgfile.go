// Package orgfile is an Organization's configuration as a file: Export
// reads it through the Admin API, Plan compares a file with the server and
// lists the changes that would make the server match, and Apply makes them,
// in order, stopping at the first refusal. Everything goes through the
// client package, so the same code runs against Steward and, for the parts
// it serves, against Mistral's Admin API.
package orgfile

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Version is the version of the file format Export writes and Read takes.
const Version = 1

// File is an Organization's configuration. A nil section is not managed:
// Plan leaves that part of the server as it is.
type File struct {
	Version int `yaml:"version"`
	// Organization, KeyPolicy, CustomRoles, APIKeys, Webhooks, the change
	// of RateLimit and the limits, policies and allow lists of Workspaces
	// are Steward extensions.
	Organization *Organization `yaml:"organization,omitempty"`
	RateLimit    *RateLimit    `yaml:"rate_limit,omitempty"`
	SpendLimit   *SpendLimit   `yaml:"spend_limit,omitempty"`
	KeyPolicy    *KeyPolicy    `yaml:"key_policy,omitempty"`
	CustomRoles  *[]CustomRole `yaml:"custom_roles,omitempty"`
	Workspaces   *[]Workspace  `yaml:"workspaces,omitempty"`
	Groups       *[]Group      `yaml:"groups,omitempty"`
	Members      *[]Member     `yaml:"members,omitempty"`
	APIKeys      *[]APIKey     `yaml:"api_keys,omitempty"`
	Webhooks     *[]Webhook    `yaml:"webhooks,omitempty"`
}

// Organization holds the Organization's own settings.
type Organization struct {
	TimeZone string `yaml:"time_zone"`
}

// RateLimit is a rate limit: requests per second (0: none) and token
// limits by model, as the Admin API writes them.
type RateLimit struct {
	RequestsPerSecond   int            `yaml:"requests_per_second"`
	TokensLimitsByModel map[string]any `yaml:"tokens_limits_by_model,omitempty"`
}

// SpendLimit is a monthly spending cap in whole units of the billing
// currency; no amount means no cap.
type SpendLimit struct {
	Amount *int64 `yaml:"amount"`
}

// KeyPolicy is an API-key expiration policy; no days means none.
type KeyPolicy struct {
	MaxExpirationDays *int `yaml:"max_expiration_days"`
}

// ModelAccess is an allow list of models: no AllowedModels (null) allows
// every model the server serves, an empty list none.
type ModelAccess struct {
	AllowedModels *[]string `yaml:"allowed_models"`
}

// APIKey is a Workspace API key's own allow list of models. Keys are found
// by ID, and a file neither creates nor deletes them: the section lists the
// keys whose list it manages (export lists those that have one). Name is
// the key's name, for the reader.
type APIKey struct {
	ID          string       `yaml:"id"`
	Name        string       `yaml:"name,omitempty"`
	ModelAccess *ModelAccess `yaml:"model_access,omitempty"`
}

// Webhook is a webhook endpoint, found by its URL. Its signing secret is
// never in the file: an endpoint the file creates gets one that nobody has
// seen, and `steward webhooks rotate-secret ID` gives a new one, shown
// once. Enabled is true when left out.
type Webhook struct {
	URL         string   `yaml:"url"`
	Description string   `yaml:"description,omitempty"`
	Events      []string `yaml:"events"`
	Enabled     *bool    `yaml:"enabled,omitempty"`
}

// enabled tells whether the file wants the endpoint to receive events.
func (w Webhook) enabled() bool { return w.Enabled == nil || *w.Enabled }

// CustomRole is a role defined by the Organization.
type CustomRole struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description,omitempty"`
	Scope       string   `yaml:"scope"`
	Permissions []string `yaml:"permissions"`
}

// Workspace is a Workspace, found by its name. Admin is the member who
// administers it when it is created (default: an organization_admin).
type Workspace struct {
	Name        string      `yaml:"name"`
	Description string      `yaml:"description,omitempty"`
	Icon        string      `yaml:"icon,omitempty"`
	Admin       string      `yaml:"admin,omitempty"`
	RateLimit   *RateLimit  `yaml:"rate_limit,omitempty"`
	SpendLimit  *SpendLimit `yaml:"spend_limit,omitempty"`
	KeyPolicy   *KeyPolicy  `yaml:"key_policy,omitempty"`
	// ModelAccess is the allow list of models of the Workspace's keys.
	ModelAccess *ModelAccess `yaml:"model_access,omitempty"`
}

// Group is a user group, found by its name: its members by email, the
// groups nested in it by name, the Organization role it gives its members,
// and its Workspace roles by Workspace name.
type Group struct {
	Name             string              `yaml:"name"`
	Description      string              `yaml:"description,omitempty"`
	OrganizationRole string              `yaml:"organization_role,omitempty"`
	Members          []string            `yaml:"members,omitempty"`
	Nested           []string            `yaml:"nested,omitempty"`
	Workspaces       map[string][]string `yaml:"workspaces,omitempty"`
}

// Member is a member's own roles, found by email: their Organization roles
// and, by Workspace name, the Workspace roles given to them directly (not
// through a group). Roles are built-in or custom, by name, letter or UUID.
// Members join by invitation or SCIM: a file changes their roles only.
type Member struct {
	Email string   `yaml:"email"`
	Roles []string `yaml:"roles"`
	// Workspaces is nil when the file leaves the member's Workspaces as
	// they are; reading them is a Steward extension.
	Workspaces *map[string][]string `yaml:"workspaces,omitempty"`
}

// Read reads a file and checks what no server is needed for: the version,
// names present and not repeated.
func Read(r io.Reader) (*File, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var f File
	if err := dec.Decode(&f); err != nil {
		if err == io.EOF {
			return nil, fmt.Errorf("the file is empty")
		}
		return nil, err
	}
	if f.Version != Version {
		return nil, fmt.Errorf("version: %d is not a version of the file format this steward reads (%d)", f.Version, Version)
	}
	var problems []string
	check := func(kind string, names []string) {
		what := map[string]string{"api_keys": "id", "webhooks": "url"}[kind]
		if what == "" {
			what = "name"
		}
		seen := map[string]bool{}
		for _, n := range names {
			switch {
			case strings.TrimSpace(n) == "":
				problems = append(problems, kind+": an entry has no "+what)
			case seen[n]:
				problems = append(problems, fmt.Sprintf("%s: %q is listed twice", kind, n))
			}
			seen[n] = true
		}
	}
	if f.CustomRoles != nil {
		check("custom_roles", names(*f.CustomRoles, func(r CustomRole) string { return r.Name }))
	}
	if f.Workspaces != nil {
		check("workspaces", names(*f.Workspaces, func(w Workspace) string { return w.Name }))
	}
	if f.Groups != nil {
		check("groups", names(*f.Groups, func(g Group) string { return g.Name }))
	}
	if f.Members != nil {
		check("members", names(*f.Members, func(m Member) string { return strings.ToLower(m.Email) }))
	}
	if f.APIKeys != nil {
		check("api_keys", names(*f.APIKeys, func(k APIKey) string { return strings.ToLower(k.ID) }))
	}
	if f.Webhooks != nil {
		check("webhooks", names(*f.Webhooks, func(w Webhook) string { return w.URL }))
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return &f, nil
}

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

// Write writes f as YAML, with a heading comment.
func Write(w io.Writer, f *File, heading string) error {
	var buf bytes.Buffer
	for _, line := range strings.Split(heading, "\n") {
		buf.WriteString("# " + line + "\n")
	}
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(f); err != nil {
		return err
	}
	if err := enc.Close(); err != nil {
		return err
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// sorted returns a sorted copy of s, so that lists compare and print in
// one order whatever order the file or the server gives.
func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
