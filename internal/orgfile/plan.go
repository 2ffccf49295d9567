package orgfile

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"github.com/stewardhq/steward/client"
)

// Action is what a change does.
type Action string

const (
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
)

// Change is one change of a plan: an object to create, update or delete,
// with a line for each field that changes.
type Change struct {
	Action  Action
	Kind    string
	Name    string
	Details []string
	// Unsupported marks a change of a part only Steward serves, against a
	// server that does not: it is reported, not made.
	Unsupported bool
	// Kept marks an object the file does not list, kept because --prune
	// was not given.
	Kept bool
	do   func(ctx context.Context, s *server) error
}

// Pending tells whether Apply makes the change.
func (c Change) Pending() bool { return !c.Unsupported && !c.Kept }

func (c Change) String() string {
	return fmt.Sprintf("%s %s %q", c.Action, c.Kind, c.Name)
}

// Plan is the changes that make a server match a file, in the order Apply
// makes them.
type Plan struct {
	Changes []Change
	server  *server
}

// Pending counts the changes Apply would make.
func (p *Plan) Pending() int {
	n := 0
	for _, c := range p.Changes {
		if c.Pending() {
			n++
		}
	}
	return n
}

// Options change what a plan does.
type Options struct {
	// Prune deletes the Workspaces, groups, custom roles and webhook
	// endpoints that the file does not list, for each of those kinds the file has a section for,
	// and takes members out of the Workspaces their workspaces section
	// does not list.
	Prune bool
}

// NewPlan reads the server and compares it with f.
func NewPlan(ctx context.Context, api *client.Admin, f *File, opts Options) (*Plan, error) {
	s, err := read(ctx, api)
	if err != nil {
		return nil, err
	}
	p := &Plan{server: s}
	if err := p.compare(f, opts); err != nil {
		return nil, err
	}
	return p, nil
}

// add appends a change; one of a Steward extension against another server
// is marked unsupported.
func (p *Plan) add(c Change, extension bool) {
	if extension && !p.server.steward {
		c.Unsupported = true
	}
	p.Changes = append(p.Changes, c)
}

func (p *Plan) compare(f *File, opts Options) error {
	s := p.server
	cur := &s.file
	if f.Organization != nil && (cur.Organization == nil || *f.Organization != *cur.Organization) {
		from := ""
		if cur.Organization != nil {
			from = cur.Organization.TimeZone
		}
		want := *f.Organization
		p.add(Change{Action: Update, Kind: "organization", Name: "time zone", Details: []string{field("time_zone", from, want.TimeZone)},
			do: func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPatch, "/v1/admin/organization", map[string]string{"time_zone": want.TimeZone}, nil)
			}}, true)
	}
	if f.RateLimit != nil && !sameRate(f.RateLimit, cur.RateLimit) {
		want := *f.RateLimit
		p.add(Change{Action: Update, Kind: "rate limit", Name: "organization", Details: rateDetails(cur.RateLimit, &want),
			do: func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPut, "/v1/admin/rate-limit", rateBody(want), nil)
			}}, true)
	}
	if f.SpendLimit != nil && !sameSpend(f.SpendLimit, cur.SpendLimit) {
		want := *f.SpendLimit
		p.add(Change{Action: Update, Kind: "spend limit", Name: "organization", Details: []string{field("amount", amount(cur.SpendLimit), amount(&want))},
			do: func(ctx context.Context, s *server) error {
				body := map[string]any{"amount": 0, "no_monthly_limit": true}
				if want.Amount != nil {
					body = map[string]any{"amount": *want.Amount, "no_monthly_limit": false}
				}
				return s.call(ctx, http.MethodPost, "/v1/admin/spend-limit", body, nil)
			}}, false)
	}
	if f.KeyPolicy != nil && !samePolicy(f.KeyPolicy, cur.KeyPolicy) {
		want := *f.KeyPolicy
		p.add(Change{Action: Update, Kind: "key policy", Name: "organization", Details: []string{field("max_expiration_days", days(cur.KeyPolicy), days(&want))},
			do: func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPut, "/v1/admin/api-key-policy", map[string]any{"max_expiration_days": want.MaxExpirationDays}, nil)
			}}, true)
	}
	if f.CustomRoles != nil {
		p.compareCustomRoles(*f.CustomRoles, deref(cur.CustomRoles), opts)
	}
	if f.Workspaces != nil {
		if err := p.compareWorkspaces(*f.Workspaces, deref(cur.Workspaces), opts); err != nil {
			return err
		}
	}
	if f.Groups != nil {
		if err := p.compareGroups(*f.Groups, deref(cur.Groups), opts); err != nil {
			return err
		}
	}
	if f.Members != nil {
		if err := p.compareMembers(*f.Members, deref(cur.Members), f, opts); err != nil {
			return err
		}
	}
	if f.APIKeys != nil {
		if err := p.compareKeys(*f.APIKeys, deref(cur.APIKeys), opts); err != nil {
			return err
		}
	}
	if f.Webhooks != nil {
		if err := p.compareWebhooks(*f.Webhooks, deref(cur.Webhooks), opts); err != nil {
			return err
		}
	}
	// Deletions come last, so that nothing the file still uses is gone
	// before the rest is applied.
	slices.SortStableFunc(p.Changes, func(a, b Change) int {
		return boolInt(a.Action == Delete) - boolInt(b.Action == Delete)
	})
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *Plan) deletion(kind, name string, opts Options, extension bool, do func(ctx context.Context, s *server) error) {
	c := Change{Action: Delete, Kind: kind, Name: name, Kept: !opts.Prune, do: do}
	if c.Kept {
		c.Details = []string{"not in the file: kept (--prune deletes it)"}
	}
	p.add(c, extension)
}

