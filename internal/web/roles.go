package web

import (
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type rolesData struct {
	Organization, Workspace []steward.Role
	Permissions             []steward.PermissionInfo
}

func (h *Handler) rolesView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Roles", "roles")
	d := rolesData{Permissions: steward.Permissions}
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		cat, err := directory.LoadCatalog(r.Context(), tx, c.org.ID)
		if err != nil {
			return err
		}
		d.Organization, d.Workspace = cat.Roles(steward.ScopeOrganization), cat.Roles(steward.ScopeWorkspace)
		return nil
	})
	p.Data = d
	return p, err
}

func (h *Handler) createRole(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	name, desc := strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("description")
	perms := r.PostForm["permission"]
	in := directory.CustomRoleInput{Name: &name, Description: &desc, Scope: steward.RoleScope(r.PostFormValue("scope")), Permissions: &perms}
	err := h.change(r, c, func(tx *store.Tx, org steward.Organization) error {
		_, err := directory.CreateCustomRole(r.Context(), tx, c.p.Actor(), org.ID, in)
		return err
	})
	if err != nil {
		return h.again(w, r, c, "roles", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/roles", "role_created")
}

func (h *Handler) deleteRole(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.change(r, c, func(tx *store.Tx, org steward.Organization) error {
		return directory.DeleteCustomRole(r.Context(), tx, c.p.Actor(), org.ID, r.PathValue("role"))
	})
	if err != nil {
		return h.again(w, r, c, "roles", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/roles", "role_deleted")
}
