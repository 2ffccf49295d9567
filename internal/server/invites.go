package server

import (
	"net/http"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
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
	var res directory.InviteResult
	err := s.deps.DB.Transact(r.Context(), func(tx *store.Tx) error {
		org, err := s.organization(r, tx, p)
		if err != nil {
			return err
		}
		res, err = directory.Invite(r.Context(), tx, p.Actor(), org, s.deps.Invitations, directory.InviteInput{
			Emails: *in.Email, Roles: in.input(), SubscriptionTypes: seats,
			SeatAutomaticGranting: in.SubscriptionSeatAutomaticGranting, EmailLanguage: in.EmailLanguage,
			WorkspaceIDs: in.WorkspaceUUIDs,
		})
		return err
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, invitesCreateOut{InvalidEmails: res.InvalidEmails, AlreadyMembers: res.AlreadyMembers, InvitedMembersCount: res.Invited})
	return nil
}

// userInviteOut is Mistral's OrganizationUserInviteOUT.
type userInviteOut struct {
	InviteUUID string   `json:"invite_uuid"`
	Email      *string  `json:"email"`
	Roles      []string `json:"roles"`
	Role       string   `json:"role"`
}

func (s *Server) handleListInvites(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	var invs []steward.Invitation
	err := s.deps.DB.View(r.Context(), func(tx *store.Tx) error {
		var err error
		invs, err = directory.ListInvitations(r.Context(), tx, p.OrganizationID, false)
		return err
	})
	if err != nil {
		return err
	}
	out := make([]userInviteOut, len(invs))
	for i, inv := range invs {
		out[i] = userInviteOut{InviteUUID: inv.ID, Email: &inv.Email}
		out[i].Roles, out[i].Role = builtinRoles(steward.ScopeOrganization, inv.RoleIDs)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) handleDeleteInvite(w http.ResponseWriter, r *http.Request, p steward.Principal) error {
	err := s.deps.DB.Transact(r.Context(), func(tx *store.Tx) error {
		org, err := s.organization(r, tx, p)
		if err != nil {
			return err
		}
		return directory.RevokeInvitation(r.Context(), tx, p.Actor(), org, r.PathValue("invite_uuid"))
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deleteOut{Message: "Invitation deleted successfully"})
	return nil
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
	var res directory.Accepted
	err := s.deps.DB.Transact(r.Context(), func(tx *store.Tx) error {
		var err error
		res, err = directory.AcceptInvitation(r.Context(), tx, *in.Token, deref(in.FirstName), deref(in.LastName))
		return err
	})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, acceptOut{UserUUID: res.User.ID, OrganizationUUID: res.OrganizationID, Email: res.User.Email, WorkspaceUUIDs: res.WorkspaceIDs})
	return nil
}
