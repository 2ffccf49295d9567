package steward

import "slices"

// SourceKind says where an effective role comes from.
type SourceKind string

const (
	// SourceDirect is a role given to the member themselves.
	SourceDirect SourceKind = "direct"
	// SourceGroup is a role held by a group the member belongs to,
	// directly or through nesting.
	SourceGroup SourceKind = "group"
	// SourceOrganizationAdmin is the full access every organization_admin
	// has to every Workspace.
	SourceOrganizationAdmin SourceKind = "organization_admin"
)

// Source is one reason a member holds a role.
type Source struct {
	Kind    SourceKind
	GroupID string // for SourceGroup: the group that holds the role
}

// Grant is an effective role with every reason the member holds it.
type Grant struct {
	RoleID  string
	Sources []Source
}

// AccessGraph is everything that decides who may do what in one
// Organization: direct roles, groups, their nesting and their roles. It is
// the one place where effective permissions are computed; it does no I/O.
type AccessGraph struct {
	// Members are the Organization's members; nobody else has access.
	Members map[string]bool
	// OrganizationRoles are members' direct Organization roles.
	OrganizationRoles map[string][]string
	// Workspaces are the active (not archived) Workspaces.
	Workspaces map[string]Workspace
	// WorkspaceRoles are direct roles, by Workspace then member.
	WorkspaceRoles map[string]map[string][]string
	// GroupMembers are each group's direct members.
	GroupMembers map[string][]string
	// GroupParents are, for each group, the groups it is nested in.
	GroupParents map[string][]string
	// GroupOrganizationRole is the Organization role a group holds, if any.
	GroupOrganizationRole map[string]string
	// GroupWorkspaceRoles are the roles each group holds, by Workspace.
	GroupWorkspaceRoles map[string]map[string][]string
	// Roles resolves role ids (built-in and custom) to their permissions.
	Roles map[string]Role

	// userGroups caches UserGroups; built by Index.
	userGroups map[string][]string
}

// Index prepares the graph for queries: every member's groups, their
// ancestors included. Call it once after filling the graph.
func (g *AccessGraph) Index() {
	direct := map[string][]string{}
	for group, members := range g.GroupMembers {
		for _, u := range members {
			direct[u] = append(direct[u], group)
		}
	}
	g.userGroups = make(map[string][]string, len(direct))
	for u, groups := range direct {
		var all []string
		var visit func(string)
		visit = func(group string) {
			if slices.Contains(all, group) {
				return
			}
			all = append(all, group)
			for _, p := range g.GroupParents[group] {
				visit(p)
			}
		}
		for _, group := range groups {
			visit(group)
		}
		slices.Sort(all)
		g.userGroups[u] = all
	}
}

// UserGroups returns every group the member belongs to, directly or because
// a group they belong to is nested in it.
func (g *AccessGraph) UserGroups(userID string) []string { return g.userGroups[userID] }

func addGrant(grants []Grant, roleID string, src Source) []Grant {
	for i := range grants {
		if grants[i].RoleID == roleID {
			if !slices.Contains(grants[i].Sources, src) {
				grants[i].Sources = append(grants[i].Sources, src)
			}
			return grants
		}
	}
	return append(grants, Grant{RoleID: roleID, Sources: []Source{src}})
}

// OrganizationGrants returns a member's effective Organization roles: their
// own and those of their groups.
func (g *AccessGraph) OrganizationGrants(userID string) []Grant {
	if !g.Members[userID] {
		return nil
	}
	var grants []Grant
	for _, r := range g.OrganizationRoles[userID] {
		grants = addGrant(grants, r, Source{Kind: SourceDirect})
	}
	for _, group := range g.UserGroups(userID) {
		if r := g.GroupOrganizationRole[group]; r != "" {
			grants = addGrant(grants, r, Source{Kind: SourceGroup, GroupID: group})
		}
	}
	return grants
}

// IsOrganizationAdmin reports whether the member is an organization_admin,
// directly or through a group.
func (g *AccessGraph) IsOrganizationAdmin(userID string) bool {
	return slices.ContainsFunc(g.OrganizationGrants(userID), func(gr Grant) bool { return gr.RoleID == RoleIDOrganizationAdmin })
}

