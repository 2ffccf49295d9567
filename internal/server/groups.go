package server

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// groupOut is Mistral's AdminUserGroupOut.
type groupOut struct {
	UUID              string   `json:"uuid"`
	Name              string   `json:"name"`
	Description       *string  `json:"description"`
	ExternallyManaged *bool    `json:"externally_managed"`
	TargetType        *string  `json:"target_type"`
	OrganizationRole  *string  `json:"organization_role"`
	ParentGroupIDs    []string `json:"parent_group_ids"`
}

func newGroupOut(g steward.Group) groupOut {
	out := groupOut{UUID: g.ID, Name: g.Name, Description: g.Description, ExternallyManaged: &g.ExternallyManaged,
		TargetType: optional(g.TargetType), ParentGroupIDs: g.ParentIDs}
	if out.ParentGroupIDs == nil {
		out.ParentGroupIDs = []string{}
	}
	if r, ok := steward.BuiltinRole(steward.ScopeOrganization, g.OrganizationRoleID); ok {
		out.OrganizationRole = &r.Name
	} else if g.OrganizationRoleID != "" {
		out.OrganizationRole = &g.OrganizationRoleID
	}
	return out
}

type groupsPage struct {
	Total    int        `json:"total"`
	Items    []groupOut `json:"items"`
	Page     int        `json:"page"`
	PageSize int        `json:"page_size"`
}

func (s *Server) handleListGroups(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	page, pageSize := q.paging()
	search := q.stringOr("search", "")
	if err := q.err(); err != nil {
		return err
	}
	groups, total, err := s.directory.ListGroups(r.Context(), p.OrganizationID, search, page, pageSize)
	out := groupsPage{Total: total, Items: []groupOut{}, Page: page, PageSize: pageSize}
	for _, g := range groups {
		out.Items = append(out.Items, newGroupOut(g))
	}
	return writeResult(w, out, err)
}

type groupIn struct {
	Name           *string   `json:"name"`
	Description    *string   `json:"description"`
	TargetType     *string   `json:"target_type"`
	ParentGroupIDs *[]string `json:"parent_group_ids"`
}

func (in groupIn) input() directory.GroupInput {
	return directory.GroupInput{Name: in.Name, Description: in.Description, TargetType: in.TargetType, ParentGroupIDs: in.ParentGroupIDs}
}

func (s *Server) handleCreateGroup(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in groupIn
	if err := decode(r, &in); err != nil {
		return err
	}
	g, err := s.directory.CreateGroup(r.Context(), p.Actor(), p.OrganizationID, in.input())
	return writeResult(w, newGroupOut(g), err)
}

func (s *Server) handleGetGroup(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	g, err := s.directory.GetGroup(r.Context(), p.OrganizationID, r.PathValue("group_uuid"))
	return writeResult(w, newGroupOut(g), err)
}

func (s *Server) handleUpdateGroup(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in groupIn
	if err := decode(r, &in); err != nil {
		return err
	}
	g, err := s.directory.UpdateGroup(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("group_uuid"), in.input())
	return writeResult(w, newGroupOut(g), err)
}

func (s *Server) handleDeleteGroup(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.directory.DeleteGroup(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("group_uuid")))
}

type groupMemberOut struct {
	UserUUID string  `json:"user_uuid"`
	Name     *string `json:"name"`
	Email    *string `json:"email"`
}

type groupMembersPage struct {
	Total    int              `json:"total"`
	Members  []groupMemberOut `json:"members"`
	Page     int              `json:"page"`
	PageSize int              `json:"page_size"`
}

func (s *Server) handleListGroupMembers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	page, pageSize := q.paging()
	if err := q.err(); err != nil {
		return err
	}
	users, total, err := s.directory.ListGroupMembers(r.Context(), p.OrganizationID, r.PathValue("group_uuid"), page, pageSize)
	out := groupMembersPage{Total: total, Members: []groupMemberOut{}, Page: page, PageSize: pageSize}
	for _, u := range users {
		m := groupMemberOut{UserUUID: u.ID, Email: &u.Email}
		if name := strings.TrimSpace(u.FirstName + " " + u.LastName); name != "" {
			m.Name = &name
		}
		out.Members = append(out.Members, m)
	}
	return writeResult(w, out, err)
}

type userUUIDsIn struct {
	UserUUIDs *[]string `json:"user_uuids"`
}

