package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

type orgRow struct {
	steward.Organization
	Members int
}

type backofficeData struct {
	Organizations []orgRow
	Members       []directory.EnterpriseMember
	Keys          []keys.AdminKeyListing
}

// backofficeView loads everything the three Backoffice pages show: an
// Enterprise Account has few Organizations, members and keys.
func (h *Handler) backofficeView(title, active string) viewFunc {
	return func(r *http.Request, c *reqCtx) (page, error) {
		p := c.page(title, active)
		var d backofficeData
		err := h.cfg.DB.View(r.Context(), func(tx *store.Tx) error {
			ctx := r.Context()
			orgs, counts, err := directory.ListOrganizations(ctx, tx, c.ea.ID)
			if err != nil {
				return err
			}
			for i, o := range orgs {
				d.Organizations = append(d.Organizations, orgRow{Organization: o, Members: counts[i]})
			}
			if d.Members, err = directory.ListEnterpriseMembers(ctx, tx, c.ea.ID); err != nil {
				return err
			}
			d.Keys, err = keys.ListAdminKeys(ctx, tx, c.ea.ID)
			return err
		})
		p.Data = d
		return p, err
	}
}

// eaChange runs a change of the page's Enterprise Account; on success it
// redirects to page with the notice code, otherwise shows page again.
func (h *Handler) eaChange(pageName, code string, fn func(r *http.Request, c *reqCtx, tx *store.Tx) error) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		if err := h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error { return fn(r, c, tx) }); err != nil {
			return h.again(w, r, c, "bo_"+pageName, err)
		}
		return done(w, r, Prefix+"/ea/"+c.ea.ID+"/"+pageName, code)
	}
}

func createOrganization(r *http.Request, c *reqCtx, tx *store.Tx) error {
	_, _, err := directory.CreateOrganization(r.Context(), tx, c.p.Actor(), c.ea.ID, r.PostFormValue("name"))
	return err
}

func promote(r *http.Request, c *reqCtx, tx *store.Tx) error {
	_, err := directory.PromoteToAdmin(r.Context(), tx, c.p.Actor(), c.ea.ID, r.PathValue("org"), r.PostFormValue("user"))
	return err
}

func addEnterpriseMember(r *http.Request, c *reqCtx, tx *store.Tx) error {
	_, err := directory.AddEnterpriseMember(r.Context(), tx, c.p.Actor(), c.ea.ID, "", strings.TrimSpace(r.PostFormValue("email")))
	return err
}

func removeEnterpriseMember(r *http.Request, c *reqCtx, tx *store.Tx) error {
	return directory.RemoveEnterpriseMember(r.Context(), tx, c.p.Actor(), c.ea.ID, r.PathValue("user"))
}

func deleteAdminKey(r *http.Request, c *reqCtx, tx *store.Tx) error {
	return keys.DeleteAdminKey(r.Context(), tx, c.p.Actor(), c.ea.ID, r.PathValue("key"))
}

// createAdminKey issues an Admin API key for one of the account's
// Organizations and shows its secret once.
func (h *Handler) createAdminKey(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	var expires *time.Time
	if v := r.PostFormValue("expires"); v != "" {
		t, err := time.Parse("2006-01-02", v)
		if err != nil {
			return h.again(w, r, c, "bo_admin-keys", steward.Invalid([]string{"body", "expires_at"}, "the expiry must be a date, YYYY-MM-DD"))
		}
		expires = &t
	}
	var secret string
	var key steward.AdminAPIKey
	err := h.cfg.DB.Transact(r.Context(), func(tx *store.Tx) error {
		org, err := directory.AccountOrganization(r.Context(), tx, c.ea.ID, r.PostFormValue("organization"))
		if err != nil {
			return err
		}
		key, secret, err = keys.CreateAdminKey(r.Context(), tx, c.p.Actor(), org, r.PostFormValue("name"), expires)
		return err
	})
	if err != nil {
		return h.again(w, r, c, "bo_admin-keys", err)
	}
	return h.showWith(w, r, c, "bo_admin-keys", func(p *page) {
		p.Secret = &shownSecret{What: "Admin API key created", Name: key.Name, Value: secret}
	})
}