// WorkspaceGrants returns a member's effective roles in a Workspace: their
// direct roles, the roles of every group they belong to there, and
// workspace_admin for an organization_admin. An archived or unknown
// Workspace grants nothing.
func (g *AccessGraph) WorkspaceGrants(userID, workspaceID string) []Grant {
	if _, active := g.Workspaces[workspaceID]; !g.Members[userID] || !active {
		return nil
	}
	var grants []Grant
	for _, r := range g.WorkspaceRoles[workspaceID][userID] {
		grants = addGrant(grants, r, Source{Kind: SourceDirect})
	}
	for _, group := range g.UserGroups(userID) {
		for _, r := range g.GroupWorkspaceRoles[group][workspaceID] {
			grants = addGrant(grants, r, Source{Kind: SourceGroup, GroupID: group})
		}
	}
	if g.IsOrganizationAdmin(userID) {
		grants = addGrant(grants, RoleIDWorkspaceAdmin, Source{Kind: SourceOrganizationAdmin})
	}
	return grants
}

// MemberWorkspaces returns the Workspaces a member belongs to, directly or
// through a group, with their effective roles there, the default Workspace
// first, then by name. An organization_admin reaches every Workspace but is
// listed only in those they belong to.
func (g *AccessGraph) MemberWorkspaces(userID string) []MemberWorkspace {
	var ids []string
	for ws, byUser := range g.WorkspaceRoles {
		if _, ok := byUser[userID]; ok {
			ids = append(ids, ws)
		}
	}
	for _, group := range g.UserGroups(userID) {
		for ws := range g.GroupWorkspaceRoles[group] {
			ids = append(ids, ws)
		}
	}
	var out []MemberWorkspace
	for _, id := range ids {
		ws, ok := g.Workspaces[id]
		if !ok || slices.ContainsFunc(out, func(m MemberWorkspace) bool { return m.WorkspaceID == id }) {
			continue
		}
		m := MemberWorkspace{WorkspaceID: id, Name: ws.Name, IsDefault: ws.IsDefault}
		for _, gr := range g.WorkspaceGrants(userID, id) {
			m.RoleIDs = append(m.RoleIDs, gr.RoleID)
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b MemberWorkspace) int {
		switch {
		case a.IsDefault != b.IsDefault:
			if a.IsDefault {
				return -1
			}
			return 1
		case a.Name != b.Name:
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		return 0
	})
	return out
}

// Permissions returns the union of the permissions of grants.
func (g *AccessGraph) Permissions(grants []Grant) PermissionSet {
	var p PermissionSet
	for _, gr := range grants {
		if r, ok := g.Roles[gr.RoleID]; ok {
			for _, perm := range r.Permissions {
				p = p.With(perm)
			}
		}
	}
	return p
}

// WorkspacePermissions returns everything a member may do in a Workspace.
func (g *AccessGraph) WorkspacePermissions(userID, workspaceID string) PermissionSet {
	return g.Permissions(g.WorkspaceGrants(userID, workspaceID))
}

// PermissionSet is a set of permissions, one bit each, so that a check costs
// one AND.
type PermissionSet uint64

// permissionBits numbers the permissions in catalogue order.
var permissionBits = func() map[Permission]PermissionSet {
	m := make(map[Permission]PermissionSet, len(Permissions))
	for i, info := range Permissions {
		m[info.Name] = 1 << uint(i)
	}
	return m
}()

func permissionBit(p Permission) PermissionSet { return permissionBits[p] }

// With returns the set with p added.
func (s PermissionSet) With(p Permission) PermissionSet { return s | permissionBit(p) }

// Has reports whether the set holds p.
func (s PermissionSet) Has(p Permission) bool { return s&permissionBit(p) != 0 }

// List returns the permissions of the set, in catalogue order.
func (s PermissionSet) List() []Permission {
	var out []Permission
	for i, info := range Permissions {
		if s&(1<<uint(i)) != 0 {
			out = append(out, info.Name)
		}
	}
	return out
}