func (s *Server) changeGroupMembers(w http.ResponseWriter, r *http.Request, p steward.Principal, remove bool) error {
	var in userUUIDsIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.UserUUIDs == nil {
		return steward.Invalid([]string{"body", "user_uuids"}, "user_uuids is required")
	}
	return writeStatus(w, http.StatusNoContent,
		s.directory.ChangeGroupMembers(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("group_uuid"), *in.UserUUIDs, remove))
}

func (s *Server) handleAddGroupMembers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return s.changeGroupMembers(w, r, p, false)
}

func (s *Server) handleRemoveGroupMembers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return s.changeGroupMembers(w, r, p, true)
}

// provisionIn is Mistral's AdminProvisionGroupToWorkspaceIn.
type provisionIn struct {
	UserGroupUUID     *string `json:"user_group_uuid"`
	WorkspaceUUID     *string `json:"workspace_uuid"`
	WorkspaceRole     *string `json:"workspace_role"`
	WorkspaceRoleName *string `json:"workspace_role_name"`
}

// handleProvisionGroup assigns a group to a Workspace, or replaces the
// roles of its assignment: provisioning is idempotent.
func (s *Server) handleProvisionGroup(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in provisionIn
	if err := decode(r, &in); err != nil {
		return err
	}
	errs := missing([]string{"body"}, field{"user_group_uuid", in.UserGroupUUID}, field{"workspace_uuid", in.WorkspaceUUID})
	if in.WorkspaceRole != nil && in.WorkspaceRoleName != nil {
		msg := "workspace_role and workspace_role_name are mutually exclusive: send only one of them"
		errs = append(errs, steward.Invalid([]string{"body", "workspace_role"}, "%s", msg), steward.Invalid([]string{"body", "workspace_role_name"}, "%s", msg))
	}
	if err := steward.Invalids(errs); err != nil {
		return err
	}
	return writeStatus(w, http.StatusNoContent, s.directory.AssignGroup(r.Context(), p.Actor(), p.OrganizationID, directory.AssignmentChange{
		GroupID: *in.UserGroupUUID, WorkspaceID: *in.WorkspaceUUID, Upsert: true,
		Roles: directory.RoleInput{Role: in.WorkspaceRole, RoleName: in.WorkspaceRoleName},
	}))
}

type workspaceRoleRefOut struct {
	Name string `json:"name"`
	UUID string `json:"uuid"`
}

// assignmentOut is Mistral's GroupWorkspaceAssignmentOut.
type assignmentOut struct {
	Roles         []workspaceRoleRefOut `json:"roles"`
	RoleUUID      *string               `json:"role_uuid"`
	RoleName      *string               `json:"role_name"`
	WorkspaceUUID string                `json:"workspace_uuid"`
	WorkspaceName string                `json:"workspace_name"`
	Created       string                `json:"created"`
}

type assignmentsPage struct {
	Total    int             `json:"total"`
	Items    []assignmentOut `json:"items"`
	Page     int             `json:"page"`
	PageSize int             `json:"page_size"`
}

func (s *Server) handleListGroupWorkspaces(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	page, pageSize := q.paging()
	if err := q.err(); err != nil {
		return err
	}
	res, err := s.directory.ListAssignments(r.Context(), p.OrganizationID, r.PathValue("group_uuid"), page, pageSize)
	if err != nil {
		return err
	}
	out := assignmentsPage{Total: res.Total, Items: []assignmentOut{}, Page: page, PageSize: pageSize}
	for _, a := range res.Assignments {
		item := assignmentOut{Roles: []workspaceRoleRefOut{}, WorkspaceUUID: a.Workspace.ID, WorkspaceName: a.Workspace.Name, Created: formatTime(a.CreatedAt)}
		for _, role := range res.Catalog.Roles(steward.ScopeWorkspace) {
			for _, id := range a.RoleIDs {
				if id == role.ID {
					item.Roles = append(item.Roles, workspaceRoleRefOut{Name: role.Name, UUID: role.ID})
				}
			}
		}
		if len(item.Roles) > 0 {
			last := item.Roles[len(item.Roles)-1]
			item.RoleUUID, item.RoleName = &last.UUID, &last.Name
		}
		out.Items = append(out.Items, item)
	}
	return writeResult(w, out, nil)
}

type assignIn struct {
	roleFields
	WorkspaceUUID *string `json:"workspace_uuid"`
}

func (s *Server) handleAssignGroupWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in assignIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.WorkspaceUUID == nil {
		return steward.Invalid([]string{"body", "workspace_uuid"}, "workspace_uuid is required")
	}
	return writeStatus(w, http.StatusCreated, s.directory.AssignGroup(r.Context(), p.Actor(), p.OrganizationID, directory.AssignmentChange{
		GroupID: r.PathValue("group_uuid"), WorkspaceID: *in.WorkspaceUUID, Roles: in.input()}))
}

