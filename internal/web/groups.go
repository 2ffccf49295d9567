package web

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

type groupsData struct {
	Groups []steward.Group
}

func (h *Handler) groupsView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Groups", "groups")
	var d groupsData
	var err error
	d.Groups, _, err = h.directory.ListGroups(r.Context(), c.org.ID, "", 1, directory.MaxPageSize)
	p.Data = d
	return p, err
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	_, err := h.directory.CreateGroup(r.Context(), c.p.Actor(), c.org.ID, directory.GroupInput{Name: &name, Description: &desc})
	if err != nil {
		return h.again(w, r, c, "groups", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/groups", "group_created")
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.directory.DeleteGroup(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("group"))
	if err != nil {
		return h.again(w, r, c, "groups", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/groups", "group_deleted")
}

type assignmentRow struct {
	directory.Assignment
	RoleNames []string
}

type groupData struct {
	Group       steward.Group
	Members     []steward.User
	Others      []steward.Member
	Nested      []steward.Group
	Groups      []steward.Group
	Assignments []assignmentRow
	Workspaces  []steward.Workspace
	Roles       []steward.Role
}

func (h *Handler) groupView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Group", "groups")
	var d groupData
	err := func() error {
		ctx, id := r.Context(), r.PathValue("group")
		var err error
		if d.Group, err = h.directory.GetGroup(ctx, c.org.ID, id); err != nil {
			return err
		}
		if d.Members, _, err = h.directory.ListGroupMembers(ctx, c.org.ID, id, 1, directory.MaxPageSize); err != nil {
			return err
		}
		res, err := h.directory.ListMembers(ctx, c.org.ID, "", 1, directory.MaxPageSize)
		if err != nil {
			return err
		}
		for _, m := range res.Members {
			if !slices.ContainsFunc(d.Members, func(u steward.User) bool { return u.ID == m.User.ID }) {
				d.Others = append(d.Others, m)
			}
		}
		if d.Nested, err = h.directory.NestedGroups(ctx, c.org.ID, id); err != nil {
			return err
		}
		if d.Groups, _, err = h.directory.ListGroups(ctx, c.org.ID, "", 1, directory.MaxPageSize); err != nil {
			return err
		}
		assigned, err := h.directory.ListAssignments(ctx, c.org.ID, id, 1, directory.MaxPageSize)
		if err != nil {
			return err
		}
		d.Roles = assigned.Catalog.Roles(steward.ScopeWorkspace)
		for _, a := range assigned.Assignments {
			d.Assignments = append(d.Assignments, assignmentRow{Assignment: a, RoleNames: roleNames(assigned.Catalog, a.RoleIDs)})
		}
		d.Workspaces, _, err = h.directory.ListWorkspaces(ctx, c.org.ID, false, "", 1, directory.MaxPageSize)
		return err
	}()
	p.Title = d.Group.Name
	p.Data = d
	return p, err
}

// groupChange runs fn, a change of the group in the path; on success it
// redirects to the group's page with a notice, otherwise shows it again.
func (h *Handler) groupChange(fn func(h *Handler, r *http.Request, c *reqCtx, group string) error) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		group := r.PathValue("group")
		if err := fn(h, r, c, group); err != nil {
			return h.again(w, r, c, "group", err)
		}
		return done(w, r, Prefix+"/o/"+c.org.ID+"/groups/"+group, "group_saved")
	}
}

func updateGroup(h *Handler, r *http.Request, c *reqCtx, group string) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	_, err := h.directory.UpdateGroup(r.Context(), c.p.Actor(), c.org.ID, group, directory.GroupInput{Name: &name, Description: &desc})
	return err
}

func addGroupMember(h *Handler, r *http.Request, c *reqCtx, group string) error {
	return h.directory.ChangeGroupMembers(r.Context(), c.p.Actor(), c.org.ID, group, []string{r.PostFormValue("user")}, false)
}

func removeGroupMember(h *Handler, r *http.Request, c *reqCtx, group string) error {
	return h.directory.ChangeGroupMembers(r.Context(), c.p.Actor(), c.org.ID, group, []string{r.PathValue("user")}, true)
}

func assignGroup(h *Handler, r *http.Request, c *reqCtx, group string) error {
	return h.directory.AssignGroup(r.Context(), c.p.Actor(), c.org.ID, directory.AssignmentChange{GroupID: group, WorkspaceID: r.PostFormValue("workspace"),
		Roles: directory.RoleInput{Roles: &[]string{r.PostFormValue("role")}}, Upsert: true})
}

func unassignGroup(h *Handler, r *http.Request, c *reqCtx, group string) error {
	return h.directory.RemoveAssignment(r.Context(), c.p.Actor(), c.org.ID, group, r.PathValue("ws"))
}

func setNestedGroups(h *Handler, r *http.Request, c *reqCtx, group string) error {
	return h.directory.SetNestedGroups(r.Context(), c.p.Actor(), c.org.ID, group, r.PostForm["child"])
}
