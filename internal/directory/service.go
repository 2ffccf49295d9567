package directory

import (
	"context"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

// Service is the directory as the surfaces (Admin API, Backoffice API, web
// pages) use it: each method is one transaction, a read-only one for reads,
// and a change writes its audit entries in it. Its errors are those of the
// function of the same name, which takes the caller's Tx so that others
// (bootstrap, scim) compose it with their own changes; a method given an
// orgID also returns KindNotFound if that Organization does not exist.
type Service struct {
	db          *store.DB
	invitations InviteSettings
}

// NewService returns the directory over db; invitations says how Invite
// makes invitations.
func NewService(db *store.DB, invitations InviteSettings) *Service {
	return &Service{db: db, invitations: invitations}
}

// Change returns what fn returns from one read-write transaction, given the
// Organization orgID; returns KindNotFound if it does not exist.
func Change[T any](ctx context.Context, db *store.DB, orgID string, fn func(tx *store.Tx, org steward.Organization) (T, error)) (T, error) {
	org, err := Organization(ctx, db, orgID)
	if err != nil {
		var zero T
		return zero, err
	}
	return store.Write(ctx, db, func(tx *store.Tx) (T, error) { return fn(tx, org) })
}

// TopicOrganizations is the change topic of the Organizations' own rows
// (steward.Organization), which nothing changes once they are created: a
// change of one would publish it.
const TopicOrganizations = "organizations"

type organizationsKey struct{}

// Organization returns an Organization from the process's memory of db's
// Organizations, reading it on first use: every Admin API write reads its
// Organization, which would otherwise cost it a round trip.
func Organization(ctx context.Context, db *store.DB, id string) (steward.Organization, error) {
	orgs := store.Shared(db, organizationsKey{}, func() *store.Cache[steward.Organization] {
		return store.NewCache(db, TopicOrganizations, func(ctx context.Context, id string) (steward.Organization, error) {
			return store.Read(ctx, db, func(tx *store.Tx) (steward.Organization, error) { return GetOrganization(ctx, tx, id) })
		})
	})
	return orgs.Get(ctx, id)
}

// InOrganization is Change for a change that returns nothing but its
// error.
func InOrganization(ctx context.Context, db *store.DB, orgID string, fn func(tx *store.Tx, org steward.Organization) error) error {
	_, err := Change(ctx, db, orgID, func(tx *store.Tx, org steward.Organization) (struct{}, error) {
		return struct{}{}, fn(tx, org)
	})
	return err
}

// Members and invitations.

// ListMembers returns a page of the Organization's members and pending
// invitations; its AsOf is the time their expiry is judged at.
func (s *Service) ListMembers(ctx context.Context, orgID, email string, page, pageSize int) (MemberPage, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (MemberPage, error) {
		res, err := ListMembers(ctx, tx, orgID, email, page, pageSize)
		res.AsOf = tx.Now
		return res, err
	})
}

// GetMember returns one member, or KindNotFound.
func (s *Service) GetMember(ctx context.Context, orgID, userID string) (steward.Member, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (steward.Member, error) {
		return GetMember(ctx, tx, orgID, userID)
	})
}

// MemberEmails returns the addresses of those of ids who are members of
// the Organization.
func (s *Service) MemberEmails(ctx context.Context, orgID string, ids []string) (map[string]string, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (map[string]string, error) { return MemberEmails(ctx, tx, orgID, ids) })
}

// MemberRoles returns one member (or KindNotFound) and the Organization's
// role catalogue, to name every role they hold.
func (s *Service) MemberRoles(ctx context.Context, orgID, userID string) (steward.Member, *Catalog, error) {
	type out struct {
		m   steward.Member
		cat *Catalog
	}
	o, err := store.Read(ctx, s.db, func(tx *store.Tx) (out, error) {
		m, err := GetMember(ctx, tx, orgID, userID)
		if err != nil {
			return out{}, err
		}
		cat, err := LoadCatalog(ctx, tx, orgID)
		return out{m, cat}, err
	})
	return o.m, o.cat, err
}

