package server_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
)

const (
	roleMember   = steward.RoleIDOrganizationMember
	roleBilling  = steward.RoleIDOrganizationBilling
	roleAdmin    = steward.RoleIDOrganizationAdmin
	wsContrib    = steward.RoleIDWorkspaceContributor
	wsAdminRole  = steward.RoleIDWorkspaceAdmin
	usersPath    = "/v1/admin/users"
	invitePath   = "/v1/admin/users-invite"
	rolesPath    = "/v1/admin/roles"
	customPath   = "/v1/admin/custom-roles"
	defaultEmail = "admin@example.com"
)

type memberWorkspace struct {
	UUID      string   `json:"uuid"`
	Name      string   `json:"name"`
	IsDefault bool     `json:"is_default"`
	RawRoles  []string `json:"raw_roles"`
	RawRole   string   `json:"raw_role"`
}

type member struct {
	UUID              string            `json:"uuid"`
	Name              *string           `json:"name"`
	Email             string            `json:"email"`
	FirstName         *string           `json:"first_name"`
	LastName          *string           `json:"last_name"`
	RawRoles          []string          `json:"raw_roles"`
	RawRole           string            `json:"raw_role"`
	SubscriptionTypes []string          `json:"subscription_types"`
	Workspaces        []memberWorkspace `json:"workspaces"`
	Subscriptions     []struct {
		Type string `json:"type"`
	} `json:"subscriptions"`
}

type invite struct {
	UUID           string   `json:"uuid"`
	Email          string   `json:"email"`
	RawRoles       []string `json:"raw_roles"`
	Expired        bool     `json:"expired"`
	WorkspaceUUIDs []string `json:"workspace_uuids"`
}

type usersPage struct {
	Members  []member `json:"members"`
	Invites  []invite `json:"invites"`
	Total    int      `json:"total"`
	Page     int      `json:"page"`
	PageSize int      `json:"page_size"`
}

type createOut struct {
	InvalidEmails []string          `json:"invalid_emails"`
	EmailToUserID map[string]string `json:"email_to_user_id"`
}

func (h *harness) createUsers(t *testing.T, users ...map[string]any) createOut {
	t.Helper()
	var out createOut
	ok(t, h.send("POST", usersPath, users), &out)
	return out
}

func newUser(email string, extra ...any) map[string]any {
	u := map[string]any{"email": email, "first_name": "First", "last_name": "Last"}
	for i := 0; i+1 < len(extra); i += 2 {
		u[extra[i].(string)] = extra[i+1]
	}
	return u
}

func (h *harness) member(t *testing.T, id string) member {
	t.Helper()
	var m member
	ok(t, h.get(usersPath+"/"+id, h.boot.AdminKeySecret), &m)
	return m
}

func (h *harness) eventCount(t *testing.T, event string) int {
	t.Helper()
	return len(h.auditLogs(t, h.boot.AdminKeySecret, "limit=100&event_type="+event))
}

