package server

import (
	"net/http"
	"time"

	"github.com/stewardhq/steward/internal/steward"
)

// organizationOut is the Organization of the calling key (an extension).
type organizationOut struct {
	ID                  string `json:"id"`
	Name                string `json:"name"`
	EnterpriseAccountID string `json:"enterprise_account_id"`
	TimeZone            string `json:"time_zone"`
	CreatedAt           string `json:"created_at"`
}

func newOrganizationOut(o steward.Organization, zone *time.Location) organizationOut {
	return organizationOut{ID: o.ID, Name: o.Name, EnterpriseAccountID: o.EnterpriseAccountID, TimeZone: zone.String(), CreatedAt: formatTime(o.CreatedAt)}
}

func (s *Server) handleGetOrganization(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	o, zone, err := s.quota.Organization(r.Context(), p.OrganizationID)
	return writeResult(w, newOrganizationOut(o, zone), err)
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
	o, zone, err := s.quota.SetTimeZone(r.Context(), p.Actor(), p.OrganizationID, *in.TimeZone)
	return writeResult(w, newOrganizationOut(o, zone), err)
}
