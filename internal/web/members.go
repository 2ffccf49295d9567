package web

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

const membersPerPage = 50

type memberRow struct {
	steward.Member
	RoleNames []string
	// LastActive is when the member last used a session or a key; nil
	// when Steward has not seen them.
	LastActive *time.Time
	// Role is the member's built-in Organization role, for the role form.
	Role string
}

type inviteRow struct {
	steward.Invitation
	RoleNames []string
}

type membersData struct {
	Members     []memberRow
	Invitations []inviteRow
	Roles       []steward.Role
	Workspaces  []steward.Workspace
	Page        int
	Prev, Next  int
	// Query is the search of members by name or address.
	Query string
}

func roleNames(cat *directory.Catalog, ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if role, ok := cat.Role(id); ok {
			out = append(out, role.Name)
		}
	}
	return out
}

func (h *Handler) membersView(r *http.Request, c *reqCtx) (page, error) {
	p := c.page("Members", "members")
	d := membersData{Page: pageNumber(r)}
	err := func() error {
		ctx := r.Context()
		d.Query = strings.TrimSpace(r.URL.Query().Get("q"))
		var res directory.MemberPage
		var err error
		if d.Query == "" {
			res, err = h.directory.ListMembers(ctx, c.org.ID, "", d.Page, membersPerPage)
		} else {
			res, err = h.searchMembers(r, c, d.Query)
		}
		if err != nil {
			return err
		}
		ids := make([]string, len(res.Members))
		for i, m := range res.Members {
			ids[i] = m.User.ID
		}
		active, err := h.directory.LastActive(ctx, c.org.ID, ids)
		if err != nil {
			return err
		}
		cat, err := h.directory.Catalog(ctx, c.org.ID)
		if err != nil {
			return err
		}
		d.Roles = cat.Roles(steward.ScopeOrganization)
		for _, m := range res.Members {
			row := memberRow{Member: m, RoleNames: roleNames(cat, m.RoleIDs)}
			if at, ok := active[m.User.ID]; ok {
				row.LastActive = &at
			}
			for _, id := range m.RoleIDs {
				if _, ok := steward.BuiltinRole(steward.ScopeOrganization, id); ok {
					row.Role = id
				}
			}
			d.Members = append(d.Members, row)
		}
		for _, inv := range res.Invitations {
			d.Invitations = append(d.Invitations, inviteRow{Invitation: inv, RoleNames: roleNames(cat, inv.RoleIDs)})
		}
		if d.Page > 1 {
			d.Prev = d.Page - 1
		}
		if d.Page*membersPerPage < res.Total {
			d.Next = d.Page + 1
		}
		d.Workspaces, _, err = h.directory.ListWorkspaces(ctx, c.org.ID, false, "", 1, directory.MaxPageSize)
		return err
	}()
	p.Data = d
	return p, err
}

// searchMembers finds the members whose name or address holds query (the
// first membersPerPage), and the pending invitations whose address does.
func (h *Handler) searchMembers(r *http.Request, c *reqCtx, query string) (directory.MemberPage, error) {
	var res directory.MemberPage
	var err error
	if res.Members, err = h.directory.SearchMembers(r.Context(), c.org.ID, query, membersPerPage); err != nil {
		return res, err
	}
	invitations, err := h.directory.ListInvitations(r.Context(), c.org.ID, false)
	for _, inv := range invitations {
		if inv.AcceptedAt == nil && inv.RevokedAt == nil && strings.Contains(strings.ToLower(inv.Email), strings.ToLower(query)) {
			res.Invitations = append(res.Invitations, inv)
		}
	}
	return res, err
}

func (h *Handler) invite(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	role := r.PostFormValue("role")
	in := directory.InviteInput{Emails: r.PostFormValue("emails"), Roles: directory.RoleInput{Roles: &[]string{role}}, WorkspaceIDs: r.PostForm["workspace"]}
	res, err := h.directory.Invite(r.Context(), c.p.Actor(), c.org.ID, in)
	if err != nil {
		return h.again(w, r, c, "members", err)
	}
	return h.showWith(w, r, c, "members", func(p *page) {
		notice := fmt.Sprintf("%d invitation(s) sent.", res.Invited)
		if len(res.AlreadyMembers) > 0 {
			notice += " Already members: " + strings.Join(res.AlreadyMembers, ", ") + "."
		}
		if len(res.InvalidEmails) > 0 {
			notice += " Not valid addresses: " + strings.Join(res.InvalidEmails, ", ") + "."
		}
		p.Flash = notice
	})
}

// resendInvite sends a pending invitation again, with its roles,
// Workspaces and seats: a new link, and the old one stops working.
func (h *Handler) resendInvite(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	invitations, err := h.directory.ListInvitations(r.Context(), c.org.ID, true)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(invitations, func(inv steward.Invitation) bool {
		return inv.ID == r.PathValue("id") && inv.AcceptedAt == nil && inv.RevokedAt == nil
	})
	if i < 0 {
		return h.again(w, r, c, "members", steward.Errorf(steward.KindNotFound, "there is no such pending invitation"))
	}
	inv := invitations[i]
	roles := inv.RoleIDs
	in := directory.InviteInput{Emails: inv.Email, Roles: directory.RoleInput{Roles: &roles}, WorkspaceIDs: inv.WorkspaceIDs,
		SubscriptionTypes: inv.SubscriptionTypes, SeatAutomaticGranting: inv.SeatAutomaticGranting}
	if inv.EmailLanguage != "" {
		in.EmailLanguage = &inv.EmailLanguage
	}
	if _, err := h.directory.Invite(r.Context(), c.p.Actor(), c.org.ID, in); err != nil {
		return h.again(w, r, c, "members", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/members", "invite_resent")
}

func (h *Handler) revokeInvite(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.directory.RevokeInvitation(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("id"))
	if err != nil {
		return h.again(w, r, c, "members", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/members", "invite_revoked")
}

func (h *Handler) setMemberRole(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	_, err := h.directory.UpdateMember(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("user"),
		directory.MemberUpdate{Roles: directory.RoleInput{Roles: &[]string{r.PostFormValue("role")}}})
	if err != nil {
		return h.again(w, r, c, "members", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/members", "member_updated")
}

func (h *Handler) removeMember(w http.ResponseWriter, r *http.Request, c *reqCtx) error {
	err := h.directory.RemoveMember(r.Context(), c.p.Actor(), c.org.ID, r.PathValue("user"))
	if err != nil {
		return h.again(w, r, c, "members", err)
	}
	return done(w, r, Prefix+"/o/"+c.org.ID+"/members", "member_removed")
}