func TestCreateUsers(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		out := h.createUsers(t,
			newUser("ann@example.com", "role_names", []string{"billing_manager"}, "subscription_types", []string{"CHAT", "API"}),
			newUser("not-an-email"),
			newUser("Bob@Example.com", "roles", []string{"A"}),
			newUser("bob@example.COM"),
			newUser(defaultEmail),
			newUser("cy@example.com", "roles", []string{roleBilling, roleMember}),
			newUser("dee@example.com", "role_name", "organization_admin"),
			newUser("eve@example.com", "role", "B"),
		)
		if !slices.Equal(out.InvalidEmails, []string{"not-an-email", "bob@example.COM"}) {
			t.Errorf("invalid_emails = %v, want the bad and the repeated address", out.InvalidEmails)
		}
		if len(out.EmailToUserID) != 6 || out.EmailToUserID[defaultEmail] != h.boot.Admin.ID {
			t.Fatalf("email_to_user_id = %v, want 6 entries including the existing admin", out.EmailToUserID)
		}
		for email, want := range map[string][]string{
			"ann@example.com": {roleBilling},
			"Bob@Example.com": {roleAdmin},
			"cy@example.com":  {roleMember, roleBilling},
			"dee@example.com": {roleAdmin},
			"eve@example.com": {roleBilling},
		} {
			m := h.member(t, out.EmailToUserID[email])
			if !slices.Equal(m.RawRoles, want) || m.RawRole != want[len(want)-1] || m.Email != email {
				t.Errorf("%s: raw_roles %v raw_role %s email %s, want %v", email, m.RawRoles, m.RawRole, m.Email, want)
			}
			// An organization_admin is also workspace_admin of every Workspace.
			wantWS := []string{wsContrib}
			if slices.Contains(want, roleAdmin) {
				wantWS = append(wantWS, wsAdminRole)
			}
			if len(m.Workspaces) != 1 || m.Workspaces[0].UUID != h.boot.DefaultWorkspace.ID || !slices.Equal(m.Workspaces[0].RawRoles, wantWS) {
				t.Errorf("%s: workspaces %+v, want the default Workspace with %v", email, m.Workspaces, wantWS)
			}
			if m.FirstName == nil || *m.FirstName != "First" || m.Name == nil || *m.Name != "First Last" {
				t.Errorf("%s: names %v %v", email, m.FirstName, m.Name)
			}
		}
		ann := h.member(t, out.EmailToUserID["ann@example.com"])
		if !slices.Equal(ann.SubscriptionTypes, []string{"CHAT"}) || len(ann.Subscriptions) != 2 {
			t.Errorf("ann's seats: subscription_types %v, subscriptions %+v", ann.SubscriptionTypes, ann.Subscriptions)
		}
		if n := h.eventCount(t, "user.create"); n != 6 {
			t.Errorf("%d user.create entries, want 6 (the bootstrap admin and five new members)", n)
		}
		// The existing admin was left as they were.
		if m := h.member(t, h.boot.Admin.ID); !slices.Equal(m.RawRoles, []string{roleAdmin}) {
			t.Errorf("existing admin's roles changed to %v", m.RawRoles)
		}
	})
}