func (p *Plan) compareCustomRoles(want, have []CustomRole, opts Options) {
	byName := map[string]CustomRole{}
	for _, r := range have {
		byName[r.Name] = r
	}
	for _, r := range want {
		r.Permissions = sorted(r.Permissions)
		old, ok := byName[r.Name]
		switch {
		case !ok:
			p.add(Change{Action: Create, Kind: "custom role", Name: r.Name, Details: []string{field("scope", "", r.Scope), field("permissions", "", strings.Join(r.Permissions, ", "))},
				do: func(ctx context.Context, s *server) error {
					var out struct{ UUID string }
					if err := s.call(ctx, http.MethodPost, "/v1/admin/custom-roles", map[string]any{"name": r.Name, "description": r.Description, "scope": r.Scope, "permissions": r.Permissions}, &out); err != nil {
						return err
					}
					s.customRoleID[r.Name] = out.UUID
					return nil
				}}, true)
		case old.Scope != r.Scope:
			p.add(Change{Action: Update, Kind: "custom role", Name: r.Name, Details: []string{field("scope", old.Scope, r.Scope) + " (a role's scope cannot change: delete it, or give the new one another name)"},
				do: func(context.Context, *server) error {
					return fmt.Errorf("custom role %q: the scope of a role cannot change", r.Name)
				}}, true)
		case old.Description != r.Description || !slices.Equal(old.Permissions, r.Permissions):
			var details []string
			if old.Description != r.Description {
				details = append(details, field("description", old.Description, r.Description))
			}
			if !slices.Equal(old.Permissions, r.Permissions) {
				details = append(details, field("permissions", strings.Join(old.Permissions, ", "), strings.Join(r.Permissions, ", ")))
			}
			p.add(Change{Action: Update, Kind: "custom role", Name: r.Name, Details: details,
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPatch, "/v1/admin/custom-roles/"+url.PathEscape(s.customRoleID[r.Name]), map[string]any{"description": r.Description, "permissions": r.Permissions}, nil)
				}}, true)
		}
	}
	for _, r := range have {
		if !slices.ContainsFunc(want, func(w CustomRole) bool { return w.Name == r.Name }) {
			p.deletion("custom role", r.Name, opts, true, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodDelete, "/v1/admin/custom-roles/"+url.PathEscape(s.customRoleID[r.Name]), nil, nil)
			})
		}
	}
}

