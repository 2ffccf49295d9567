package server_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/store"
)

var tokenRE = regexp.MustCompile(`/invitations/accept\?token=([A-Z2-7]+)`)

// mailTo returns the accept token of the newest invitation email to an
// address, read from the outbox as the sender would send it.
func (h *harness) mailTo(t *testing.T, email string) (subject, token string) {
	t.Helper()
	ctx := context.Background()
	var body string
	err := h.db.View(ctx, func(tx *store.Tx) error {
		return tx.QueryRow(ctx, `SELECT subject, body FROM outbox WHERE recipient = ? ORDER BY created_at DESC, id DESC LIMIT 1`, email).Scan(&subject, &body)
	})
	if err != nil {
		t.Fatalf("no email to %s: %v", email, err)
	}
	m := tokenRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("email to %s has no accept link:\n%s", email, body)
	}
	return subject, m[1]
}

type invitesOut struct {
	InvalidEmails       []string `json:"invalid_emails"`
	AlreadyMembers      []string `json:"already_members"`
	InvitedMembersCount int      `json:"invited_members_count"`
}

type acceptOut struct {
	UserUUID         string   `json:"user_uuid"`
	OrganizationUUID string   `json:"organization_uuid"`
	Email            string   `json:"email"`
	WorkspaceUUIDs   []string `json:"workspace_uuids"`
}

func (h *harness) accept(token string, extra ...string) response {
	h.t.Helper()
	body := map[string]any{"token": token}
	for i := 0; i+1 < len(extra); i += 2 {
		body[extra[i]] = extra[i+1]
	}
	return h.send("POST", "/api/admin/users-invite/accept", body)
}

func TestInviteAcceptAndRevoke(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		var out invitesOut
		ok(t, h.send("POST", invitePath, map[string]any{
			"email":              "ann@example.com, bob@example.com\nnot-an-email;" + defaultEmail + "\n\nann@example.com",
			"role_names":         []string{"billing_manager"},
			"subscription_types": []string{"CHAT"},
			"workspace_uuids":    []string{h.boot.DefaultWorkspace.ID},
			"email_language":     "pt_br",
		}), &out)
		if out.InvitedMembersCount != 2 || !slices.Equal(out.InvalidEmails, []string{"not-an-email"}) || !slices.Equal(out.AlreadyMembers, []string{defaultEmail}) {
			t.Fatalf("invite result = %+v", out)
		}
		var pending []struct {
			InviteUUID string   `json:"invite_uuid"`
			Email      string   `json:"email"`
			Roles      []string `json:"roles"`
			Role       string   `json:"role"`
		}
		ok(t, h.get(invitePath, h.boot.AdminKeySecret), &pending)
		if len(pending) != 2 || pending[0].Email != "ann@example.com" || !slices.Equal(pending[0].Roles, []string{roleBilling}) || pending[0].Role != roleBilling {
			t.Fatalf("pending invitations = %+v", pending)
		}
		subject, token := h.mailTo(t, "ann@example.com")
		if !strings.Contains(subject, h.boot.Organization.Name) {
			t.Errorf("subject %q does not name the Organization", subject)
		}

		var acc acceptOut
		ok(t, h.accept(token, "first_name", "Ann", "last_name", "Lee"), &acc)
		if acc.Email != "ann@example.com" || acc.OrganizationUUID != h.boot.Organization.ID || !slices.Equal(acc.WorkspaceUUIDs, []string{h.boot.DefaultWorkspace.ID}) {
			t.Fatalf("accept = %+v", acc)
		}
		m := h.member(t, acc.UserUUID)
		if !slices.Equal(m.RawRoles, []string{roleBilling}) || !slices.Equal(m.SubscriptionTypes, []string{"CHAT"}) || m.Name == nil || *m.Name != "Ann Lee" {
			t.Errorf("accepted member = %+v", m)
		}
		e := expectError(t, h.accept(token), http.StatusConflict, "invalid_request_error")
		if e.Code == nil || *e.Code != "invitation_used" {
			t.Errorf("second accept code = %v", e.Code)
		}
		expectError(t, h.accept("NOTATOKEN"), http.StatusNotFound, "not_found_error")
		expectValidation(t, h.accept(""), "body.token")

		// Revoking Bob's invitation kills its link.
		_, bobToken := h.mailTo(t, "bob@example.com")
		ok(t, h.send("DELETE", invitePath+"/"+pending[1].InviteUUID, nil), nil)
		expectError(t, h.send("DELETE", invitePath+"/"+pending[1].InviteUUID, nil), http.StatusNotFound, "not_found_error")
		e = expectError(t, h.accept(bobToken), http.StatusConflict, "invalid_request_error")
		if e.Code == nil || *e.Code != "invitation_revoked" {
			t.Errorf("accepting a revoked invitation: code %v", e.Code)
		}
		ok(t, h.get(invitePath, h.boot.AdminKeySecret), &pending)
		if len(pending) != 0 {
			t.Errorf("pending after accept and revoke: %+v", pending)
		}
		for event, want := range map[string]int{"organization.invite.send": 2, "organization.invite.accepted": 1, "organization.invite.revoked": 1} {
			if n := h.eventCount(t, event); n != want {
				t.Errorf("%d %s entries, want %d", n, event, want)
			}
		}
		accepted := h.auditLogs(t, h.boot.AdminKeySecret, "event_type=organization.invite.accepted")[0]
		if accepted.ActorType != "HUMAN" || accepted.TargetMetadata["id"] != acc.UserUUID {
			t.Errorf("accept entry = %+v", accepted)
		}
	})
}