func (s *Server) handleUpdateGroupWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in roleFields
	if err := decode(r, &in); err != nil {
		return err
	}
	return writeStatus(w, http.StatusNoContent, s.directory.UpdateAssignment(r.Context(), p.Actor(), p.OrganizationID, directory.AssignmentChange{
		GroupID: r.PathValue("group_uuid"), WorkspaceID: r.PathValue("workspace_uuid"), Roles: in.input()}))
}

func (s *Server) handleRemoveGroupWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent,
		s.directory.RemoveAssignment(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("group_uuid"), r.PathValue("workspace_uuid")))
}

func (s *Server) handleSetGroupOrganizationRole(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		OrganizationRole *string `json:"organization_role"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.OrganizationRole == nil {
		return steward.Invalid([]string{"body", "organization_role"}, "organization_role is required")
	}
	return writeStatus(w, http.StatusNoContent,
		s.directory.SetGroupOrganizationRole(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("group_uuid"), *in.OrganizationRole))
}

type nestedRefOut struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

func (s *Server) handleListNestedGroups(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	type nestedOut struct {
		Children []nestedRefOut `json:"children"`
	}
	children, err := s.directory.NestedGroups(r.Context(), p.OrganizationID, r.PathValue("group_uuid"))
	out := nestedOut{Children: []nestedRefOut{}}
	for _, c := range children {
		out.Children = append(out.Children, nestedRefOut{UUID: c.ID, Name: c.Name})
	}
	return writeResult(w, out, err)
}

func (s *Server) handleSetNestedGroups(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		ChildGroupUUIDs *[]string `json:"child_group_uuids"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ChildGroupUUIDs == nil {
		return steward.Invalid([]string{"body", "child_group_uuids"}, "child_group_uuids is required")
	}
	return writeStatus(w, http.StatusNoContent,
		s.directory.SetNestedGroups(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("group_uuid"), *in.ChildGroupUUIDs))
}

type accessSourceOut struct {
	Kind      string  `json:"kind"`
	GroupUUID *string `json:"group_uuid"`
	GroupName *string `json:"group_name"`
}

type effectiveRoleOut struct {
	Role    roleRefOut        `json:"role"`
	Sources []accessSourceOut `json:"sources"`
}

type userAccessOut struct {
	UserUUID          string             `json:"user_uuid"`
	WorkspaceUUID     string             `json:"workspace_uuid"`
	OrganizationRoles []effectiveRoleOut `json:"organization_roles"`
	WorkspaceRoles    []effectiveRoleOut `json:"workspace_roles"`
	Permissions       []string           `json:"permissions"`
	CanUseModels      bool               `json:"can_use_models"`
}

// handleUserAccess explains what a member may do in a Workspace and why.
func (s *Server) handleUserAccess(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	userID, wsID := r.PathValue("user_id"), r.PathValue("workspace_uuid")
	ex, err := s.directory.ExplainAccess(r.Context(), p.OrganizationID, userID, wsID)
	if err != nil {
		return err
	}
	g, names := ex.Graph, ex.GroupNames
	convert := func(grants []steward.Grant) []effectiveRoleOut {
		out := []effectiveRoleOut{}
		for _, gr := range grants {
			role := g.Roles[gr.RoleID]
			e := effectiveRoleOut{Role: roleRefOut{UUID: role.ID, Name: role.Name, IsCustomRole: role.Custom}}
			for _, src := range gr.Sources {
				so := accessSourceOut{Kind: string(src.Kind)}
				if src.GroupID != "" {
					id, name := src.GroupID, names[src.GroupID]
					so.GroupUUID, so.GroupName = &id, &name
				}
				e.Sources = append(e.Sources, so)
			}
			out = append(out, e)
		}
		return out
	}
	grants := g.WorkspaceGrants(userID, wsID)
	perms := g.Permissions(grants)
	out := userAccessOut{UserUUID: userID, WorkspaceUUID: wsID, OrganizationRoles: convert(g.OrganizationGrants(userID)),
		WorkspaceRoles: convert(grants), Permissions: []string{}, CanUseModels: perms.Has(steward.PermModelsUse)}
	for _, perm := range perms.List() {
		out.Permissions = append(out.Permissions, string(perm))
	}
	return writeResult(w, out, nil)
}
