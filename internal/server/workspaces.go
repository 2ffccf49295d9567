package server

import (
	"net/http"
	"strconv"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
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
	return read(s, w, r, func(tx *store.Tx) (workspacesPage, error) {
		list, total, err := directory.ListWorkspaces(r.Context(), tx, p.OrganizationID, archived, search, page, pageSize)
		out := workspacesPage{Total: total, Items: []workspaceOut{}, Object: "list", Page: page, PageSize: pageSize}
		for _, ws := range list {
			out.Items = append(out.Items, s.newWorkspaceOut(ws))
		}
		return out, err
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (workspaceEnrichedOut, error) {
		ws, err := directory.CreateWorkspace(r.Context(), tx, p.Actor(), org, directory.NewWorkspace{
			WorkspaceInput:   directory.WorkspaceInput{Name: in.Name, Description: in.Description, Icon: in.Icon},
			AdminUserID:      *in.AdminUserID,
			AddAllOrgMembers: in.AddAllOrgMembers,
		})
		if err != nil {
			return workspaceEnrichedOut{}, err
		}
		g, err := directory.LoadGraph(r.Context(), tx, org.ID, *in.AdminUserID)
		if err != nil {
			return workspaceEnrichedOut{}, err
		}
		out := workspaceEnrichedOut{workspaceOut: s.newWorkspaceOut(ws)}
		var ids []string
		for _, gr := range g.WorkspaceGrants(*in.AdminUserID, ws.ID) {
			ids = append(ids, gr.RoleID)
		}
		out.RawRoles, out.RawRole = builtinRoles(steward.ScopeWorkspace, ids)
		return out, nil
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (workspaceOut, error) {
		ws, err := directory.UpdateWorkspace(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"),
			directory.WorkspaceInput{Name: in.Name, Description: in.Description, Icon: in.Icon})
		return s.newWorkspaceOut(ws), err
	})
}

func (s *Server) handleArchiveWorkspace(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return s.orgChange(w, r, p, http.StatusNoContent, func(tx *store.Tx, org steward.Organization) error {
		return directory.ArchiveWorkspace(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"))
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (addedOut, error) {
		added, _, err := directory.AddWorkspaceMembers(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"), members, false)
		return addedOut{AddedMembersCount: added}, err
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (addedUpdatedOut, error) {
		added, updated, err := directory.AddWorkspaceMembers(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"), members, true)
		return addedUpdatedOut{AddedMembersCount: added, UpdatedMembersCount: updated}, err
	})
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
	return writeOrg(s, w, r, p, func(tx *store.Tx, org steward.Organization) (removedOut, error) {
		n, notDeleted, err := directory.RemoveWorkspaceMembers(r.Context(), tx, p.Actor(), org, r.PathValue("workspace_uuid"), ids)
		return removedOut{DeletedMembersCount: n, NotDeletedMembers: notDeleted}, err
	})
}
