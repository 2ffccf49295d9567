package web

import (
	"net/http"
	"slices"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/sso"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type homeData struct {
	Organizations      []directory.OrganizationAccess
	EnterpriseAccounts []steward.EnterpriseAccount
}

func (h *Handler) homeData(r *http.Request, c *reqCtx) (homeData, error) {
	var d homeData
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		var err error
		if d.Organizations, err = directory.PanelOrganizations(r.Context(), tx, c.sess.UserID); err != nil {
			return err
		}
		d.EnterpriseAccounts, err = directory.MemberEnterpriseAccounts(r.Context(), tx, c.sess.UserID)
		return err
	})
	if c.sess.SSOScope != "" {
		// A session single sign-on started opens its own scope only
		// (see ssoGate).
		d.Organizations = slices.DeleteFunc(d.Organizations, func(o directory.OrganizationAccess) bool {
			return string(sso.OrgScope(o.Organization.ID)) != c.sess.SSOScope
		})
		d.EnterpriseAccounts = slices.DeleteFunc(d.EnterpriseAccounts, func(ea steward.EnterpriseAccount) bool {
			return string(sso.EAScope(ea.ID)) != c.sess.SSOScope
		})
	}
	return d, err
}

// home opens the first Organization in which the person has a page, on
// its overview; someone with none gets the list of what they may open.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	d, err := h.homeData(r, c)
	if err != nil {
		return err
	}
	if len(d.Organizations) > 0 {
		http.Redirect(w, r, Prefix+"/o/"+d.Organizations[0].Organization.ID+"/", http.StatusSeeOther)
		return nil
	}
	return h.showHome(w, r, c, d)
}

// organizations lists the Organizations and Enterprise Accounts the person
// may open.
func (h *Handler) organizations(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	d, err := h.homeData(r, c)
	if err != nil {
		return err
	}
	return h.showHome(w, r, c, d)
}

func (h *Handler) showHome(w http.ResponseWriter, r *http.Request, c *reqCtx, d homeData) error {
	p := c.page("Steward", "")
	p.Data = d
	h.render(w, r, http.StatusOK, "home", p)
	return nil
}
