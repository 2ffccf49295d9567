package web

import (
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type homeData struct {
	Organizations      []steward.Organization
	EnterpriseAccounts []steward.EnterpriseAccount
}

// home lists what the person may open; with only one Organization and no
// Backoffice it opens the Organization's Admin Panel.
func (h *Handler) home(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	var d homeData
	err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
		var err error
		if d.Organizations, err = directory.AdminOrganizations(r.Context(), tx, c.sess.UserID); err != nil {
			return err
		}
		d.EnterpriseAccounts, err = directory.MemberEnterpriseAccounts(r.Context(), tx, c.sess.UserID)
		return err
	})
	if err != nil {
		return err
	}
	if len(d.Organizations) == 1 && len(d.EnterpriseAccounts) == 0 {
		http.Redirect(w, r, Prefix+"/o/"+d.Organizations[0].ID+"/members", http.StatusSeeOther)
		return nil
	}
	p := c.page("Steward", "")
	p.Data = d
	h.render(w, r, http.StatusOK, "home", p)
	return nil
}