func (p *Plan) compareWorkspaces(want, have []Workspace, opts Options) error {
	byName := map[string]Workspace{}
	for _, w := range have {
		byName[w.Name] = w
	}
	for _, w := range want {
		old, ok := byName[w.Name]
		if !ok {
			admin := p.server.adminID
			if w.Admin != "" {
				if admin = p.server.memberID[strings.ToLower(w.Admin)]; admin == "" {
					return fmt.Errorf("workspace %q: admin %s is not a member of the Organization", w.Name, w.Admin)
				}
			}
			details := []string{}
			if w.Description != "" {
				details = append(details, field("description", "", w.Description))
			}
			p.add(Change{Action: Create, Kind: "workspace", Name: w.Name, Details: details,
				do: func(ctx context.Context, s *server) error {
					var out struct{ UUID string }
					body := map[string]any{"name": w.Name, "admin_user_id": admin}
					if w.Description != "" {
						body["description"] = w.Description
					}
					if w.Icon != "" {
						body["icon"] = w.Icon
					}
					if err := s.call(ctx, http.MethodPost, "/v1/admin/workspaces", body, &out); err != nil {
						return err
					}
					s.workspaceID[w.Name] = out.UUID
					return nil
				}}, false)
		} else if old.Description != w.Description || old.Icon != w.Icon {
			var details []string
			if old.Description != w.Description {
				details = append(details, field("description", old.Description, w.Description))
			}
			if old.Icon != w.Icon {
				details = append(details, field("icon", old.Icon, w.Icon))
			}
			p.add(Change{Action: Update, Kind: "workspace", Name: w.Name, Details: details,
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPatch, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[w.Name]), map[string]string{"description": w.Description, "icon": w.Icon}, nil)
				}}, false)
		}
		name := w.Name
		if w.RateLimit != nil && !sameRate(w.RateLimit, old.RateLimit) {
			want := *w.RateLimit
			p.add(Change{Action: Update, Kind: "rate limit", Name: "workspace " + name, Details: rateDetails(old.RateLimit, &want),
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPut, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[name])+"/rate-limit", rateBody(want), nil)
				}}, true)
		}
		if w.SpendLimit != nil && !sameSpend(w.SpendLimit, old.SpendLimit) {
			want := *w.SpendLimit
			p.add(Change{Action: Update, Kind: "spend limit", Name: "workspace " + name, Details: []string{field("amount", amount(old.SpendLimit), amount(&want))},
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPut, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[name])+"/spend-limit", map[string]any{"amount": want.Amount}, nil)
				}}, true)
		}
		if w.KeyPolicy != nil && !samePolicy(w.KeyPolicy, old.KeyPolicy) {
			want := *w.KeyPolicy
			p.add(Change{Action: Update, Kind: "key policy", Name: "workspace " + name, Details: []string{field("max_expiration_days", days(old.KeyPolicy), days(&want))},
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPut, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[name])+"/api-key-policy", map[string]any{"max_expiration_days": want.MaxExpirationDays}, nil)
				}}, true)
		}
		if w.ModelAccess != nil && !sameModels(w.ModelAccess, old.ModelAccess) {
			want := *w.ModelAccess
			p.add(Change{Action: Update, Kind: "allowed models", Name: "workspace " + name, Details: []string{modelsDetail(old.ModelAccess, &want)},
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPut, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[name])+"/allowed-models", map[string]any{"allowed_models": want.AllowedModels}, nil)
				}}, true)
		}
	}
	for _, w := range have {
		if !slices.ContainsFunc(want, func(x Workspace) bool { return x.Name == w.Name }) {
			p.deletion("workspace", w.Name, opts, false, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodDelete, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[w.Name]), nil, nil)
			})
		}
	}
	return nil
}

