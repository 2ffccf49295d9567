package server

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// roleOut is Mistral's RoleOut.
type roleOut struct {
	Name         string `json:"name"`
	UUID         string `json:"uuid"`
	Description  string `json:"description"`
	IsCustomRole bool   `json:"is_custom_role"`
}

type rolesOut struct {
	WorkspaceRoles    []roleOut `json:"workspace_roles"`
	OrganizationRoles []roleOut `json:"organization_roles"`
}

func roleList(roles []steward.Role) []roleOut {
	out := make([]roleOut, len(roles))
	for i, r := range roles {
		out[i] = roleOut{Name: r.Name, UUID: r.ID, Description: r.Description, IsCustomRole: r.Custom}
	}
	return out
}

func (s *Server) handleListRoles(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	cat, err := s.directory.Catalog(r.Context(), p.OrganizationID)
	if err != nil {
		return err
	}
	return writeResult(w, rolesOut{
		WorkspaceRoles:    roleList(cat.Roles(steward.ScopeWorkspace)),
		OrganizationRoles: roleList(cat.Roles(steward.ScopeOrganization)),
	}, nil)
}

type customRoleOut struct {
	UUID         string   `json:"uuid"`
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Scope        string   `json:"scope"`
	Permissions  []string `json:"permissions"`
	IsCustomRole bool     `json:"is_custom_role"`
	CreatedAt    string   `json:"created_at"`
	UpdatedAt    string   `json:"updated_at"`
}

func newCustomRoleOut(r directory.CustomRole) customRoleOut {
	perms := make([]string, len(r.Permissions))
	for i, p := range r.Permissions {
		perms[i] = string(p)
	}
	return customRoleOut{UUID: r.ID, Name: r.Name, Description: r.Description, Scope: string(r.Scope), Permissions: perms,
		IsCustomRole: true, CreatedAt: formatTime(r.CreatedAt), UpdatedAt: formatTime(r.UpdatedAt)}
}

type customRoleIn struct {
	Name        *string   `json:"name"`
	Description *string   `json:"description"`
	Scope       *string   `json:"scope"`
	Permissions *[]string `json:"permissions"`
}

func (in customRoleIn) input() directory.CustomRoleInput {
	out := directory.CustomRoleInput{Name: in.Name, Description: in.Description, Permissions: in.Permissions}
	if in.Scope != nil {
		out.Scope = steward.RoleScope(*in.Scope)
	}
	return out
}

func (s *Server) handleListCustomRoles(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	roles, err := s.directory.ListCustomRoles(r.Context(), p.OrganizationID)
	return writeItems(w, roles, err, func(_ int, role directory.CustomRole) customRoleOut { return newCustomRoleOut(role) })
}

func (s *Server) handleCreateCustomRole(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in customRoleIn
	if err := decode(r, &in); err != nil {
		return err
	}
	role, err := s.directory.CreateCustomRole(r.Context(), p.Actor(), p.OrganizationID, in.input())
	return writeResult(w, newCustomRoleOut(role), err)
}

func (s *Server) handleGetCustomRole(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	role, err := s.directory.GetCustomRole(r.Context(), p.OrganizationID, r.PathValue("role_uuid"))
	return writeResult(w, newCustomRoleOut(role), err)
}

func (s *Server) handleUpdateCustomRole(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in customRoleIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Scope != nil {
		return steward.Invalid([]string{"body", "scope"}, "a role's scope cannot change: create a new role instead")
	}
	role, err := s.directory.UpdateCustomRole(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("role_uuid"), in.input())
	return writeResult(w, newCustomRoleOut(role), err)
}

func (s *Server) handleDeleteCustomRole(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	err := s.directory.DeleteCustomRole(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("role_uuid"))
	return writeResult(w, deleteOut{Message: "Custom role deleted successfully"}, err)
}

type permissionOut struct {
	Name        string `json:"name"`
	Description string `json:"description"`
}

func (s *Server) handleListPermissions(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	out := struct {
		Organization []permissionOut `json:"organization"`
		Workspace    []permissionOut `json:"workspace"`
	}{Organization: []permissionOut{}, Workspace: []permissionOut{}}
	for _, info := range steward.Permissions {
		po := permissionOut{Name: string(info.Name), Description: info.Description}
		if info.Scope == steward.ScopeWorkspace {
			out.Workspace = append(out.Workspace, po)
		} else {
			out.Organization = append(out.Organization, po)
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type roleRefOut struct {
	UUID         string `json:"uuid"`
	Name         string `json:"name"`
	IsCustomRole bool   `json:"is_custom_role"`
}

type userWorkspaceRolesOut struct {
	WorkspaceUUID string       `json:"workspace_uuid"`
	Name          string       `json:"name"`
	IsDefault     bool         `json:"is_default"`
	Roles         []roleRefOut `json:"roles"`
}

type userRolesOut struct {
	UserUUID          string                  `json:"user_uuid"`
	OrganizationRoles []roleRefOut            `json:"organization_roles"`
	Workspaces        []userWorkspaceRolesOut `json:"workspaces"`
}

// handleUserRoles shows every role of a member, custom ones included, which
// Mistral's member object (built-in roles only) cannot carry.
func (s *Server) handleUserRoles(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	m, cat, err := s.directory.MemberRoles(r.Context(), p.OrganizationID, r.PathValue("user_id"))
	if err != nil {
		return err
	}
	// Roles are listed in the catalogue's order: built-in, then custom.
	refs := func(scope steward.RoleScope, ids []string) []roleRefOut {
		out := []roleRefOut{}
		for _, role := range cat.Roles(scope) {
			if slices.Contains(ids, role.ID) {
				out = append(out, roleRefOut{UUID: role.ID, Name: role.Name, IsCustomRole: role.Custom})
			}
		}
		return out
	}
	out := userRolesOut{UserUUID: m.User.ID, OrganizationRoles: refs(steward.ScopeOrganization, m.RoleIDs), Workspaces: []userWorkspaceRolesOut{}}
	for _, ws := range m.Workspaces {
		out.Workspaces = append(out.Workspaces, userWorkspaceRolesOut{WorkspaceUUID: ws.WorkspaceID, Name: ws.Name, IsDefault: ws.IsDefault,
			Roles: refs(steward.ScopeWorkspace, ws.RoleIDs)})
	}
	return writeResult(w, out, nil)
}
