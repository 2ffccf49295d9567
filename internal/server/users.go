package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// memberOut is Mistral's AdminOrganizationMemberOUT.
type memberOut struct {
	UUID              string               `json:"uuid"`
	OidID             *string              `json:"oid_id"`
	Name              *string              `json:"name"`
	Email             *string              `json:"email"`
	IsSSOOutsider     *bool                `json:"is_sso_outsider"`
	Workspaces        []memberWorkspaceOut `json:"workspaces"`
	Subscriptions     []subscriptionOut    `json:"subscriptions"`
	RawRoles          []string             `json:"raw_roles"`
	RawRole           string               `json:"raw_role"`
	SubscriptionTypes []string             `json:"subscription_types"`
	CreatedAt         string               `json:"created_at"`
}

// userOut is Mistral's AdminUserOUT: a member with their names.
type userOut struct {
	memberOut
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
}

type memberWorkspaceOut struct {
	UUID      string   `json:"uuid"`
	Name      string   `json:"name"`
	IsDefault bool     `json:"is_default"`
	RawRoles  []string `json:"raw_roles"`
	RawRole   string   `json:"raw_role"`
}

// subscriptionOut is Mistral's MemberSubscriptionOUT for one seat.
type subscriptionOut struct {
	Type            string  `json:"type"`
	Plan            *string `json:"plan"`
	Status          *string `json:"status"`
	User            *string `json:"user"`
	SelfService     *bool   `json:"self_service"`
	MemberHasAccess *bool   `json:"member_has_access"`
}

// productSeats are the seats Mistral's member objects list in
// subscription_types; every seat is listed in subscriptions.
var productSeats = []string{"CHAT", "MISTRAL_CODE"}

// builtinRoles returns the built-in roles among ids, in the catalogue's
// order, and the highest of them (the catalogue lists the least first).
func builtinRoles(scope steward.RoleScope, ids []string) ([]string, string) {
	out := []string{}
	for _, r := range steward.BuiltinRoles(scope) {
		if slices.Contains(ids, r.ID) {
			out = append(out, r.ID)
		}
	}
	if len(out) == 0 {
		return out, ""
	}
	return out, out[len(out)-1]
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// formatLocalTime writes t with the offset of its own location, for times
// that belong to an Organization's time zone (Z when that is UTC).
func formatLocalTime(t time.Time) string { return t.Format(time.RFC3339Nano) }

func newMemberOut(m steward.Member) memberOut {
	out := memberOut{
		UUID:              m.User.ID,
		Email:             &m.User.Email,
		IsSSOOutsider:     new(bool),
		Workspaces:        []memberWorkspaceOut{},
		Subscriptions:     []subscriptionOut{},
		SubscriptionTypes: []string{},
		CreatedAt:         formatTime(m.JoinedAt),
	}
	if name := strings.TrimSpace(m.User.FirstName + " " + m.User.LastName); name != "" {
		out.Name = &name
	}
	out.RawRoles, out.RawRole = builtinRoles(steward.ScopeOrganization, m.RoleIDs)
	access := true
	for _, seat := range m.SubscriptionTypes {
		out.Subscriptions = append(out.Subscriptions, subscriptionOut{Type: seat, MemberHasAccess: &access})
		if slices.Contains(productSeats, seat) {
			out.SubscriptionTypes = append(out.SubscriptionTypes, seat)
		}
	}
	for _, ws := range m.Workspaces {
		w := memberWorkspaceOut{UUID: ws.WorkspaceID, Name: ws.Name, IsDefault: ws.IsDefault}
		w.RawRoles, w.RawRole = builtinRoles(steward.ScopeWorkspace, ws.RoleIDs)
		if len(w.RawRoles) > 0 {
			out.Workspaces = append(out.Workspaces, w)
		}
	}
	return out
}

func newUserOut(m steward.Member) userOut {
	out := userOut{memberOut: newMemberOut(m)}
	if m.User.FirstName != "" {
		out.FirstName = &m.User.FirstName
	}
	if m.User.LastName != "" {
		out.LastName = &m.User.LastName
	}
	return out
}

// inviteOut is Mistral's OrganizationInviteOUT.
type inviteOut struct {
	UUID           string   `json:"uuid"`
	RawRoles       []string `json:"raw_roles"`
	RawRole        string   `json:"raw_role"`
	Email          string   `json:"email"`
	Expired        bool     `json:"expired"`
	CreatedAt      string   `json:"created_at"`
	WorkspaceUUIDs []string `json:"workspace_uuids"`
}

func newInviteOut(inv steward.Invitation, now time.Time) inviteOut {
	out := inviteOut{UUID: inv.ID, Email: inv.Email, Expired: inv.Expired(now), CreatedAt: formatTime(inv.CreatedAt), WorkspaceUUIDs: inv.WorkspaceIDs}
	out.RawRoles, out.RawRole = builtinRoles(steward.ScopeOrganization, inv.RoleIDs)
	return out
}

// usersPage is Mistral's OrganizationAdminUsersOUT.
type usersPage struct {
	Members  []memberOut `json:"members"`
	Invites  []inviteOut `json:"invites"`
	Total    int         `json:"total"`
	Page     int         `json:"page"`
	PageSize int         `json:"page_size"`
}

func (s *Server) handleListUsers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	q := newQuery(r)
	page, pageSize := q.paging()
	email := q.stringOr("email", "")
	if err := q.err(); err != nil {
		return err
	}
	res, err := s.directory.ListMembers(r.Context(), p.OrganizationID, email, page, pageSize)
	out := usersPage{Members: []memberOut{}, Invites: []inviteOut{}, Total: res.Total, Page: page, PageSize: pageSize}
	for _, m := range res.Members {
		out.Members = append(out.Members, newMemberOut(m))
	}
	for _, inv := range res.Invitations {
		out.Invites = append(out.Invites, newInviteOut(inv, res.AsOf))
	}
	return writeResult(w, out, err)
}