func (p *Plan) compareGroups(want, have []Group, opts Options) error {
	s := p.server
	byName := map[string]Group{}
	for _, g := range have {
		byName[g.Name] = g
	}
	known := map[string]bool{}
	for _, g := range want {
		known[g.Name] = true
	}
	for _, g := range have {
		if opts.Prune || slices.ContainsFunc(want, func(x Group) bool { return x.Name == g.Name }) {
			continue
		}
		known[g.Name] = true
	}
	var nesting []Change
	for _, g := range want {
		for _, e := range g.Members {
			if s.memberID[strings.ToLower(e)] == "" {
				return fmt.Errorf("group %q: %s is not a member of the Organization (members join by invitation or SCIM)", g.Name, e)
			}
		}
		for _, n := range g.Nested {
			if !known[n] {
				return fmt.Errorf("group %q: nested group %q is not in the file", g.Name, n)
			}
		}
		old, exists := byName[g.Name]
		var details []string
		if !exists || old.Description != g.Description {
			details = append(details, field("description", old.Description, g.Description))
		}
		add, remove := diff(lower(old.Members), lower(g.Members))
		for _, e := range add {
			details = append(details, "+ member "+e)
		}
		for _, e := range remove {
			details = append(details, "- member "+e)
		}
		wsOps, wsDetails := p.groupWorkspaces(g, old.Workspaces)
		details = append(details, wsDetails...)
		orgRole := ""
		if g.OrganizationRole != "" {
			orgRole = s.roleName(scopeOrganization, g.OrganizationRole)
		}
		if orgRole != old.OrganizationRole {
			d := field("organization_role", old.OrganizationRole, orgRole)
			if orgRole == "" {
				d += " (the Admin API cannot take a group's Organization role away: give it another, or delete the group)"
			}
			details = append(details, d)
		}
		if !exists && g.Description == "" {
			details = details[1:]
		}
		if exists && len(details) == 0 {
			continue
		}
		action := Update
		if !exists {
			action = Create
		}
		p.add(Change{Action: action, Kind: "group", Name: g.Name, Details: details,
			do: func(ctx context.Context, s *server) error {
				if !exists {
					var out struct{ UUID string }
					body := map[string]any{"name": g.Name}
					if g.Description != "" {
						body["description"] = g.Description
					}
					if err := s.call(ctx, http.MethodPost, "/v1/admin/user-groups", body, &out); err != nil {
						return err
					}
					s.groupID[g.Name] = out.UUID
				} else if old.Description != g.Description {
					if err := s.call(ctx, http.MethodPatch, "/v1/admin/user-groups/"+url.PathEscape(s.groupID[g.Name]), map[string]string{"description": g.Description}, nil); err != nil {
						return err
					}
				}
				path := "/v1/admin/user-groups/" + url.PathEscape(s.groupID[g.Name]) + "/members"
				if len(add) > 0 {
					if err := s.call(ctx, http.MethodPost, path, map[string]any{"user_uuids": s.userIDs(add)}, nil); err != nil {
						return err
					}
				}
				if len(remove) > 0 {
					if err := s.call(ctx, http.MethodDelete, path, map[string]any{"user_uuids": s.userIDs(remove)}, nil); err != nil {
						return err
					}
				}
				for _, op := range wsOps {
					if err := op(ctx, s); err != nil {
						return err
					}
				}
				switch {
				case orgRole == old.OrganizationRole:
				case orgRole == "":
					return fmt.Errorf("group %q: the Admin API cannot take a group's Organization role away", g.Name)
				default:
					return s.call(ctx, http.MethodPatch, "/v1/admin/user-groups/"+url.PathEscape(s.groupID[g.Name])+"/organization-role",
						map[string]string{"organization_role": s.roleRef(scopeOrganization, orgRole)}, nil)
				}
				return nil
			}}, false)
	}
	for _, g := range want {
		old := byName[g.Name]
		if slices.Equal(sorted(old.Nested), sorted(g.Nested)) {
			continue
		}
		nested := sorted(g.Nested)
		nesting = append(nesting, Change{Action: Update, Kind: "group", Name: g.Name,
			Details: []string{field("nested", strings.Join(old.Nested, ", "), strings.Join(nested, ", "))},
			do: func(ctx context.Context, s *server) error {
				ids := []string{}
				for _, n := range nested {
					ids = append(ids, s.groupID[n])
				}
				return s.call(ctx, http.MethodPatch, "/v1/admin/user-groups/"+url.PathEscape(s.groupID[g.Name])+"/nested", map[string]any{"child_group_uuids": ids}, nil)
			}})
	}
	for _, c := range nesting {
		p.add(c, false)
	}
	for _, g := range have {
		if !slices.ContainsFunc(want, func(x Group) bool { return x.Name == g.Name }) {
			p.deletion("group", g.Name, opts, false, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodDelete, "/v1/admin/user-groups/"+url.PathEscape(s.groupID[g.Name]), nil, nil)
			})
		}
	}
	return nil
}