// CreateMembers adds a batch of members.
func (s *Service) CreateMembers(ctx context.Context, actor steward.Actor, orgID string, batch []NewMember) (CreateResult, error) {
	return Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (CreateResult, error) {
		return CreateMembers(ctx, tx, actor, org, batch)
	})
}

// UpdateMember changes a member's roles or seats.
func (s *Service) UpdateMember(ctx context.Context, actor steward.Actor, orgID, userID string, up MemberUpdate) (steward.Member, error) {
	return Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (steward.Member, error) {
		return UpdateMember(ctx, tx, actor, org, userID, up)
	})
}

// RemoveMember takes a member out of the Organization.
func (s *Service) RemoveMember(ctx context.Context, actor steward.Actor, orgID, userID string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return RemoveMember(ctx, tx, actor, org, userID)
	})
}

// Invite invites people, with the service's invitation settings.
func (s *Service) Invite(ctx context.Context, actor steward.Actor, orgID string, in InviteInput) (InviteResult, error) {
	return Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (InviteResult, error) {
		return Invite(ctx, tx, actor, org, s.invitations, in)
	})
}

// ListInvitations returns the Organization's invitations.
func (s *Service) ListInvitations(ctx context.Context, orgID string, includeExpired bool) ([]steward.Invitation, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]steward.Invitation, error) {
		return ListInvitations(ctx, tx, orgID, includeExpired)
	})
}

// RevokeInvitation revokes a pending invitation.
func (s *Service) RevokeInvitation(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return RevokeInvitation(ctx, tx, actor, org, id)
	})
}

// PendingInvitation returns the invitation of a token and its Organization
// while it may be accepted.
func (s *Service) PendingInvitation(ctx context.Context, token string) (steward.Invitation, steward.Organization, error) {
	type out struct {
		inv steward.Invitation
		org steward.Organization
	}
	o, err := store.Read(ctx, s.db, func(tx *store.Tx) (out, error) {
		inv, org, err := PendingInvitation(ctx, tx, token)
		return out{inv, org}, err
	})
	return o.inv, o.org, err
}

// AcceptInvitation accepts the invitation of a token.
func (s *Service) AcceptInvitation(ctx context.Context, token, firstName, lastName string) (Accepted, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (Accepted, error) {
		return AcceptInvitation(ctx, tx, token, firstName, lastName)
	})
}

// Groups.

// ListGroups returns a page of the Organization's groups and their total.
func (s *Service) ListGroups(ctx context.Context, orgID, search string, page, pageSize int) ([]steward.Group, int, error) {
	return page2(store.Read(ctx, s.db, func(tx *store.Tx) (paged[steward.Group], error) {
		list, total, err := ListGroups(ctx, tx, orgID, search, page, pageSize)
		return paged[steward.Group]{list, total}, err
	}))
}

// GetGroup returns one group, or KindNotFound.
func (s *Service) GetGroup(ctx context.Context, orgID, id string) (steward.Group, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (steward.Group, error) {
		return GetGroup(ctx, tx, orgID, id)
	})
}

// CreateGroup creates a group.
func (s *Service) CreateGroup(ctx context.Context, actor steward.Actor, orgID string, in GroupInput) (steward.Group, error) {
	return Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (steward.Group, error) {
		return CreateGroup(ctx, tx, actor, org, in)
	})
}

// UpdateGroup changes a group.
func (s *Service) UpdateGroup(ctx context.Context, actor steward.Actor, orgID, id string, in GroupInput) (steward.Group, error) {
	return Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (steward.Group, error) {
		return UpdateGroup(ctx, tx, actor, org, id, in)
	})
}

// DeleteGroup deletes a group.
func (s *Service) DeleteGroup(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return DeleteGroup(ctx, tx, actor, org, id)
	})
}

// ListGroupMembers returns a page of a group's members and their total.
func (s *Service) ListGroupMembers(ctx context.Context, orgID, id string, page, pageSize int) ([]steward.User, int, error) {
	return page2(store.Read(ctx, s.db, func(tx *store.Tx) (paged[steward.User], error) {
		list, total, err := ListGroupMembers(ctx, tx, orgID, id, page, pageSize)
		return paged[steward.User]{list, total}, err
	}))
}

