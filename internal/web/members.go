package web

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
)

const membersPerPage = 50

type memberRow struct {
	steward.Member
	RoleNames []string
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
		res, err := h.directory.ListMembers(ctx, c.org.ID, "", d.Page, membersPerPage)
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