// groupWorkspaces returns the requests that give a group the Workspace
// roles of want, from those of have, and a line for each.
func (p *Plan) groupWorkspaces(g Group, have map[string][]string) ([]func(context.Context, *server) error, []string) {
	var ops []func(context.Context, *server) error
	var details []string
	names := make([]string, 0, len(g.Workspaces)+len(have))
	for n := range g.Workspaces {
		names = append(names, n)
	}
	for n := range have {
		if _, ok := g.Workspaces[n]; !ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, ws := range names {
		roles, wanted := g.Workspaces[ws]
		roles = sorted(roles)
		old, had := have[ws]
		base := func(s *server) string {
			return "/v1/admin/user-groups/" + url.PathEscape(s.groupID[g.Name]) + "/workspaces"
		}
		switch {
		case wanted && !had:
			details = append(details, fmt.Sprintf("+ workspace %s: %s", ws, strings.Join(roles, ", ")))
			ops = append(ops, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPost, base(s), map[string]any{"workspace_uuid": s.workspaceID[ws], "role_names": roles}, nil)
			})
		case !wanted && had:
			details = append(details, "- workspace "+ws)
			ops = append(ops, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodDelete, base(s)+"/"+url.PathEscape(s.workspaceID[ws]), nil, nil)
			})
		case !slices.Equal(old, roles):
			details = append(details, fmt.Sprintf("~ workspace %s: %s -> %s", ws, strings.Join(old, ", "), strings.Join(roles, ", ")))
			ops = append(ops, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPatch, base(s)+"/"+url.PathEscape(s.workspaceID[ws]), map[string]any{"role_names": roles}, nil)
			})
		}
	}
	return ops, details
}

func (p *Plan) compareMembers(want, have []Member, f *File, opts Options) error {
	s := p.server
	byEmail := map[string]Member{}
	for _, m := range have {
		byEmail[strings.ToLower(m.Email)] = m
	}
	inFile := func(ws string) bool {
		return f.Workspaces != nil && slices.ContainsFunc(*f.Workspaces, func(w Workspace) bool { return w.Name == ws })
	}
	// A Workspace that --prune deletes takes its members with it; removing
	// them first would be refused.
	pruned := func(ws string) bool { return opts.Prune && f.Workspaces != nil && !inFile(ws) }
	custom := func(role string) bool { return !s.builtin(role) }
	for _, m := range want {
		old, ok := byEmail[strings.ToLower(m.Email)]
		if !ok {
			return fmt.Errorf("members: %s is not a member of the Organization (members join by invitation or SCIM)", m.Email)
		}
		email := m.Email
		roles := s.roleNames(scopeOrganization, m.Roles)
		// A member holds a built-in Organization role: the server adds
		// member to custom roles alone.
		if len(roles) > 0 && !slices.ContainsFunc(roles, s.builtin) {
			roles = sorted(append(roles, "member"))
		}
		if !slices.Equal(old.Roles, roles) {
			p.add(Change{Action: Update, Kind: "member", Name: email, Details: []string{field("roles", strings.Join(old.Roles, ", "), strings.Join(roles, ", "))},
				do: func(ctx context.Context, s *server) error {
					return s.call(ctx, http.MethodPatch, "/v1/admin/users/"+url.PathEscape(s.memberID[strings.ToLower(email)]), map[string]any{"role_names": roles}, nil)
				}}, slices.ContainsFunc(roles, custom))
		}
		if m.Workspaces == nil {
			continue
		}
		var had map[string][]string
		if old.Workspaces != nil {
			had = *old.Workspaces
		}
		for _, ws := range sortedKeys(*m.Workspaces, had) {
			roles, wanted := (*m.Workspaces)[ws]
			roles = s.roleNames(scopeWorkspace, roles)
			current, exists := had[ws]
			name := email + " in " + ws
			switch {
			case wanted && s.workspaceID[ws] == "" && !inFile(ws):
				return fmt.Errorf("member %s: Workspace %q is neither in the file nor on the server", email, ws)
			case wanted && len(roles) == 0:
				return fmt.Errorf("member %s: Workspace %q: give at least one role, or leave the Workspace out", email, ws)
			case wanted && !slices.Equal(current, roles):
				action := Update
				if !exists {
					action = Create
				}
				p.add(Change{Action: action, Kind: "workspace member", Name: name, Details: []string{field("roles", strings.Join(current, ", "), strings.Join(roles, ", "))},
					do: func(ctx context.Context, s *server) error {
						refs := make([]string, len(roles))
						for i, r := range roles {
							refs[i] = s.roleRef(scopeWorkspace, r)
						}
						return s.call(ctx, http.MethodPatch, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[ws])+"/users",
							map[string]any{"members": []map[string]any{{"user_uuid": s.memberID[strings.ToLower(email)], "roles": refs}}}, nil)
					}}, true)
			case !wanted && !pruned(ws):
				p.deletion("workspace member", name, opts, true, func(ctx context.Context, s *server) error {
					var out struct {
						NotDeleted []string `json:"not_deleted_members"`
					}
					if err := s.call(ctx, http.MethodDelete, "/v1/admin/workspaces/"+url.PathEscape(s.workspaceID[ws])+"/remove-users",
						map[string]any{"members": []map[string]string{{"user_uuid": s.memberID[strings.ToLower(email)]}}}, &out); err != nil {
						return err
					}
					if len(out.NotDeleted) > 0 {
						return fmt.Errorf("the server kept %s in Workspace %q (every member stays in the default Workspace)", email, ws)
					}
					return nil
				})
			}
		}
	}
	return nil
}