// ChangeGroupMembers adds users to a group, or removes them.
func (s *Service) ChangeGroupMembers(ctx context.Context, actor steward.Actor, orgID, id string, userIDs []string, remove bool) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return ChangeGroupMembers(ctx, tx, actor, org, id, userIDs, remove)
	})
}

// NestedGroups returns a group's children.
func (s *Service) NestedGroups(ctx context.Context, orgID, id string) ([]steward.Group, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]steward.Group, error) {
		return NestedGroups(ctx, tx, orgID, id)
	})
}

// SetNestedGroups replaces a group's children.
func (s *Service) SetNestedGroups(ctx context.Context, actor steward.Actor, orgID, id string, childIDs []string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return SetNestedGroups(ctx, tx, actor, org, id, childIDs)
	})
}

// SetGroupOrganizationRole sets the Organization role a group grants.
func (s *Service) SetGroupOrganizationRole(ctx context.Context, actor steward.Actor, orgID, id, role string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return SetGroupOrganizationRole(ctx, tx, actor, org, id, role)
	})
}

// AssignmentPage is a page of a group's Workspace assignments, with the
// catalogue that names their roles.
type AssignmentPage struct {
	Assignments []Assignment
	Total       int
	Catalog     *Catalog
}

// ListAssignments returns a page of a group's Workspace assignments.
func (s *Service) ListAssignments(ctx context.Context, orgID, id string, page, pageSize int) (AssignmentPage, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (AssignmentPage, error) {
		list, total, err := ListAssignments(ctx, tx, orgID, id, page, pageSize)
		if err != nil {
			return AssignmentPage{}, err
		}
		cat, err := LoadCatalog(ctx, tx, orgID)
		return AssignmentPage{Assignments: list, Total: total, Catalog: cat}, err
	})
}

// AssignGroup assigns a group to a Workspace.
func (s *Service) AssignGroup(ctx context.Context, actor steward.Actor, orgID string, in AssignmentChange) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return AssignGroup(ctx, tx, actor, org, in)
	})
}

// UpdateAssignment changes the roles of a group's assignment.
func (s *Service) UpdateAssignment(ctx context.Context, actor steward.Actor, orgID string, in AssignmentChange) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return UpdateAssignment(ctx, tx, actor, org, in)
	})
}

// RemoveAssignment takes a group out of a Workspace.
func (s *Service) RemoveAssignment(ctx context.Context, actor steward.Actor, orgID, groupID, workspaceID string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return RemoveAssignment(ctx, tx, actor, org, groupID, workspaceID)
	})
}

// AccessExplanation is what explains a member's access: the access graph
// loaded for them and the names of their groups.
type AccessExplanation struct {
	Graph      *steward.AccessGraph
	GroupNames map[string]string
}

// ExplainAccess loads what explains a member's access in a Workspace;
// returns KindNotFound if the member or the Workspace does not exist.
func (s *Service) ExplainAccess(ctx context.Context, orgID, userID, workspaceID string) (AccessExplanation, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (AccessExplanation, error) {
		if _, err := GetMember(ctx, tx, orgID, userID); err != nil {
			return AccessExplanation{}, err
		}
		if _, err := GetWorkspace(ctx, tx, orgID, workspaceID); err != nil {
			return AccessExplanation{}, err
		}
		g, err := LoadGraph(ctx, tx, orgID, userID)
		if err != nil {
			return AccessExplanation{}, err
		}
		names, err := GroupNames(ctx, tx, orgID, g.UserGroups(userID))
		return AccessExplanation{Graph: g, GroupNames: names}, err
	})
}

// Workspaces.

// ListWorkspaces returns a page of the Organization's Workspaces and their
// total.
func (s *Service) ListWorkspaces(ctx context.Context, orgID string, archived bool, search string, page, pageSize int) ([]steward.Workspace, int, error) {
	return page2(store.Read(ctx, s.db, func(tx *store.Tx) (paged[steward.Workspace], error) {
		list, total, err := ListWorkspaces(ctx, tx, orgID, archived, search, page, pageSize)
		return paged[steward.Workspace]{list, total}, err
	}))
}

