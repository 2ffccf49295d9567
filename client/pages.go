package client

import (
	"context"
	"fmt"
	"iter"
	"time"

	openapi_types "github.com/oapi-codegen/runtime/types"
)

// PageSize is the page size the iterators ask for: the most both Steward
// and Mistral serve.
const PageSize = 100

// pages yields the items of every page that fetch returns, from page 1 on.
// A page holding fewer than PageSize entries (n, which counts what the page
// holds besides the items yielded, such as invitations) is the last, so no
// page total is trusted; nor is a server that keeps answering full pages
// believed past total entries when it sends one.
func pages[T any](ctx context.Context, fetch func(ctx context.Context, page int) (items []T, n int, total *int, err error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		seen := 0
		for page := 1; ; page++ {
			items, n, total, err := fetch(ctx, page)
			if err != nil {
				var zero T
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			seen += n
			if n < PageSize || (total != nil && seen >= *total) {
				return
			}
		}
	}
}

// Members yields every member of the Organization (GET /users, page by
// page), or only those with email when it is not empty. Pending invitations,
// which the same pages list after the members, are left out.
func (a *Admin) Members(ctx context.Context, email string) iter.Seq2[AdminOrganizationMemberOUT, error] {
	return pages(ctx, func(ctx context.Context, page int) ([]AdminOrganizationMemberOUT, int, *int, error) {
		p := &UsersApiAdminUsersGetUsersParams{Page: new(page), PageSize: new(PageSize)}
		if email != "" {
			p.Email = &email
		}
		r, err := a.UsersApiAdminUsersGetUsersWithResponse(ctx, p)
		if err != nil {
			return nil, 0, nil, err
		}
		if r.JSON200 == nil {
			return nil, 0, nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
		}
		return r.JSON200.Members, len(r.JSON200.Members) + len(r.JSON200.Invites), r.JSON200.Total, nil
	})
}

// Workspaces yields every Workspace (GET /workspaces), archived ones too
// when archived is true.
func (a *Admin) Workspaces(ctx context.Context, archived bool) iter.Seq2[WorkspaceOUT, error] {
	return pages(ctx, func(ctx context.Context, page int) ([]WorkspaceOUT, int, *int, error) {
		r, err := a.UsersApiAdminWorkspacesGetWorkspacesWithResponse(ctx, &UsersApiAdminWorkspacesGetWorkspacesParams{
			Page: new(page), PageSize: new(PageSize), IsArchived: new(archived)})
		if err != nil {
			return nil, 0, nil, err
		}
		if r.JSON200 == nil {
			return nil, 0, nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
		}
		return r.JSON200.Items, len(r.JSON200.Items), &r.JSON200.Total, nil
	})
}

// UserGroups yields every user group (GET /user-groups).
func (a *Admin) UserGroups(ctx context.Context) iter.Seq2[AdminUserGroupOut, error] {
	return pages(ctx, func(ctx context.Context, page int) ([]AdminUserGroupOut, int, *int, error) {
		r, err := a.UsersApiAdminUserGroupsGetUserGroupsWithResponse(ctx, &UsersApiAdminUserGroupsGetUserGroupsParams{
			Page: new(page), PageSize: new(PageSize)})
		if err != nil {
			return nil, 0, nil, err
		}
		if r.JSON200 == nil {
			return nil, 0, nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
		}
		return r.JSON200.Items, len(r.JSON200.Items), &r.JSON200.Total, nil
	})
}

// UserGroupMembers yields every member of a user group.
func (a *Admin) UserGroupMembers(ctx context.Context, group openapi_types.UUID) iter.Seq2[AdminUserGroupMemberOut, error] {
	return pages(ctx, func(ctx context.Context, page int) ([]AdminUserGroupMemberOut, int, *int, error) {
		r, err := a.UsersApiAdminUserGroupsGetUserGroupMembersWithResponse(ctx, group, &UsersApiAdminUserGroupsGetUserGroupMembersParams{
			Page: new(page), PageSize: new(PageSize)})
		if err != nil {
			return nil, 0, nil, err
		}
		if r.JSON200 == nil {
			return nil, 0, nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
		}
		return r.JSON200.Members, len(r.JSON200.Members), &r.JSON200.Total, nil
	})
}

// UserGroupWorkspaces yields every Workspace assignment of a user group.
func (a *Admin) UserGroupWorkspaces(ctx context.Context, group openapi_types.UUID) iter.Seq2[GroupWorkspaceAssignmentOut, error] {
	return pages(ctx, func(ctx context.Context, page int) ([]GroupWorkspaceAssignmentOut, int, *int, error) {
		r, err := a.UsersAdminUserGroupsGetGroupWorkspaceAssignmentsWithResponse(ctx, group, &UsersAdminUserGroupsGetGroupWorkspaceAssignmentsParams{
			Page: new(page), PageSize: new(PageSize)})
		if err != nil {
			return nil, 0, nil, err
		}
		if r.JSON200 == nil {
			return nil, 0, nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
		}
		return r.JSON200.Items, len(r.JSON200.Items), &r.JSON200.Total, nil
	})
}

// APIKeys yields every Workspace API key (GET /api-keys, by offset), or
// those whose name contains name when it is not empty.
func (a *Admin) APIKeys(ctx context.Context, name string) iter.Seq2[APIKeyExtendedOUT, error] {
	return pages(ctx, func(ctx context.Context, page int) ([]APIKeyExtendedOUT, int, *int, error) {
		p := &UsersApiAdminApiKeysGetApiKeysParams{Limit: new(PageSize), Offset: new((page - 1) * PageSize)}
		if name != "" {
			p.Name = &name
		}
		r, err := a.UsersApiAdminApiKeysGetApiKeysWithResponse(ctx, p)
		if err != nil {
			return nil, 0, nil, err
		}
		if r.JSON200 == nil {
			return nil, 0, nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
		}
		return r.JSON200.Keys, len(r.JSON200.Keys), nil, nil
	})
}

// AuditLogs yields every audit log entry matching params, newest first,
// page by page: each next page asks for the entries before the oldest one
// seen. AuditLogs sets params' Sort, Before and Limit.
func (a *Admin) AuditLogs(ctx context.Context, params UsersApiAdminAuditLogsGetAuditLogsParams) iter.Seq2[AuditLogOut, error] {
	return func(yield func(AuditLogOut, error) bool) {
		p := params
		p.Sort = new(Descending)
		p.Limit = new(PageSize)
		var edge logEdge
		for {
			entries, err := a.auditPage(ctx, &p)
			if err != nil {
				yield(AuditLogOut{}, err)
				return
			}
			fresh := edge.fresh(entries)
			for _, e := range fresh {
				if !yield(e, nil) {
					return
				}
			}
			if len(entries) < PageSize || len(fresh) == 0 {
				return
			}
			p.Before = new(edge.at.Add(time.Microsecond))
		}
	}
}

// FollowAuditLogs yields the audit log entries matching params recorded
// from since on, oldest first, and then each new one as it is recorded,
// asking every interval, until ctx ends (which it does not report) or a
// request fails. FollowAuditLogs sets params' Sort, After and Limit.
func (a *Admin) FollowAuditLogs(ctx context.Context, params UsersApiAdminAuditLogsGetAuditLogsParams, since time.Time, interval time.Duration) iter.Seq2[AuditLogOut, error] {
	return func(yield func(AuditLogOut, error) bool) {
		p := params
		p.Sort = new(Ascending)
		p.Limit = new(PageSize)
		edge := logEdge{at: since}
		for {
			p.After = new(edge.at.Add(-time.Microsecond))
			entries, err := a.auditPage(ctx, &p)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				yield(AuditLogOut{}, err)
				return
			}
			for _, e := range edge.fresh(entries) {
				if !yield(e, nil) {
					return
				}
			}
			if len(entries) == PageSize {
				continue
			}
			if sleep(ctx, interval) != nil {
				return
			}
		}
	}
}

