package directory

import (
	"context"
	"database/sql"
	"slices"
	"sync"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// TopicAccess is the change topic of everything that decides access:
// memberships, roles, groups, Workspaces.
const TopicAccess = "access"

// accessChanged tells the caches, once tx commits, that access in the
// Organization changed.
func accessChanged(tx *store.Tx, orgID string) {
	tx.Notify(store.Change{Topic: TopicAccess, OrganizationID: orgID})
}

// LoadGraph reads everything that decides access in an Organization. With
// users, it reads only what concerns them (their roles, their groups and
// those groups' ancestors and assignments): enough to answer for them in
// the transaction, without loading a large Organization.
func LoadGraph(ctx context.Context, tx *store.Tx, orgID string, users ...string) (*steward.AccessGraph, error) {
	g := &steward.AccessGraph{
		Members:               map[string]bool{},
		OrganizationRoles:     map[string][]string{},
		Workspaces:            map[string]steward.Workspace{},
		WorkspaceRoles:        map[string]map[string][]string{},
		GroupMembers:          map[string][]string{},
		GroupParents:          map[string][]string{},
		GroupOrganizationRole: map[string]string{},
		GroupWorkspaceRoles:   map[string]map[string][]string{},
		Roles:                 map[string]steward.Role{},
	}
	cat, err := LoadCatalog(ctx, tx, orgID)
	if err != nil {
		return nil, err
	}
	for _, r := range cat.roles {
		g.Roles[r.ID] = r
	}
	// forUsers narrows a query to the users, when there are some.
	forUsers := func(q, column string) (string, []any) {
		if len(users) == 0 {
			return q, []any{orgID}
		}
		return q + " AND " + column + " IN (" + store.Placeholders(len(users)) + ")", append([]any{orgID}, anys(users)...)
	}
	nested := func(m map[string]map[string][]string, k1, k2, v string) {
		if m[k1] == nil {
			m[k1] = map[string][]string{}
		}
		m[k1][k2] = append(m[k1][k2], v)
	}
	workspace := func(id, name string, isDefault bool) {
		g.Workspaces[id] = steward.Workspace{ID: id, OrganizationID: orgID, Name: name, IsDefault: isDefault}
	}
	// A deactivated member (SCIM active: false) keeps everything but access.
	q, args := forUsers(`SELECT user_id FROM organization_members WHERE organization_id = ? AND deactivated_at IS NULL`, "user_id")
	if err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
		var u string
		err := r.Scan(&u)
		g.Members[u] = true
		return err
	}); err != nil {
		return nil, err
	}
	q, args = forUsers(`SELECT user_id, role_id FROM organization_member_roles WHERE organization_id = ?`, "user_id")
	if err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
		var u, role string
		err := r.Scan(&u, &role)
		g.OrganizationRoles[u] = append(g.OrganizationRoles[u], role)
		return err
	}); err != nil {
		return nil, err
	}
	q, args = forUsers(`SELECT w.id, w.name, w.is_default, r.user_id, r.role_id FROM workspace_member_roles r JOIN workspaces w ON w.id = r.workspace_id
		WHERE w.organization_id = ? AND w.archived_at IS NULL`, "r.user_id")
	if err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
		var ws, name, u, role string
		var isDefault bool
		err := r.Scan(&ws, &name, &isDefault, &u, &role)
		workspace(ws, name, isDefault)
		nested(g.WorkspaceRoles, ws, u, role)
		return err
	}); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		if err := tx.Each(ctx, `SELECT id, name, is_default FROM workspaces WHERE organization_id = ? AND archived_at IS NULL`, []any{orgID}, func(r *sql.Rows) error {
			var ws, name string
			var isDefault bool
			err := r.Scan(&ws, &name, &isDefault)
			workspace(ws, name, isDefault)
			return err
		}); err != nil {
			return nil, err
		}
	}
	q, args = forUsers(`SELECT m.group_id, m.user_id FROM user_group_members m JOIN user_groups g ON g.id = m.group_id WHERE g.organization_id = ?`, "m.user_id")
	if err := tx.Each(ctx, q, args, func(r *sql.Rows) error {
		var group, u string
		err := r.Scan(&group, &u)
		g.GroupMembers[group] = append(g.GroupMembers[group], u)
		return err
	}); err != nil {
		return nil, err
	}
	if g.GroupParents, err = nesting(ctx, tx, orgID); err != nil {
		return nil, err
	}
	if err := tx.Each(ctx, `SELECT id, organization_role_id FROM user_groups WHERE organization_id = ? AND organization_role_id IS NOT NULL`, []any{orgID}, func(r *sql.Rows) error {
		var group, role string
		err := r.Scan(&group, &role)
		g.GroupOrganizationRole[group] = role
		return err
	}); err != nil {
		return nil, err
	}
	g.Index()
	var groups []string
	if len(users) > 0 {
		for _, u := range users {
			for _, group := range g.UserGroups(u) {
				if !slices.Contains(groups, group) {
					groups = append(groups, group)
				}
			}
		}
		if len(groups) == 0 {
			return g, nil
		}
	}
	q, args = `SELECT r.group_id, w.id, w.name, w.is_default, r.role_id FROM group_workspace_roles r JOIN user_groups g ON g.id = r.group_id
		JOIN workspaces w ON w.id = r.workspace_id WHERE g.organization_id = ? AND w.archived_at IS NULL`, []any{orgID}
	if len(groups) > 0 {
		q += " AND r.group_id IN (" + store.Placeholders(len(groups)) + ")"
		args = append(args, anys(groups)...)
	}
	err = tx.Each(ctx, q, args, func(r *sql.Rows) error {
		var group, ws, name, role string
		var isDefault bool
		err := r.Scan(&group, &ws, &name, &isDefault, &role)
		workspace(ws, name, isDefault)
		nested(g.GroupWorkspaceRoles, group, ws, role)
		return err
	})
	return g, err
}

