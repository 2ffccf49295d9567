package server

import (
	"net/http"
	"strconv"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// workspaceOut is Mistral's WorkspaceOUT.
type workspaceOut struct {
	UUID         string             `json:"uuid"`
	Name         string             `json:"name"`
	Description  *string            `json:"description"`
	Icon         *string            `json:"icon"`
	MembersCount *int               `json:"members_count"`
	SpendLimit   *workspaceSpendOut `json:"spend_limit"`
	IsDefault    bool               `json:"is_default"`
}

func (s *Server) newWorkspaceOut(ws steward.Workspace) workspaceOut {
	out := workspaceOut{UUID: ws.ID, Name: ws.Name, Description: &ws.Description, Icon: &ws.Icon, MembersCount: &ws.MemberCount, IsDefault: ws.IsDefault}
	if ws.SpendLimit != nil {
		spend := s.workspaceSpend(ws.SpendLimit)
		out.SpendLimit = &spend
	}
	return out
}

// workspaceEnrichedOut is Mistral's WorkspaceEnrichedOUT: a Workspace with
// the roles its admin holds there.
type workspaceEnrichedOut struct {
	workspaceOut
	RawRoles []string `json:"raw_roles"`
	RawRole  string   `json:"raw_role"`
}

type workspacesPage struct {
	Total    int            `json:"total"`
	Items    []workspaceOut `json:"items"`
	Object   string         `json:"object"`
	Page     int            `json:"page"`
	PageSize int            `json:"page_size"`
}

func (s *Server) handleListWorkspaces(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	archived := q.boolean("is_archived", false)
	page := q.intRange("page", 1, 1, 1<<30)
	pageSize := q.intRange("page_size", 25, 1, directory.MaxPageSize)
	search := q.stringOr("search", "")
	if err := q.err(); err != nil {
		return err
	}
	list, total, err := s.directory.ListWorkspaces(r.Context(), p.OrganizationID, archived, search, page, pageSize)
	out := workspacesPage{Total: total, Items: []workspaceOut{}, Object: "list", Page: page, PageSize: pageSize}
	for _, ws := range list {
		out.Items = append(out.Items, s.newWorkspaceOut(ws))
	}
	return writeResult(w, out, err)
}

type workspaceIn struct {
	Name             *string `json:"name"`
	Description      *string `json:"description"`
	Icon             *string `json:"icon"`
	AddAllOrgMembers bool    `json:"add_all_org_members"`
	AdminUserID      *string `json:"admin_user_id"`
}

func (s *Server) handleCreateWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in workspaceIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.AdminUserID == nil {
		return steward.Invalid([]string{"body", "admin_user_id"}, "admin_user_id is required: the member who administers the Workspace")
	}
	ws, adminRoles, err := s.directory.CreateWorkspace(r.Context(), p.Actor(), p.OrganizationID, directory.NewWorkspace{
		WorkspaceInput:   directory.WorkspaceInput{Name: in.Name, Description: in.Description, Icon: in.Icon},
		AdminUserID:      *in.AdminUserID,
		AddAllOrgMembers: in.AddAllOrgMembers,
	})
	if err != nil {
		return err
	}
	out := workspaceEnrichedOut{workspaceOut: s.newWorkspaceOut(ws)}
	out.RawRoles, out.RawRole = builtinRoles(steward.ScopeWorkspace, adminRoles)
	return writeResult(w, out, nil)
}

type workspaceUpdateIn struct {
	Name        *string `json:"name"`
	Description *string `json:"description"`
	Icon        *string `json:"icon"`
}

func (s *Server) handleUpdateWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in workspaceUpdateIn
	if err := decode(r, &in); err != nil {
		return err
	}
	ws, err := s.directory.UpdateWorkspace(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"),
		directory.WorkspaceInput{Name: in.Name, Description: in.Description, Icon: in.Icon})
	return writeResult(w, s.newWorkspaceOut(ws), err)
}

func (s *Server) handleArchiveWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.directory.ArchiveWorkspace(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid")))
}

// workspaceMembersIn is Mistral's WorkspaceMemberIN.
type workspaceMembersIn struct {
	Members []struct {
		roleFields
		UserUUID *string `json:"user_uuid"`
	} `json:"members"`
}

func (in workspaceMembersIn) members() ([]directory.WorkspaceMemberInput, error) {
	out := make([]directory.WorkspaceMemberInput, len(in.Members))
	for i, m := range in.Members {
		if m.UserUUID == nil {
			return nil, steward.Invalid([]string{"body", "members", strconv.Itoa(i), "user_uuid"}, "user_uuid is required")
		}
		out[i] = directory.WorkspaceMemberInput{UserID: *m.UserUUID, Roles: m.input()}
	}
	return out, nil
}

type addedOut struct {
	AddedMembersCount int `json:"added_members_count"`
}

type addedUpdatedOut struct {
	AddedMembersCount   int `json:"added_members_count"`
	UpdatedMembersCount int `json:"updated_members_count"`
}

func (s *Server) handleAddWorkspaceUsers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in workspaceMembersIn
	if err := decode(r, &in); err != nil {
		return err
	}
	members, err := in.members()
	if err != nil {
		return err
	}
	added, _, err := s.directory.AddWorkspaceMembers(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), members, false)
	return writeResult(w, addedOut{AddedMembersCount: added}, err)
}

func (s *Server) handleSetWorkspaceUsers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in workspaceMembersIn
	if err := decode(r, &in); err != nil {
		return err
	}
	members, err := in.members()
	if err != nil {
		return err
	}
	added, updated, err := s.directory.AddWorkspaceMembers(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), members, true)
	return writeResult(w, addedUpdatedOut{AddedMembersCount: added, UpdatedMembersCount: updated}, err)
}

type removeMembersIn struct {
	Members *[]struct {
		UserUUID *string `json:"user_uuid"`
	} `json:"members"`
}

type removedOut struct {
	DeletedMembersCount int      `json:"deleted_members_count"`
	NotDeletedMembers   []string `json:"not_deleted_members"`
}

func (s *Server) handleRemoveWorkspaceUsers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in removeMembersIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Members == nil {
		return steward.Invalid([]string{"body", "members"}, "members is required")
	}
	ids := make([]string, len(*in.Members))
	for i, m := range *in.Members {
		if m.UserUUID == nil {
			return steward.Invalid([]string{"body", "members", strconv.Itoa(i), "user_uuid"}, "user_uuid is required")
		}
		ids[i] = *m.UserUUID
	}
	n, notDeleted, err := s.directory.RemoveWorkspaceMembers(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("workspace_uuid"), ids)
	return writeResult(w, removedOut{DeletedMembersCount: n, NotDeletedMembers: notDeleted}, err)
}