func TestCreateUsersValidation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, tc := range []struct {
			name   string
			body   any
			fields []string
		}{
			{"not an array", map[string]any{"email": "a@b.c"}, []string{"body"}},
			{"missing names", []any{newUser("x@y.z"), map[string]any{"email": "a@b.c"}}, []string{"body.1.first_name", "body.1.last_name"}},
			{"names and roles together", []any{newUser("a@b.c", "role_names", []string{"member"}, "roles", []string{"M"})}, []string{"body.0.role_names", "body.0.roles"}},
			{"unknown role name", []any{newUser("a@b.c", "role_names", []string{"member", "overlord"})}, []string{"body.0.role_names.1"}},
			{"workspace role for the Organization", []any{newUser("a@b.c", "role_names", []string{"workspace_admin"})}, []string{"body.0.role_names.0"}},
			{"empty role list", []any{newUser("a@b.c", "roles", []string{})}, []string{"body.0.roles"}},
			{"unknown seat", []any{newUser("a@b.c", "subscription_types", []string{"GOLD"})}, []string{"body.0.subscription_types"}},
			{"unknown field", []any{newUser("a@b.c", "nickname", "x")}, []string{"body.nickname"}},
			{"wrong type", []any{newUser("a@b.c", "first_name", 7)}, []string{"body.first_name"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := h.send("POST", usersPath, tc.body)
				expectValidation(t, r, tc.fields...)
			})
		}
		v := expectValidation(t, h.send("POST", usersPath, []any{newUser("a@b.c", "role_names", []string{"member"}, "roles", []string{"M"})}), "body.0.role_names", "body.0.roles")
		if !strings.Contains(v.Detail[0].Msg, "mutually exclusive") {
			t.Errorf("mutually exclusive fields: %+v", v.Detail)
		}
		many := make([]any, 1001)
		for i := range many {
			many[i] = newUser(fmt.Sprintf("u%d@example.com", i))
		}
		v = expectValidation(t, h.send("POST", usersPath, many), "body")
		if !strings.Contains(v.Detail[0].Msg, "1000") {
			t.Errorf("batch limit message %q does not name the limit", v.Detail[0].Msg)
		}
		big := []byte(`[{"email":"a@b.c","first_name":"` + strings.Repeat("x", 1<<20) + `","last_name":"y"}]`)
		r := h.do("POST", usersPath, big, "x-api-key", h.boot.AdminKeySecret)
		expectError(t, r, http.StatusRequestEntityTooLarge, "invalid_request_error")
		var n int
		_ = h.db.View(context.Background(), func(tx *store.Tx) error {
			return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM organization_members`).Scan(&n)
		})
		if n != 1 {
			t.Errorf("%d members after rejected requests, want only the admin", n)
		}
	})
}

func TestBulkCreateIsOneTransaction(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		batch := make([]map[string]any, 1000)
		for i := range batch {
			batch[i] = newUser(fmt.Sprintf("user%04d@example.com", i))
		}
		out := h.createUsers(t, batch...)
		if len(out.EmailToUserID) != 1000 || len(out.InvalidEmails) != 0 {
			t.Fatalf("created %d, invalid %v", len(out.EmailToUserID), out.InvalidEmails)
		}
		var page usersPage
		ok(t, h.get(usersPath+"?page_size=100&page=11", h.boot.AdminKeySecret), &page)
		if page.Total != 1001 || len(page.Members) != 1 || page.Page != 11 || page.PageSize != 100 {
			t.Fatalf("last page: total %d, %d members", page.Total, len(page.Members))
		}
	})
}

func TestListUsersPagesMembersThenInvitations(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		batch := make([]map[string]any, 11)
		for i := range batch {
			batch[i] = newUser(fmt.Sprintf("m%02d@example.com", i))
		}
		h.createUsers(t, batch...)
		for i := range 3 {
			h.invite(fmt.Sprintf("guest%d@example.com", i))
		}
		var seen []string
		for page := 1; page <= 4; page++ {
			var p usersPage
			ok(t, h.get(fmt.Sprintf("%s?page=%d&page_size=5", usersPath, page), h.boot.AdminKeySecret), &p)
			if p.Total != 15 || p.Page != page || p.PageSize != 5 {
				t.Fatalf("page %d: total %d page %d size %d", page, p.Total, p.Page, p.PageSize)
			}
			for _, m := range p.Members {
				seen = append(seen, m.Email)
			}
			for _, inv := range p.Invites {
				seen = append(seen, inv.Email)
			}
			if page == 3 && (len(p.Members) != 2 || len(p.Invites) != 3) {
				t.Errorf("page 3: %d members and %d invites, want 2 and 3", len(p.Members), len(p.Invites))
			}
			if page == 4 && len(p.Members)+len(p.Invites) != 0 {
				t.Errorf("page 4 is not empty")
			}
		}
		// Members come in the order they joined (those of one batch by id),
		// each exactly once, then the invitations.
		var batchMembers []string
		for i := range 11 {
			batchMembers = append(batchMembers, fmt.Sprintf("m%02d@example.com", i))
		}
		got := slices.Clone(seen)
		if len(got) == 15 {
			slices.Sort(got[1:12])
		}
		want := append(append([]string{defaultEmail}, batchMembers...), "guest0@example.com", "guest1@example.com", "guest2@example.com")
		if !slices.Equal(got, want) {
			t.Errorf("pages hold %v, want %v", seen, want)
		}
		var again []string
		for page := 1; page <= 3; page++ {
			var p usersPage
			ok(t, h.get(fmt.Sprintf("%s?page=%d&page_size=5", usersPath, page), h.boot.AdminKeySecret), &p)
			for _, m := range p.Members {
				again = append(again, m.Email)
			}
			for _, inv := range p.Invites {
				again = append(again, inv.Email)
			}
		}
		if !slices.Equal(again, seen) {
			t.Errorf("a second walk gave another order: %v, then %v", seen, again)
		}
		var p usersPage
		ok(t, h.get(usersPath+"?email=M03@EXAMPLE.com", h.boot.AdminKeySecret), &p)
		if p.Total != 1 || len(p.Members) != 1 || p.Members[0].Email != "m03@example.com" {
			t.Errorf("email filter: %+v", p)
		}
		ok(t, h.get(usersPath+"?email=guest1@example.com", h.boot.AdminKeySecret), &p)
		if p.Total != 1 || len(p.Invites) != 1 || len(p.Members) != 0 || p.Invites[0].Expired {
			t.Errorf("email filter on an invitation: %+v", p)
		}
		expectValidation(t, h.get(usersPath+"?page_size=101", h.boot.AdminKeySecret), "query.page_size")
		expectValidation(t, h.get(usersPath+"?page=0&page_size=0", h.boot.AdminKeySecret), "query.page", "query.page_size")
	})
}

func TestUpdateUserRolesAndSeats(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		id := h.createUsers(t, newUser("ann@example.com")).EmailToUserID["ann@example.com"]
		for _, tc := range []struct {
			body map[string]any
			want []string
		}{
			{map[string]any{"role_names": []string{"billing_manager", "organization_admin"}}, []string{roleBilling, roleAdmin}},
			{map[string]any{"roles": []string{"M"}}, []string{roleMember}},
			{map[string]any{"roles": []string{roleBilling}}, []string{roleBilling}},
			{map[string]any{"role": "A"}, []string{roleAdmin}},
			{map[string]any{"role_name": "member"}, []string{roleMember}},
			{map[string]any{"subscription_types": []string{"MISTRAL_CODE"}}, []string{roleMember}},
		} {
			var m member
			ok(t, h.send("PATCH", usersPath+"/"+id, tc.body), &m)
			if !slices.Equal(m.RawRoles, tc.want) {
				t.Errorf("PATCH %v: raw_roles %v, want %v", tc.body, m.RawRoles, tc.want)
			}
		}
		if m := h.member(t, id); !slices.Equal(m.SubscriptionTypes, []string{"MISTRAL_CODE"}) {
			t.Errorf("seats = %v", m.SubscriptionTypes)
		}
		entries := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=user.organization.role.update")
		if len(entries) != 5 {
			t.Fatalf("%d role updates audited, want 5", len(entries))
		}
		if e := entries[len(entries)-1]; e.EventMetadata["roles_before"] != "member" || e.EventMetadata["roles_after"] != "billing_manager,organization_admin" ||
			e.TargetMetadata["id"] != id || e.ActorType != "API_KEY" || e.ActorMetadata["api_key_id"] != h.boot.AdminKey.ID {
			t.Errorf("first role update entry = %+v", e)
		}
		if n := h.eventCount(t, "billing.seat.grant"); n != 1 {
			t.Errorf("%d seat grants audited, want 1", n)
		}
		expectValidation(t, h.send("PATCH", usersPath+"/"+id, map[string]any{"role": "A", "role_name": "member"}), "body.role_name", "body.role")
		expectError(t, h.send("PATCH", usersPath+"/"+steward.RoleIDOrganizationAdmin, map[string]any{"role": "A"}), http.StatusNotFound, "not_found_error")
	})
}

func TestLastAdminCannotBeDemotedOrRemoved(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		admin := usersPath + "/" + h.boot.Admin.ID
		e := expectError(t, h.send("PATCH", admin, map[string]any{"role_names": []string{"member"}}), http.StatusConflict, "invalid_request_error")
		if !strings.Contains(e.Message, "last organization_admin") {
			t.Errorf("demotion message %q does not say why", e.Message)
		}
		e = expectError(t, h.send("DELETE", admin, nil), http.StatusConflict, "invalid_request_error")
		if !strings.Contains(e.Message, "last organization_admin") {
			t.Errorf("removal message %q does not say why", e.Message)
		}
		if m := h.member(t, h.boot.Admin.ID); !slices.Equal(m.RawRoles, []string{roleAdmin}) {
			t.Fatalf("the refused demotion changed the roles to %v", m.RawRoles)
		}
		other := h.createUsers(t, newUser("second@example.com", "role_names", []string{"organization_admin"})).EmailToUserID["second@example.com"]
		ok(t, h.send("PATCH", admin, map[string]any{"role_names": []string{"member"}}), nil)
		expectError(t, h.send("DELETE", usersPath+"/"+other, nil), http.StatusConflict, "invalid_request_error")
	})
}

func TestDeleteUser(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		id := h.createUsers(t, newUser("gone@example.com")).EmailToUserID["gone@example.com"]
		var out struct {
			Message string `json:"message"`
		}
		ok(t, h.send("DELETE", usersPath+"/"+id, nil), &out)
		if out.Message == "" {
			t.Error("DELETE answered no message")
		}
		expectError(t, h.get(usersPath+"/"+id, h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")
		expectError(t, h.send("DELETE", usersPath+"/"+id, nil), http.StatusNotFound, "not_found_error")
		expectError(t, h.get(usersPath+"/not-a-uuid", h.boot.AdminKeySecret), http.StatusNotFound, "not_found_error")
		entries := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=user.delete")
		if len(entries) != 1 || entries[0].TargetMetadata["email"] != "gone@example.com" {
			t.Errorf("user.delete entries = %+v", entries)
		}
		var ws int
		_ = h.db.View(context.Background(), func(tx *store.Tx) error {
			return tx.QueryRow(context.Background(), `SELECT COUNT(*) FROM workspace_members WHERE user_id = ?`, id).Scan(&ws)
		})
		if ws != 0 {
			t.Errorf("the removed member still belongs to %d Workspaces", ws)
		}
		// They can be added again.
		if again := h.createUsers(t, newUser("gone@example.com")).EmailToUserID["gone@example.com"]; again != id {
			t.Errorf("re-adding gave a new user id %s, want %s", again, id)
		}
	})
}
