package web

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

type rolesData struct {
	Organization, Workspace []steward.Role
	Permissions             []steward.PermissionInfo
}

func (h *Handler) rolesView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Roles", "roles")
	d := rolesData{Permissions: steward.Permissions}
	cat, err := h.directory.Catalog(r.Context(), c.org.ID)
	if err == nil {
		d.Organization, d.Workspace = cat.Roles(steward.ScopeOrganization), cat.Roles(steward.ScopeWorkspace)
	}
	p.Data = d
	return p, err
}

func (h *Handler) createRole(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	name, desc := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("description")
	perms := r.PostForm["permission"]
	in := directory.CustomRoleInput{Name: &name, Description: &desc, Scope: steward.RoleScope(r.PostFormValue("scope")), Permissions: &perms}
	_, err := h.directory.CreateCustomRole(r.Context(), c.p.Actor(), c.org.ID, in)
	if err != nil {
		return h.again(w, r, c, "roles", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/roles", "role_created")
}

func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.directory.DeleteCustomRole(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("role"))
	if err != nil {
		return h.again(w, r, c, "roles", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/roles", "role_deleted")
}
