package server

import (
	"net/http"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// backofficePrefix is where the Backoffice API lives.
const backofficePrefix = "/v1/backoffice"

// backoffice registers a Backoffice route: authenticated like the Admin
// API, authorized for Backoffice keys only.
func (s *Server) backoffice(method, path string, h handlerFunc) {
	s.routes = append(s.routes, Route{Method: method, Path: backofficePrefix + path, Action: steward.ActionBackoffice})
	s.mux.Handle(method+" "+backofficePrefix+path, s.authorized(steward.ActionBackoffice, h))
}

type enterpriseAccountOut struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

func newEnterpriseAccountOut(ea steward.EnterpriseAccount) enterpriseAccountOut {
	return enterpriseAccountOut{ID: ea.ID, Name: ea.Name, CreatedAt: formatTime(ea.CreatedAt)}
}

func (s *Server) handleGetEnterpriseAccount(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	ea, err := s.directory.GetEnterpriseAccount(r.Context(), p.EnterpriseAccountID)
	return writeResult(w, newEnterpriseAccountOut(ea), err)
}

// decodeName reads a body {"name": ...} whose name is required.
func decodeName(r *http.Request) (string, error) {
	var in struct {
		Name *string `json:"name"`
	}
	if err := decode(r, &in); err != nil {
		return "", err
	}
	if err := steward.Invalids(missing([]string{"body"}, field{"name", in.Name})); err != nil {
		return "", err
	}
	return *in.Name, nil
}

func (s *Server) handleRenameEnterpriseAccount(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	name, err := decodeName(r)
	if err != nil {
		return err
	}
	ea, err := s.directory.RenameEnterpriseAccount(r.Context(), p.Actor(), p.EnterpriseAccountID, name)
	return writeResult(w, newEnterpriseAccountOut(ea), err)
}

type backofficeOrgOut struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	MemberCount int    `json:"member_count"`
	CreatedAt   string `json:"created_at"`
}

func (s *Server) handleListOrganizations(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	orgs, counts, err := s.directory.ListOrganizations(r.Context(), p.EnterpriseAccountID)
	return writeItems(w, orgs, err, func(i int, o steward.Organization) backofficeOrgOut {
		return backofficeOrgOut{ID: o.ID, Name: o.Name, MemberCount: counts[i], CreatedAt: formatTime(o.CreatedAt)}
	})
}

func (s *Server) handleCreateOrganization(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	name, err := decodeName(r)
	if err != nil {
		return err
	}
	o, err := s.directory.CreateOrganization(r.Context(), p.Actor(), p.EnterpriseAccountID, name)
	return writeResult(w, backofficeOrgOut{ID: o.ID, Name: o.Name, CreatedAt: formatTime(o.CreatedAt)}, err)
}

func (s *Server) handlePromote(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		MemberID *string `json:"member_id"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.MemberID == nil {
		return steward.Invalid([]string{"body", "member_id"}, "member_id is required")
	}
	type promotionOut struct {
		OrganizationID string `json:"organization_id"`
		UserID         string `json:"user_id"`
		Email          string `json:"email"`
	}
	orgID := r.PathValue("organization_id")
	u, err := s.directory.PromoteToAdmin(r.Context(), p.Actor(), p.EnterpriseAccountID, orgID, *in.MemberID)
	return writeResult(w, promotionOut{OrganizationID: orgID, UserID: u.ID, Email: u.Email}, err)
}

type enterpriseMemberOut struct {
	UserID  string   `json:"user_id"`
	Email   string   `json:"email"`
	Name    *string  `json:"name"`
	AdminOf []string `json:"admin_of"`
	AddedAt string   `json:"added_at"`
}

func newEnterpriseMemberOut(m directory.EnterpriseMember) enterpriseMemberOut {
	out := enterpriseMemberOut{UserID: m.User.ID, Email: m.User.Email, AdminOf: m.AdminOf, AddedAt: formatTime(store.Time(m.AddedAt))}
	if out.AdminOf == nil {
		out.AdminOf = []string{}
	}
	if name := strings.TrimSpace(m.User.FirstName + " " + m.User.LastName); name != "" {
		out.Name = &name
	}
	return out
}

func (s *Server) handleListEnterpriseMembers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	members, err := s.directory.ListEnterpriseMembers(r.Context(), p.EnterpriseAccountID)
	return writeItems(w, members, err, func(_ int, m directory.EnterpriseMember) enterpriseMemberOut { return newEnterpriseMemberOut(m) })
}

func (s *Server) handleAddEnterpriseMember(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		UserID *string `json:"user_id"`
		Email  *string `json:"email"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	m, err := s.directory.AddEnterpriseMember(r.Context(), p.Actor(), p.EnterpriseAccountID, deref(in.UserID), deref(in.Email))
	return writeResult(w, newEnterpriseMemberOut(m), err)
}

func (s *Server) handleRemoveEnterpriseMember(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.directory.RemoveEnterpriseMember(r.Context(), p.Actor(), p.EnterpriseAccountID, r.PathValue("user_id")))
}

type adminKeyOut struct {
	ID               string  `json:"id"`
	Name             string  `json:"name"`
	OrganizationID   string  `json:"organization_id"`
	OrganizationName string  `json:"organization_name"`
	Hint             string  `json:"hint"`
	CreatedAt        string  `json:"created_at"`
	LastUsedAt       *string `json:"last_used_at"`
	ExpiresAt        *string `json:"expires_at"`
	Key              *string `json:"key,omitempty"`
}

func optionalTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := formatTime(*t)
	return &s
}

func newAdminKeyOut(k steward.AdminAPIKey, orgName string) adminKeyOut {
	return adminKeyOut{ID: k.ID, Name: k.Name, OrganizationID: k.OrganizationID, OrganizationName: orgName, Hint: k.Hint,
		CreatedAt: formatTime(k.CreatedAt), LastUsedAt: optionalTime(k.LastUsedAt), ExpiresAt: optionalTime(k.ExpiresAt)}
}

func (s *Server) handleListAdminKeys(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	list, err := s.keys.ListAdminKeys(r.Context(), p.EnterpriseAccountID)
	return writeItems(w, list, err, func(_ int, l keys.AdminKeyListing) adminKeyOut { return newAdminKeyOut(l.Key, l.OrganizationName) })
}

func (s *Server) handleCreateAdminKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in struct {
		Name           *string `json:"name"`
		OrganizationID *string `json:"organization_id"`
		ExpiresAt      *string `json:"expires_at"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	errs := missing([]string{"body"}, field{"name", in.Name}, field{"organization_id", in.OrganizationID})
	expires, errs := optionalDate("expires_at", in.ExpiresAt, errs)
	if err := steward.Invalids(errs); err != nil {
		return err
	}
	k, secret, err := s.keys.CreateAdminKey(r.Context(), p.Actor(), p.EnterpriseAccountID, *in.OrganizationID, strings.TrimSpace(*in.Name), expires)
	out := newAdminKeyOut(k.Key, k.OrganizationName)
	out.Key = &secret
	return writeResult(w, out, err)
}

func (s *Server) handleDeleteAdminKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(w, http.StatusNoContent, s.keys.DeleteAdminKey(r.Context(), p.Actor(), p.EnterpriseAccountID, r.PathValue("key_id")))
}