// ActiveWorkspace returns a Workspace that may still be changed.
func (s *Service) ActiveWorkspace(ctx context.Context, orgID, id string) (steward.Workspace, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (steward.Workspace, error) { return ActiveWorkspace(ctx, tx, orgID, id) })
}

// CreateWorkspace creates a Workspace and returns it with the ids of the
// roles its admin holds there.
func (s *Service) CreateWorkspace(ctx context.Context, actor steward.Actor, orgID string, in NewWorkspace) (steward.Workspace, []string, error) {
	type out struct {
		ws    steward.Workspace
		roles []string
	}
	o, err := Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (out, error) {
		ws, err := CreateWorkspace(ctx, tx, actor, org, in)
		if err != nil {
			return out{}, err
		}
		g, err := LoadGraph(ctx, tx, org.ID, in.AdminUserID)
		if err != nil {
			return out{}, err
		}
		var ids []string
		for _, gr := range g.WorkspaceGrants(in.AdminUserID, ws.ID) {
			ids = append(ids, gr.RoleID)
		}
		return out{ws, ids}, nil
	})
	return o.ws, o.roles, err
}

// UpdateWorkspace changes a Workspace.
func (s *Service) UpdateWorkspace(ctx context.Context, actor steward.Actor, orgID, id string, in WorkspaceInput) (steward.Workspace, error) {
	return Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (steward.Workspace, error) {
		return UpdateWorkspace(ctx, tx, actor, org, id, in)
	})
}

// ArchiveWorkspace archives a Workspace.
func (s *Service) ArchiveWorkspace(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return InOrganization(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) error {
		return ArchiveWorkspace(ctx, tx, actor, org, id)
	})
}

// AddWorkspaceMembers adds members to a Workspace, or sets their roles
// there (overwrite), and returns how many were added and updated.
func (s *Service) AddWorkspaceMembers(ctx context.Context, actor steward.Actor, orgID, workspaceID string, in []WorkspaceMemberInput, overwrite bool) (added, updated int, err error) {
	o, err := Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) ([2]int, error) {
		a, u, err := AddWorkspaceMembers(ctx, tx, actor, org, workspaceID, in, overwrite)
		return [2]int{a, u}, err
	})
	return o[0], o[1], err
}

// RemoveWorkspaceMembers takes users out of a Workspace and returns how
// many were, and those who were not.
func (s *Service) RemoveWorkspaceMembers(ctx context.Context, actor steward.Actor, orgID, workspaceID string, userIDs []string) (int, []string, error) {
	o, err := Change(ctx, s.db, orgID, func(tx *store.Tx, org steward.Organization) (paged[string], error) {
		n, notDeleted, err := RemoveWorkspaceMembers(ctx, tx, actor, org, workspaceID, userIDs)
		return paged[string]{notDeleted, n}, err
	})
	return o.n, o.list, err
}

// Roles.

// Catalog returns the Organization's roles, built-in and custom.
func (s *Service) Catalog(ctx context.Context, orgID string) (*Catalog, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (*Catalog, error) {
		return LoadCatalog(ctx, tx, orgID)
	})
}

// ListCustomRoles returns the Organization's custom roles.
func (s *Service) ListCustomRoles(ctx context.Context, orgID string) ([]CustomRole, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]CustomRole, error) {
		return ListCustomRoles(ctx, tx, orgID)
	})
}

// GetCustomRole returns one custom role, or KindNotFound.
func (s *Service) GetCustomRole(ctx context.Context, orgID, id string) (CustomRole, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (CustomRole, error) {
		return GetCustomRole(ctx, tx, orgID, id)
	})
}

// CreateCustomRole creates a custom role.
func (s *Service) CreateCustomRole(ctx context.Context, actor steward.Actor, orgID string, in CustomRoleInput) (CustomRole, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (CustomRole, error) {
		return CreateCustomRole(ctx, tx, actor, orgID, in)
	})
}

