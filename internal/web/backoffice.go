package web

import (
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
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
		err := func() error {
			ctx := r.Context()
			orgs, counts, err := h.directory.ListOrganizations(ctx, c.ea.ID)
			if err != nil {
				return err
			}
			for i, o := range orgs {
				d.Organizations = append(d.Organizations, orgRow{Organization: o, Members: counts[i]})
			}
			if d.Members, err = h.directory.ListEnterpriseMembers(ctx, c.ea.ID); err != nil {
				return err
			}
			d.Keys, err = h.keys.ListAdminKeys(ctx, c.ea.ID)
			return err
		}()
		p.Data = d
		return p, err
	}
}

// eaChange runs fn, a change of the page's Enterprise Account; on success
// it redirects to page with the notice code, otherwise shows page again.
func (h *Handler) eaChange(pageName, code string, fn func(h *Handler, r *http.Request, c *reqCtx) error) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
		if err := fn(h, r, c); err != nil {
			return h.again(w, r, c, "bo_"+pageName, err)
		}
		return done(w, r, Prefix+"/ea/"+c.ea.ID+"/"+pageName, code)
	}
}

func createOrganization(h *Handler, r *http.Request, c *reqCtx) error {
	_, err := h.directory.CreateOrganization(r.Context(), c.p.Actor(), c.ea.ID, r.PostFormValue("name"))
	return err
}

func promote(h *Handler, r *http.Request, c *reqCtx) error {
	_, err := h.directory.PromoteToAdmin(r.Context(), c.p.Actor(), c.ea.ID, r.PathValue("org"), r.PostFormValue("user"))
	return err
}

func addEnterpriseMember(h *Handler, r *http.Request, c *reqCtx) error {
	_, err := h.directory.AddEnterpriseMember(r.Context(), c.p.Actor(), c.ea.ID, "", strings.TrimSpace(r.PostFormValue("email")))
	return err
}

func removeEnterpriseMember(h *Handler, r *http.Request, c *reqCtx) error {
	return h.directory.RemoveEnterpriseMember(r.Context(), c.p.Actor(), c.ea.ID, r.PathValue("user"))
}

func deleteAdminKey(h *Handler, r *http.Request, c *reqCtx) error {
	return h.keys.DeleteAdminKey(r.Context(), c.p.Actor(), c.ea.ID, r.PathValue("key"))
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
	key, secret, err := h.keys.CreateAdminKey(r.Context(), c.p.Actor(), c.ea.ID, r.PostFormValue("organization"), r.PostFormValue("name"), expires)
	if err != nil {
		return h.again(w, r, c, "bo_admin-keys", err)
	}
	return h.showWith(w, r, c, "bo_admin-keys", func(p *page) {
		p.Secret = &shownSecret{What: "Admin API key created", Name: key.Key.Name, Value: secret}
	})
}
