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
	return read(s, w, r, func(tx *store.Tx) (enterpriseAccountOut, error) {
		ea, err := directory.GetEnterpriseAccount(r.Context(), tx, p.EnterpriseAccountID)
		return newEnterpriseAccountOut(ea), err
	})
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
	return write(s, w, r, func(tx *store.Tx) (enterpriseAccountOut, error) {
		ea, err := directory.RenameEnterpriseAccount(r.Context(), tx, p.Actor(), p.EnterpriseAccountID, name)
		return newEnterpriseAccountOut(ea), err
	})
}

type backofficeOrgOut struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	MemberCount int    `json:"member_count"`
	CreatedAt   string `json:"created_at"`
}

func (s *Server) handleListOrganizations(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var counts []int
	return readItems(s, w, r, func(tx *store.Tx) ([]steward.Organization, error) {
		orgs, c, err := directory.ListOrganizations(r.Context(), tx, p.EnterpriseAccountID)
		counts = c
		return orgs, err
	}, func(i int, o steward.Organization) backofficeOrgOut {
		return backofficeOrgOut{ID: o.ID, Name: o.Name, MemberCount: counts[i], CreatedAt: formatTime(o.CreatedAt)}
	})
}

func (s *Server) handleCreateOrganization(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	name, err := decodeName(r)
	if err != nil {
		return err
	}
	return write(s, w, r, func(tx *store.Tx) (backofficeOrgOut, error) {
		o, _, err := directory.CreateOrganization(r.Context(), tx, p.Actor(), p.EnterpriseAccountID, name)
		return backofficeOrgOut{ID: o.ID, Name: o.Name, CreatedAt: formatTime(o.CreatedAt)}, err
	})
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
	return write(s, w, r, func(tx *store.Tx) (promotionOut, error) {
		u, err := directory.PromoteToAdmin(r.Context(), tx, p.Actor(), p.EnterpriseAccountID, orgID, *in.MemberID)
		return promotionOut{OrganizationID: orgID, UserID: u.ID, Email: u.Email}, err
	})
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
	return readItems(s, w, r, func(tx *store.Tx) ([]directory.EnterpriseMember, error) {
		return directory.ListEnterpriseMembers(r.Context(), tx, p.EnterpriseAccountID)
	}, func(_ int, m directory.EnterpriseMember) enterpriseMemberOut { return newEnterpriseMemberOut(m) })
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
	return write(s, w, r, func(tx *store.Tx) (enterpriseMemberOut, error) {
		m, err := directory.AddEnterpriseMember(r.Context(), tx, p.Actor(), p.EnterpriseAccountID, deref(in.UserID), deref(in.Email))
		return newEnterpriseMemberOut(m), err
	})
}

func (s *Server) handleRemoveEnterpriseMember(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(s, w, r, http.StatusNoContent, func(tx *store.Tx) error {
		return directory.RemoveEnterpriseMember(r.Context(), tx, p.Actor(), p.EnterpriseAccountID, r.PathValue("user_id"))
	})
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
	return readItems(s, w, r, func(tx *store.Tx) ([]keys.AdminKeyListing, error) {
		return keys.ListAdminKeys(r.Context(), tx, p.EnterpriseAccountID)
	}, func(_ int, l keys.AdminKeyListing) adminKeyOut { return newAdminKeyOut(l.Key, l.OrganizationName) })
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
	return write(s, w, r, func(tx *store.Tx) (adminKeyOut, error) {
		org, err := directory.AccountOrganization(r.Context(), tx, p.EnterpriseAccountID, *in.OrganizationID)
		if err != nil {
			return adminKeyOut{}, err
		}
		k, secret, err := keys.CreateAdminKey(r.Context(), tx, p.Actor(), org, strings.TrimSpace(*in.Name), expires)
		out := newAdminKeyOut(k, org.Name)
		out.Key = &secret
		return out, err
	})
}

func (s *Server) handleDeleteAdminKey(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	return writeStatus(s, w, r, http.StatusNoContent, func(tx *store.Tx) error {
		return keys.DeleteAdminKey(r.Context(), tx, p.Actor(), p.EnterpriseAccountID, r.PathValue("key_id"))
	})
}