// compareKeys plans the keys' own allow lists of models: those the file
// lists are set; a key's list that the file does not list is removed with
// --prune only, since removing it lets the key call more.
func (p *Plan) compareKeys(want, have []APIKey, opts Options) error {
	s := p.server
	byID := map[string]APIKey{}
	for _, k := range have {
		byID[k.ID] = k
	}
	listed := map[string]bool{}
	for _, k := range want {
		id := strings.ToLower(k.ID)
		listed[id] = true
		if _, ok := s.keyName[id]; s.steward && !ok {
			return fmt.Errorf("api_keys: the Organization has no API key %s", k.ID)
		}
		if k.ModelAccess == nil || sameModels(k.ModelAccess, byID[id].ModelAccess) {
			continue
		}
		want := *k.ModelAccess
		p.add(Change{Action: Update, Kind: "allowed models", Name: "key " + cmp.Or(s.keyName[id], k.Name, id), Details: []string{modelsDetail(byID[id].ModelAccess, &want)},
			do: func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPut, "/v1/admin/api-keys/"+url.PathEscape(id)+"/allowed-models", map[string]any{"allowed_models": want.AllowedModels}, nil)
			}}, true)
	}
	for _, k := range have {
		if listed[k.ID] {
			continue
		}
		p.deletion("allowed models", "key "+cmp.Or(s.keyName[k.ID], k.ID), opts, true, func(ctx context.Context, s *server) error {
			return s.call(ctx, http.MethodPut, "/v1/admin/api-keys/"+url.PathEscape(k.ID)+"/allowed-models", map[string]any{"allowed_models": nil}, nil)
		})
	}
	return nil
}

