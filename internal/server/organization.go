package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/quota"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// organizationOut is the Organization of the calling key (an extension).
type organizationOut struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	EnterpriseAccountID string `json:"enterprise_account_id"`
	TimeZone            string `json:"time_zone"`
	CreatedAt           string `json:"created_at"`
}

func getOrganizationOut(r *http.Request, tx *store.Tx, orgID string) (organizationOut, error) {
	o, err := directory.GetOrganization(r.Context(), tx, orgID)
	if err != nil {
		return organizationOut{}, err
	}
	loc, err := quota.TimeZoneOf(r.Context(), tx, orgID)
	return organizationOut{ID: o.ID, Name: o.Name, EnterpriseAccountID: o.EnterpriseAccountID, TimeZone: loc.String(), CreatedAt: formatTime(o.CreatedAt)}, err
}

func (s *Server) handleGetOrganization(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return read(s, w, r, func(tx *store.Tx) (organizationOut, error) {
		return getOrganizationOut(r, tx, p.OrganizationID)
	})
}

// handleUpdateOrganization sets the Organization's time zone, the one
// setting of its own an Organization admin changes.
func (s *Server) handleUpdateOrganization(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		TimeZone *string `json:"time_zone"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if err := steward.Invalids(missing([]string{"body"}, field{"time_zone", in.TimeZone})); err != nil {
		return err
	}
	return writeOrg(s, w, r, p, func(tx *store.Tx, o steward.Organization) (organizationOut, error) {
		if err := quota.SetTimeZone(r.Context(), tx, p.Actor(), o, *in.TimeZone); err != nil {
			return organizationOut{}, err
		}
		return getOrganizationOut(r, tx, p.OrganizationID)
	})
}
