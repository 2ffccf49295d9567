package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

// inviteIn is Mistral's OrganizationInviteIN.
type inviteIn struct {
	roleFields
	Email                             *string  `json:"email"`
	SubscriptionType                  *string  `json:"subscription_type"`
	SubscriptionTypes                 []string `json:"subscription_types"`
	SubscriptionSeatAutomaticGranting bool     `json:"subscription_seat_automatic_granting"`
	EmailLanguage                     *string  `json:"email_language"`
	WorkspaceUUIDs                    []string `json:"workspace_uuids"`
}

type invitesCreateOut struct {
	InvalidEmails       []string `json:"invalid_emails"`
	AlreadyMembers      []string `json:"already_members"`
	InvitedMembersCount int      `json:"invited_members_count"`
}

func (s *Server) handleInviteUsers(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var in inviteIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Email == nil {
		return steward.Invalid([]string{"body", "email"}, "email is required")
	}
	seats := in.SubscriptionTypes
	if in.SubscriptionType != nil {
		seats = append(seats, *in.SubscriptionType)
	}
	res, err := s.directory.Invite(r.Context(), p.Actor(), p.OrganizationID, directory.InviteInput{
		Emails: *in.Email, Roles: in.input(), SubscriptionTypes: seats,
		SeatAutomaticGranting: in.SubscriptionSeatAutomaticGranting, EmailLanguage: in.EmailLanguage,
		WorkspaceIDs: in.WorkspaceUUIDs,
	})
	return writeResult(w, invitesCreateOut{InvalidEmails: res.InvalidEmails, AlreadyMembers: res.AlreadyMembers, InvitedMembersCount: res.Invited}, err)
}

// userInviteOut is Mistral's OrganizationUserInviteOUT.
type userInviteOut struct {
	InviteUUID string   `json:"invite_uuid"`
	Email      *string  `json:"email"`
	Roles      []string `json:"roles"`
	Role       string   `json:"role"`
}

func (s *Server) handleListInvites(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	invs, err := s.directory.ListInvitations(r.Context(), p.OrganizationID, false)
	out := make([]userInviteOut, len(invs))
	for i, inv := range invs {
		out[i] = userInviteOut{InviteUUID: inv.ID, Email: &inv.Email}
		out[i].Roles, out[i].Role = builtinRoles(steward.ScopeOrganization, inv.RoleIDs)
	}
	return writeResult(w, out, err)
}

func (s *Server) handleDeleteInvite(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	err := s.directory.RevokeInvitation(r.Context(), p.Actor(), p.OrganizationID, r.PathValue("invite_uuid"))
	return writeResult(w, deleteOut{Message: "Invitation deleted successfully"}, err)
}

type acceptIn struct {
	Token     *string `json:"token"`
	FirstName *string `json:"first_name"`
	LastName  *string `json:"last_name"`
}

type acceptOut struct {
	UserUUID         string   `json:"user_uuid"`
	OrganizationUUID string   `json:"organization_uuid"`
	Email            string   `json:"email"`
	WorkspaceUUIDs   []string `json:"workspace_uuids"`
}

// handleAcceptInvite accepts an invitation; the one-time token is the
// credential, so the route needs no key.
func (s *Server) handleAcceptInvite(w http.ResponseWriter, r *http.Request, _ steward.Principal) error {
	var in acceptIn
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Token == nil || *in.Token == "" {
		return steward.Invalid([]string{"body", "token"}, "token is required")
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	w.Header().Set("Cache-Control", "no-store")
	res, err := s.directory.AcceptInvitation(r.Context(), *in.Token, deref(in.FirstName), deref(in.LastName))
	return writeResult(w, acceptOut{UserUUID: res.User.ID, OrganizationUUID: res.OrganizationID, Email: res.User.Email, WorkspaceUUIDs: res.WorkspaceIDs}, err)
}