func TestInvitationsExpireAndCanBeResent(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		h.invite("late@example.com")
		_, first := h.mailTo(t, "late@example.com")
		h.invite("late@example.com")
		_, second := h.mailTo(t, "late@example.com")
		if first == second {
			t.Fatal("a second invitation reused the first link")
		}
		if n := h.eventCount(t, "organization.invite.resend"); n != 1 {
			t.Errorf("%d resend entries, want 1", n)
		}
		e := expectError(t, h.accept(first), http.StatusConflict, "invalid_request_error")
		if *e.Code != "invitation_revoked" {
			t.Errorf("the replaced link: code %s", *e.Code)
		}

		h.db.Now = func() time.Time { return time.Now().Add(8 * 24 * time.Hour) }
		defer func() { h.db.Now = time.Now }()
		var page usersPage
		ok(t, h.get(usersPath+"?email=late@example.com", h.boot.AdminKeySecret), &page)
		if len(page.Invites) != 1 || !page.Invites[0].Expired {
			t.Errorf("an invitation 8 days old is not marked expired: %+v", page.Invites)
		}
		var pending []any
		ok(t, h.get(invitePath, h.boot.AdminKeySecret), &pending)
		if len(pending) != 0 {
			t.Errorf("GET /users-invite lists an expired invitation: %+v", pending)
		}
		e = expectError(t, h.accept(second), http.StatusConflict, "invalid_request_error")
		if *e.Code != "invitation_expired" || !strings.Contains(e.Message, "expired") {
			t.Errorf("accepting an expired invitation: %+v", e)
		}
	})
}

func TestInviteValidation(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		for _, tc := range []struct {
			name   string
			body   map[string]any
			fields []string
		}{
			{"no email", map[string]any{"role_names": []string{"member"}}, []string{"body.email"}},
			{"blank email", map[string]any{"email": " , \n"}, []string{"body.email"}},
			{"unknown workspace", map[string]any{"email": "a@b.c", "workspace_uuids": []string{"6f9619ff-8b86-d011-b42d-00cf4fc964ff", "x"}}, []string{"body.workspace_uuids.0", "body.workspace_uuids.1"}},
			{"bad language", map[string]any{"email": "a@b.c", "email_language": "klingon"}, []string{"body.email_language"}},
			{"roles twice", map[string]any{"email": "a@b.c", "roles": []string{"M"}, "role_names": []string{"member"}}, []string{"body.role_names", "body.roles"}},
		} {
			t.Run(tc.name, func(t *testing.T) { expectValidation(t, h.send("POST", invitePath, tc.body), tc.fields...) })
		}
		var out invitesOut
		ok(t, h.send("POST", invitePath, map[string]any{"email": "only-bad, also bad"}), &out)
		if out.InvitedMembersCount != 0 || len(out.InvalidEmails) != 3 {
			t.Errorf("all-invalid batch = %+v", out)
		}
	})
}

func TestAcceptPage(t *testing.T) {
	forEachEngine(t, func(t *testing.T, h *harness) {
		h.invite("web@example.com")
		_, token := h.mailTo(t, "web@example.com")
		get := func(path string) (int, string) {
			resp, err := http.Get(h.http.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		post := func(form url.Values) (int, string) {
			resp, err := http.PostForm(h.http.URL+"/invitations/accept", form)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		status, page := get("/invitations/accept?token=" + token)
		if status != 200 || !strings.Contains(page, `name="token" value="`+token+`"`) || !strings.Contains(page, `<label for="first_name">`) {
			t.Fatalf("accept page: %d\n%s", status, page)
		}
		if status, page := get("/invitations/accept"); status != 400 || !strings.Contains(page, "no invitation token") {
			t.Errorf("page without token: %d %s", status, page)
		}
		status, page = post(url.Values{"token": {token}, "first_name": {"<Web>"}, "last_name": {"User"}})
		if status != http.StatusUnprocessableEntity || !strings.Contains(page, "choose a password") || !strings.Contains(page, `value="`+token+`"`) {
			t.Fatalf("form accept without a password by someone who has none: %d\n%s", status, page)
		}
		status, page = post(url.Values{"token": {token}, "first_name": {"<Web>"}, "last_name": {"User"}, "password": {"short"}, "password_confirm": {"short"}})
		if status != http.StatusUnprocessableEntity || !strings.Contains(page, "at least 12 characters") || !strings.Contains(page, `value="`+token+`"`) {
			t.Fatalf("form accept with a short password: %d\n%s", status, page)
		}
		status, page = post(url.Values{"token": {token}, "first_name": {"<Web>"}, "last_name": {"User"}, "password": {"a long passphrase"}, "password_confirm": {"a long passphrase!"}})
		if status != http.StatusUnprocessableEntity || !strings.Contains(page, "the two passwords differ") {
			t.Fatalf("form accept with passwords that differ: %d\n%s", status, page)
		}
		status, page = post(url.Values{"token": {token}, "first_name": {"<Web>"}, "last_name": {"User"}, "password": {"a long passphrase"}, "password_confirm": {"a long passphrase"}})
		if status != 200 || !strings.Contains(page, "web@example.com") || !strings.Contains(page, "Welcome") || !strings.Contains(page, "/web/signin") {
			t.Fatalf("form accept: %d\n%s", status, page)
		}
		status, page = post(url.Values{"token": {token}, "password": {"a long passphrase"}, "password_confirm": {"a long passphrase"}})
		if status != http.StatusConflict || !strings.Contains(page, "already accepted") || strings.Contains(page, token) {
			t.Errorf("second form accept: %d\n%s", status, page)
		}
		var p usersPage
		ok(t, h.get(usersPath+"?email=web@example.com", h.boot.AdminKeySecret), &p)
		if len(p.Members) != 1 || p.Members[0].Name == nil || *p.Members[0].Name != "<Web> User" {
			t.Errorf("member after form accept: %+v", p.Members)
		}
	})
}