// Access answers "what may this member do in this Workspace?" from memory.
// Each Organization's graph is loaded on first use and dropped when the
// store publishes an access change for it (a store.Cache), so that answers
// follow changes at once; permissions are memoised per member and
// Workspace, so that a repeated question costs two map lookups.
type Access struct {
	orgs *store.Cache[*orgAccess]
}

type orgAccess struct {
	graph *steward.AccessGraph
	perms sync.Map // accessKey -> steward.PermissionSet
}

type accessKey struct{ user, workspace string }

// NewAccess returns an access cache over db, subscribed to its changes.
func NewAccess(db *store.DB) *Access {
	return &Access{orgs: store.NewCache(db, TopicAccess, func(ctx context.Context, orgID string) (*orgAccess, error) {
		g, err := store.Read(ctx, db, func(tx *store.Tx) (*steward.AccessGraph, error) { return LoadGraph(ctx, tx, orgID) })
		if err != nil {
			return nil, err
		}
		return &orgAccess{graph: g}, nil
	})}
}

// Invalidate drops what is known of an Organization.
func (a *Access) Invalidate(orgID string) { a.orgs.Drop(orgID) }

// Graph returns the Organization's current access graph.
func (a *Access) Graph(ctx context.Context, orgID string) (*steward.AccessGraph, error) {
	o, err := a.orgs.Get(ctx, orgID)
	if err != nil {
		return nil, err
	}
	return o.graph, nil
}

// WorkspacePermissions returns what a member may do in a Workspace of the
// Organization; nothing for anyone else or an archived Workspace.
func (a *Access) WorkspacePermissions(ctx context.Context, orgID, userID, workspaceID string) (steward.PermissionSet, error) {
	o, err := a.orgs.Get(ctx, orgID)
	if err != nil {
		return 0, err
	}
	k := accessKey{userID, workspaceID}
	if p, ok := o.perms.Load(k); ok {
		return p.(steward.PermissionSet), nil
	}
	p := o.graph.WorkspacePermissions(userID, workspaceID)
	o.perms.Store(k, p)
	return p, nil
}