// UpdateCustomRole changes a custom role.
func (s *Service) UpdateCustomRole(ctx context.Context, actor steward.Actor, orgID, id string, in CustomRoleInput) (CustomRole, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (CustomRole, error) {
		return UpdateCustomRole(ctx, tx, actor, orgID, id, in)
	})
}

// DeleteCustomRole deletes a custom role.
func (s *Service) DeleteCustomRole(ctx context.Context, actor steward.Actor, orgID, id string) error {
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		return DeleteCustomRole(ctx, tx, actor, orgID, id)
	})
}

// Enterprise Accounts (the Backoffice).

// GetEnterpriseAccount returns an Enterprise Account, or KindNotFound.
func (s *Service) GetEnterpriseAccount(ctx context.Context, id string) (steward.EnterpriseAccount, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) (steward.EnterpriseAccount, error) {
		return GetEnterpriseAccount(ctx, tx, id)
	})
}

// RenameEnterpriseAccount renames an Enterprise Account.
func (s *Service) RenameEnterpriseAccount(ctx context.Context, actor steward.Actor, id, name string) (steward.EnterpriseAccount, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (steward.EnterpriseAccount, error) {
		return RenameEnterpriseAccount(ctx, tx, actor, id, name)
	})
}

// ListOrganizations returns the account's Organizations and, in the same
// order, their member counts.
func (s *Service) ListOrganizations(ctx context.Context, enterpriseAccountID string) ([]steward.Organization, []int, error) {
	type out struct {
		orgs   []steward.Organization
		counts []int
	}
	o, err := store.Read(ctx, s.db, func(tx *store.Tx) (out, error) {
		orgs, counts, err := ListOrganizations(ctx, tx, enterpriseAccountID)
		return out{orgs, counts}, err
	})
	return o.orgs, o.counts, err
}

// CreateOrganization creates an Organization in the account, with its
// default Workspace.
func (s *Service) CreateOrganization(ctx context.Context, actor steward.Actor, enterpriseAccountID, name string) (steward.Organization, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (steward.Organization, error) {
		o, _, err := CreateOrganization(ctx, tx, actor, enterpriseAccountID, name)
		return o, err
	})
}

// PromoteToAdmin makes a member of the account an admin of one of its
// Organizations.
func (s *Service) PromoteToAdmin(ctx context.Context, actor steward.Actor, enterpriseAccountID, orgID, userID string) (steward.User, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (steward.User, error) {
		return PromoteToAdmin(ctx, tx, actor, enterpriseAccountID, orgID, userID)
	})
}

// ListEnterpriseMembers returns the account's members.
func (s *Service) ListEnterpriseMembers(ctx context.Context, enterpriseAccountID string) ([]EnterpriseMember, error) {
	return store.Read(ctx, s.db, func(tx *store.Tx) ([]EnterpriseMember, error) {
		return ListEnterpriseMembers(ctx, tx, enterpriseAccountID)
	})
}

// AddEnterpriseMember adds a member to the account, named by user id or
// by email.
func (s *Service) AddEnterpriseMember(ctx context.Context, actor steward.Actor, enterpriseAccountID, userID, email string) (EnterpriseMember, error) {
	return store.Write(ctx, s.db, func(tx *store.Tx) (EnterpriseMember, error) {
		return AddEnterpriseMember(ctx, tx, actor, enterpriseAccountID, userID, email)
	})
}

// RemoveEnterpriseMember takes a member out of the account.
func (s *Service) RemoveEnterpriseMember(ctx context.Context, actor steward.Actor, enterpriseAccountID, userID string) error {
	return s.db.Transact(ctx, func(tx *store.Tx) error {
		return RemoveEnterpriseMember(ctx, tx, actor, enterpriseAccountID, userID)
	})
}

// paged carries a list and a count out of one transaction.
type paged[T any] struct {
	list []T
	n    int
}

func page2[T any](p paged[T], err error) ([]T, int, error) { return p.list, p.n, err }