// compareWebhooks plans the webhook endpoints, found by URL. A new one
// gets a secret nobody sees (the plan says how to get one); a URL that
// changes is an endpoint deleted and another created.
func (p *Plan) compareWebhooks(want, have []Webhook, opts Options) error {
	byURL := map[string]Webhook{}
	for _, w := range have {
		if _, twice := byURL[w.URL]; twice {
			return fmt.Errorf("webhooks: the Organization has two endpoints for %s: delete one (steward webhooks delete ID) so that the file can name each", redactQuery(w.URL))
		}
		byURL[w.URL] = w
	}
	for _, w := range want {
		name := redactQuery(w.URL)
		events := sorted(w.Events)
		old, ok := byURL[w.URL]
		if !ok {
			details := []string{field("events", "", strings.Join(events, ", "))}
			if w.Description != "" {
				details = append(details, field("description", "", w.Description))
			}
			if !w.enabled() {
				details = append(details, "enabled: false")
			}
			details = append(details, "signing secret: not shown; steward webhooks rotate-secret ID gives one (steward webhooks list shows the ID)")
			p.add(Change{Action: Create, Kind: "webhook", Name: name, Details: details,
				do: func(ctx context.Context, s *server) error {
					var out struct{ ID string }
					body := map[string]any{"url": w.URL, "events": events, "description": w.Description, "enabled": w.enabled()}
					if err := s.call(ctx, http.MethodPost, "/v1/admin/webhooks", body, &out); err != nil {
						return err
					}
					s.webhookID[w.URL] = out.ID
					return nil
				}}, true)
			continue
		}
		body := map[string]any{}
		var details []string
		if have := sorted(old.Events); !slices.Equal(have, events) {
			body["events"] = events
			details = append(details, field("events", strings.Join(have, ", "), strings.Join(events, ", ")))
		}
		if old.Description != w.Description {
			body["description"] = w.Description
			details = append(details, field("description", old.Description, w.Description))
		}
		if old.enabled() != w.enabled() {
			body["enabled"] = w.enabled()
			details = append(details, fmt.Sprintf("enabled: %t -> %t", old.enabled(), w.enabled()))
		}
		if len(details) == 0 {
			continue
		}
		p.add(Change{Action: Update, Kind: "webhook", Name: name, Details: details,
			do: func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodPatch, "/v1/admin/webhooks/"+url.PathEscape(s.webhookID[w.URL]), body, nil)
			}}, true)
	}
	for _, w := range have {
		if !slices.ContainsFunc(want, func(x Webhook) bool { return x.URL == w.URL }) {
			p.deletion("webhook", redactQuery(w.URL), opts, true, func(ctx context.Context, s *server) error {
				return s.call(ctx, http.MethodDelete, "/v1/admin/webhooks/"+url.PathEscape(s.webhookID[w.URL]), nil, nil)
			})
		}
	}
	return nil
}

// redactQuery is a URL as a plan prints it: without its query, which may
// carry a token of the receiver's, since plans end up in CI logs.
func redactQuery(u string) string {
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		return u[:i] + "?..."
	}
	return u
}

// builtin tells whether an Organization role is built in: a role the
// server does not list yet is a custom one the plan creates.
func (s *server) builtin(name string) bool {
	return s.roles[scopeOrganization].builtin[name]
}

// sortedKeys returns the keys of a and b, sorted and each once.
func sortedKeys(a, b map[string][]string) []string {
	var out []string
	for _, m := range []map[string][]string{a, b} {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	return sorted(out)
}

func (s *server) userIDs(emails []string) []string {
	out := make([]string, len(emails))
	for i, e := range emails {
		out[i] = s.memberID[e]
	}
	return out
}

func lower(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = strings.ToLower(v)
	}
	return out
}

// diff returns what want has that have lacks, and what have has that want
// lacks.
func diff(have, want []string) (add, remove []string) {
	for _, w := range sorted(want) {
		if !slices.Contains(have, w) {
			add = append(add, w)
		}
	}
	for _, h := range sorted(have) {
		if !slices.Contains(want, h) {
			remove = append(remove, h)
		}
	}
	return add, remove
}

func field(name, from, to string) string {
	return fmt.Sprintf("%s: %s -> %s", name, quoted(from), quoted(to))
}

func quoted(s string) string {
	if s == "" {
		return "(none)"
	}
	// Text is quoted, so that spaces at its ends show; numbers and JSON
	// read better bare.
	if strings.ContainsAny(s[:1], "{[0123456789-") {
		return s
	}
	return fmt.Sprintf("%q", s)
}

func amount(s *SpendLimit) string {
	if s == nil || s.Amount == nil {
		return ""
	}
	return fmt.Sprint(*s.Amount)
}

func days(p *KeyPolicy) string {
	if p == nil || p.MaxExpirationDays == nil {
		return ""
	}
	return fmt.Sprint(*p.MaxExpirationDays)
}

// models writes an allow list for a plan: every model for none (or a
// Workspace or key the server does not have yet), else its names.
func models(m *ModelAccess) string {
	switch {
	case m == nil || m.AllowedModels == nil:
		return "every model"
	case len(*m.AllowedModels) == 0:
		return "no model"
	}
	return strings.Join(slices.Compact(sorted(*m.AllowedModels)), ", ")
}

func modelsDetail(have, want *ModelAccess) string {
	return fmt.Sprintf("allowed_models: %s -> %s", models(have), models(want))
}