// logEdge is where a walk through the audit log stands: the time of the
// last entry yielded and the entries yielded at that time. The API filters
// by time, and several entries may share a microsecond, so each next page
// overlaps the last by that microsecond and skips what was yielded.
type logEdge struct {
	at  time.Time
	ids map[int]bool
}

// fresh returns the entries not yielded yet and moves the edge past them.
func (e *logEdge) fresh(entries []AuditLogOut) []AuditLogOut {
	var out []AuditLogOut
	for _, x := range entries {
		if e.ids[x.LogId] && x.CreatedAt.Equal(e.at) {
			continue
		}
		out = append(out, x)
		if !x.CreatedAt.Equal(e.at) || e.ids == nil {
			e.at, e.ids = x.CreatedAt, map[int]bool{}
		}
		e.ids[x.LogId] = true
	}
	return out
}

func (a *Admin) auditPage(ctx context.Context, p *UsersApiAdminAuditLogsGetAuditLogsParams) ([]AuditLogOut, error) {
	r, err := a.UsersApiAdminAuditLogsGetAuditLogsWithResponse(ctx, p)
	if err != nil {
		return nil, err
	}
	if r.JSON200 == nil {
		return nil, unexpected(r.HTTPResponse.StatusCode, r.Body)
	}
	return *r.JSON200, nil
}

// unexpected reports a successful answer that is not the JSON the
// operation describes, such as a proxy's HTML page.
func unexpected(status int, body []byte) error {
	if len(body) > 80 {
		body = body[:80]
	}
	return fmt.Errorf("client: unexpected answer (HTTP %d): %q", status, body)
}
