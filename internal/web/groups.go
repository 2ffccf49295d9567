package web

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type groupsData struct {
	Groups []steward.Group
}

func (h *Handler) groupsView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Groups", "groups")
	var d groupsData
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		var err error
		d.Groups, _, err = directory.ListGroups(r.Context(), tx, c.org.ID, "", 1, directory.MaxPageSize)
		return err
	})
	p.Data = d
	return p, err
}

func (h *Handler) createGroup(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	err := h.change(r, c, func(tx *store.Tx, org steward.Organization) error {
		_, err := directory.CreateGroup(r.Context(), tx, c.p.Actor(), org, directory.GroupInput{Name: &name, Description: &desc})
		return err
	})
	if err != nil {
		return h.again(w, r, c, "groups", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/groups", "group_created")
}

func (h *Handler) deleteGroup(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.change(r, c, func(tx *store.Tx, org steward.Organization) error {
		return directory.DeleteGroup(r.Context(), tx, c.p.Actor(), org, r.PathValue("group"))
	})
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
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		ctx, id := r.Context(), r.PathValue("group")
		var err error
		if d.Group, err = directory.GetGroup(ctx, tx, c.org.ID, id); err != nil {
			return err
		}
		if d.Members, _, err = directory.ListGroupMembers(ctx, tx, c.org.ID, id, 1, directory.MaxPageSize); err != nil {
			return err
		}
		res, err := directory.ListMembers(ctx, tx, c.org.ID, "", 1, directory.MaxPageSize)
		if err != nil {
			return err
		}
		for _, m := range res.Members {
			if !slices.ContainsFunc(d.Members, func(u steward.User) bool { return u.ID == m.User.ID }) {
				d.Others = append(d.Others, m)
			}
		}
		if d.Nested, err = directory.NestedGroups(ctx, tx, c.org.ID, id); err != nil {
			return err
		}
		if d.Groups, _, err = directory.ListGroups(ctx, tx, c.org.ID, "", 1, directory.MaxPageSize); err != nil {
			return err
		}
		cat, err := directory.LoadCatalog(ctx, tx, c.org.ID)
		if err != nil {
			return err
		}
		d.Roles = cat.Roles(steward.ScopeWorkspace)
		list, _, err := directory.ListAssignments(ctx, tx, c.org.ID, id, 1, directory.MaxPageSize)
		for _, a := range list {
			d.Assignments = append(d.Assignments, assignmentRow{Assignment: a, RoleNames: roleNames(cat, a.RoleIDs)})
		}
		if err != nil {
			return err
		}
		d.Workspaces, _, err = directory.ListWorkspaces(ctx, tx, c.org.ID, false, "", 1, directory.MaxPageSize)
		return err
	})
	p.Title = d.Group.Name
	p.Data = d
	return p, err
}

// groupChange runs a change of the group in the path and shows its page
// again.
func (h *Handler) groupChange(fn func(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		group := r.PathValue("group")
		err := h.change(r, c, func(tx *store.Tx, org steward.Organization) error { return fn(r, c, tx, org, group) })
		if err != nil {
			return h.again(w, r, c, "group", err)
		}
		return done(w, r, Prefix+"/o/"+c.org.ID+"/groups/"+group, "group_saved")
	}
}

func updateGroup(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	_, err := directory.UpdateGroup(r.Context(), tx, c.p.Actor(), org, group, directory.GroupInput{Name: &name, Description: &desc})
	return err
}

func addGroupMember(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error {
	return directory.ChangeGroupMembers(r.Context(), tx, c.p.Actor(), org, group, []string{r.PostFormValue("user")}, false)
}

func removeGroupMember(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error {
	return directory.ChangeGroupMembers(r.Context(), tx, c.p.Actor(), org, group, []string{r.PathValue("user")}, true)
}

func assignGroup(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error {
	return directory.AssignGroup(r.Context(), tx, c.p.Actor(), org, directory.AssignmentChange{GroupID: group, WorkspaceID: r.PostFormValue("workspace"),
		Roles: directory.RoleInput{Roles: &[]string{r.PostFormValue("role")}}, Upsert: true})
}

func unassignGroup(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error {
	return directory.RemoveAssignment(r.Context(), tx, c.p.Actor(), org, group, r.PathValue("ws"))
}

func setNestedGroups(r *http.Request, c *reqCtx, tx *store.Tx, org steward.Organization, group string) error {
	return directory.SetNestedGroups(r.Context(), tx, c.p.Actor(), org, group, r.PostForm["child"])
}