// sameModels tells whether two allow lists allow the same models; none is
// every model.
func sameModels(a, b *ModelAccess) bool {
	names := func(m *ModelAccess) []string {
		if m == nil || m.AllowedModels == nil {
			return nil
		}
		return slices.Compact(sorted(*m.AllowedModels))
	}
	na, nb := names(a), names(b)
	return (na == nil) == (nb == nil) && slices.Equal(na, nb)
}

func sameSpend(a, b *SpendLimit) bool { return amount(a) == amount(b) }

func samePolicy(a, b *KeyPolicy) bool { return days(a) == days(b) }

// sameRate compares rate limits through JSON, where a number read from the
// file and the same number read from the server are equal.
func sameRate(a, b *RateLimit) bool {
	if b == nil {
		b = &RateLimit{}
	}
	return a.RequestsPerSecond == b.RequestsPerSecond && tokens(a) == tokens(b)
}

// tokens renders token limits for comparison: a limit of 0 is no limit,
// which the server writes and a file may leave out.
func tokens(r *RateLimit) string {
	if r == nil {
		return ""
	}
	set := map[string]map[string]any{}
	for model, v := range r.TokensLimitsByModel {
		limits, ok := v.(map[string]any)
		if !ok {
			set[model] = map[string]any{"": v}
			continue
		}
		for k, n := range limits {
			if f, isNum := number(n); isNum && f == 0 {
				continue
			}
			if set[model] == nil {
				set[model] = map[string]any{}
			}
			set[model][k] = n
		}
	}
	if len(set) == 0 {
		return ""
	}
	b, _ := json.Marshal(set)
	return string(b)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

func rateDetails(have, want *RateLimit) []string {
	if have == nil {
		have = &RateLimit{}
	}
	var out []string
	if have.RequestsPerSecond != want.RequestsPerSecond {
		out = append(out, field("requests_per_second", fmt.Sprint(have.RequestsPerSecond), fmt.Sprint(want.RequestsPerSecond)))
	}
	if tokens(have) != tokens(want) {
		out = append(out, field("tokens_limits_by_model", tokens(have), tokens(want)))
	}
	return out
}

func rateBody(r RateLimit) map[string]any {
	t := r.TokensLimitsByModel
	if t == nil {
		t = map[string]any{}
	}
	return map[string]any{"requests_per_second": r.RequestsPerSecond, "tokens_limits_by_model": t}
}

// Write prints the plan as a readable diff: + create, ~ update, - delete,
// then a count.
func (p *Plan) Write(w io.Writer) error {
	var b strings.Builder
	marks := map[Action]string{Create: "+", Update: "~", Delete: "-"}
	var unsupported, kept int
	for _, c := range p.Changes {
		mark := marks[c.Action]
		note := ""
		switch {
		case c.Unsupported:
			mark, note = "!", "  (not supported by this server: a Steward extension)"
			unsupported++
		case c.Kept:
			mark = " "
			kept++
		}
		fmt.Fprintf(&b, "%s %s %q%s\n", mark, c.Kind, c.Name, note)
		for _, d := range c.Details {
			fmt.Fprintf(&b, "      %s\n", d)
		}
	}
	counts := map[Action]int{}
	for _, c := range p.Changes {
		if c.Pending() {
			counts[c.Action]++
		}
	}
	if p.Pending() == 0 {
		b.WriteString("No changes: the Organization matches the file.")
	} else {
		fmt.Fprintf(&b, "Plan: %d to create, %d to update, %d to delete.", counts[Create], counts[Update], counts[Delete])
	}
	if kept > 0 {
		fmt.Fprintf(&b, " %d not in the file, kept (--prune deletes them).", kept)
	}
	if unsupported > 0 {
		fmt.Fprintf(&b, " %d not supported by this server.", unsupported)
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// Apply makes the plan's pending changes in order, calling done after
// each, and stops at the first refusal: the error names the change that
// failed, and done was called for every change made before it.
func (p *Plan) Apply(ctx context.Context, done func(Change)) error {
	for _, c := range p.Changes {
		if !c.Pending() {
			continue
		}
		if err := c.do(ctx, p.server); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
		if done != nil {
			done(c)
		}
	}
	return nil
}