// roleFields are the role fields of Mistral's request bodies; null and
// absent are the same.
type roleFields struct {
	RoleNames *[]string `json:"role_names"`
	Roles     *[]string `json:"roles"`
	RoleName  *string   `json:"role_name"`
	Role      *string   `json:"role"`
}

func (f roleFields) input() directory.RoleInput {
	return directory.RoleInput{RoleNames: f.RoleNames, Roles: f.Roles, RoleName: f.RoleName, Role: f.Role}
}

// memberCreateIn is Mistral's OrganizationMemberCreate.
type memberCreateIn struct {
	roleFields
	Email             *string  `json:"email"`
	FirstName         *string  `json:"first_name"`
	LastName          *string  `json:"last_name"`
	SubscriptionTypes []string `json:"subscription_types"`
}

type usersCreateOut struct {
	InvalidEmails []string          `json:"invalid_emails"`
	EmailToUserID map[string]string `json:"email_to_user_id"`
}

func (s *Server) handleCreateUsers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in []memberCreateIn
	if err := decode(r, &in); err != nil {
		return err
	}
	batch := make([]directory.NewMember, len(in))
	var errs []*steward.Error
	for i, m := range in {
		errs = append(errs, missing([]string{"body", strconv.Itoa(i)}, field{"email", m.Email}, field{"first_name", m.FirstName}, field{"last_name", m.LastName})...)
		if len(errs) > 0 {
			continue
		}
		batch[i] = directory.NewMember{Email: *m.Email, FirstName: *m.FirstName, LastName: *m.LastName,
			Roles: m.input(), SubscriptionTypes: m.SubscriptionTypes}
	}
	if err := steward.Invalids(errs); err != nil {
		return err
	}
	res, err := s.directory.CreateMembers(r.Context(), p.Actor(), p.OrganizationID, batch)
	return writeResult(w, usersCreateOut{InvalidEmails: res.InvalidEmails, EmailToUserID: res.EmailToUserID}, err)
}

func (s *Server) handleGetUser(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	m, err := s.directory.GetMember(r.Context(), p.OrganizationID, r.PathValue("user_id"))
	return writeResult(w, newUserOut(m), err)
}

// memberUpdateIn is Mistral's AdminOrganizationMemberUpdate.
type memberUpdateIn struct {
	roleFields
	SubscriptionTypes *[]string `json:"subscription_types"`
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in memberUpdateIn
	if err := decode(r, &in); err != nil {
		return err
	}
	m, err := s.directory.UpdateMember(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("user_id"),
		directory.MemberUpdate{Roles: in.input(), SubscriptionTypes: in.SubscriptionTypes})
	return writeResult(w, newMemberOut(m), err)
}

// deleteOut is Mistral's DeleteOUT.
type deleteOut struct {
	Message string `json:"message"`
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	err := s.directory.RemoveMember(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("user_id"))
	return writeResult(w, deleteOut{Message: "Organization member deleted successfully"}, err)
}
