package web_test

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

func TestSignInSessionCookie(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		b := e.browser()
		if r := b.get(e.org() + "/members"); r.status != http.StatusSeeOther || !strings.HasPrefix(r.location, "/web/signin?next=") {
			t.Fatalf("page without a session: %d %q, want a redirect to sign in", r.status, r.location)
		}
		for _, bad := range []struct{ email, pw string }{{"admin@example.com", "wrong password here"}, {"nobody@example.com", adminPassword}} {
			r := b.signIn(bad.email, bad.pw)
			if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "wrong email or password") || strings.Contains(r.body, bad.pw) {
				t.Errorf("sign in as %s with a wrong password: %d %s", bad.email, r.status, r.body)
			}
		}
		r := b.signIn("ADMIN@example.com", adminPassword)
		if r.status != http.StatusSeeOther {
			t.Fatalf("sign in: %d %s", r.status, r.body)
		}
		var session *http.Cookie
		for _, c := range (&http.Response{Header: r.header}).Cookies() {
			if c.Name == "steward_session" {
				session = c
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure || session.Path != "/web/" {
			t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Lax, not Secure on plain HTTP, Path /web/", session)
		}
		// Signing in lands on the Organization's overview; the list of
		// Organizations names it and the Enterprise Account.
		if r := b.get("/web/"); r.status != http.StatusSeeOther || r.location != e.org()+"/" {
			t.Fatalf("start page: %d %q, want a redirect to the overview", r.status, r.location)
		}
		home := b.get("/web/organizations")
		if home.status != 200 || !strings.Contains(home.body, e.boot.Organization.Name) || !strings.Contains(home.body, "/web/ea/"+e.boot.EnterpriseAccount.ID+"/orgs") {
			t.Fatalf("start page: %d %s", home.status, home.body)
		}
		page := b.get(e.org() + "/members")
		if page.status != 200 || !strings.Contains(page.body, "admin@example.com") || page.header.Get("Cache-Control") != "no-store" ||
			!strings.Contains(page.header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Fatalf("members page: %d %v %s", page.status, page.header, page.body)
		}
		// The database holds only the token's hash.
		var stored string
		if err := db.View(context.Background(), func(tx *store.Tx) error {
			return tx.QueryRow(context.Background(), `SELECT token_hash FROM web_sessions`).Scan(&stored)
		}); err != nil || stored == session.Value || len(stored) != 64 {
			t.Errorf("stored session token %q (err %v): want a 64-hex hash, not the cookie", stored, err)
		}
		// Signing out ends the session server-side: the old cookie no longer works.
		if r := b.post("/web/signout", url.Values{"csrf": {b.csrf(e.org() + "/members")}}); r.status != http.StatusSeeOther {
			t.Fatalf("sign out: %d %s", r.status, r.body)
		}
		replay := e.browser()
		u, _ := url.Parse(e.http.URL + "/web/")
		replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "steward_session", Value: session.Value}})
		if r := replay.get(e.org() + "/members"); r.status != http.StatusSeeOther {
			t.Errorf("old cookie after sign-out: %d, want a redirect to sign in", r.status)
		}
	})
}

func TestSecureCookiesWhenConfigured(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{SecureCookies: true})
		r := e.browser().get("/web/signin")
		cookies := (&http.Response{Header: r.header}).Cookies()
		if len(cookies) == 0 || !cookies[0].Secure || !cookies[0].HttpOnly {
			t.Fatalf("cookies %+v: want Secure and HttpOnly", cookies)
		}
	})
}

func countInvitations(t *testing.T, db *store.DB, orgID string) int {
	t.Helper()
	var n int
	err := db.View(context.Background(), func(tx *store.Tx) error {
		list, err := directory.ListInvitations(context.Background(), tx, orgID, false)
		n = len(list)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFormsRefuseForgedPosts(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		b := e.browser()
		b.mustSignIn()
		form := url.Values{"emails": {"forged@example.com"}, "role": {steward.RoleIDOrganizationMember}}
		// A token altered in its first character: never the real one.
		genuine := b.csrf(e.org() + "/members")
		altered := "x" + genuine[1:]
		if genuine[0] == 'x' {
			altered = "y" + genuine[1:]
		}
		for name, token := range map[string]string{"no token": "", "an altered token": altered} {
			form.Set("csrf", token)
			if r := b.post(e.org()+"/invitations", form); r.status != http.StatusForbidden || !strings.Contains(r.body, "did not come from this site") {
				t.Errorf("%s: %d %s", name, r.status, r.body)
			}
		}
		// A right token from another site's page is still refused.
		form.Set("csrf", b.csrf(e.org()+"/members"))
		req, _ := http.NewRequest("POST", e.http.URL+e.org()+"/invitations", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if r := b.do(req); r.status != http.StatusForbidden {
			t.Errorf("cross-origin post: %d %s", r.status, r.body)
		}
		if n := countInvitations(t, db, e.boot.Organization.ID); n != 0 {
			t.Fatalf("%d invitations after forged posts, want 0", n)
		}
		// The sign-in form needs its own token too (no login CSRF).
		other := e.browser()
		if r := other.post("/web/signin", url.Values{"email": {"admin@example.com"}, "password": {adminPassword}}); r.status != http.StatusForbidden {
			t.Errorf("sign-in without the form token: %d %s", r.status, r.body)
		}
		// With its token the same post works, and is audited with the person.
		r := b.post(e.org()+"/invitations", form)
		if r.status != 200 || !strings.Contains(r.body, "1 invitation(s) sent") {
			t.Fatalf("invite: %d %s", r.status, r.body)
		}
		var entries []audit.Entry
		err := db.View(context.Background(), func(tx *store.Tx) error {
			var err error
			entries, err = audit.List(context.Background(), tx, audit.Filter{OrganizationID: e.boot.Organization.ID, EventTypes: []string{audit.EventInviteSend}})
			return err
		})
		if err != nil || len(entries) != 1 {
			t.Fatalf("invite entries: %v %+v", err, entries)
		}
		if a := entries[0].Actor; a.Type != steward.ActorHuman || a.UserID != e.boot.Admin.ID || a.Metadata["email"] != "admin@example.com" {
			t.Errorf("invite audited as %+v, want the signed-in admin as HUMAN", a)
		}
	})
}

func TestSessionExpires(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		b := e.browser()
		b.mustSignIn()
		if r := b.get(e.org() + "/members"); r.status != 200 {
			t.Fatalf("members: %d", r.status)
		}
		start := time.Now()
		for _, tc := range []struct {
			name  string
			after time.Duration
			ok    bool
		}{{"used within the idle time", 50 * time.Minute, true}, {"idle for longer than an hour", 50*time.Minute + 61*time.Minute, false}} {
			db.Now = func() time.Time { return start.Add(tc.after) }
			r := b.get(e.org() + "/members")
			if got := r.status == 200; got != tc.ok {
				t.Errorf("%s: %d %q", tc.name, r.status, r.location)
			}
		}
		// Past its TTL a session ends even when used all the time.
		db.Now = time.Now
		b2 := e.browser()
		b2.mustSignIn()
		for step := 1; step <= 26; step++ {
			at := time.Duration(step)*30*time.Minute - time.Minute
			db.Now = func() time.Time { return start.Add(at) }
			r := b2.get(e.org() + "/members")
			if want := at < 12*time.Hour; (r.status == 200) != want {
				t.Errorf("after %s of steady use: %d, want ok=%v", at, r.status, want)
			}
		}
	})
}

func TestCrossOrganizationDenied(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		actor := steward.SystemActor("test")
		var other steward.Organization
		var otherEA steward.EnterpriseAccount
		err := db.Transact(ctx, func(tx *store.Tx) error {
			var err error
			if otherEA, err = directory.CreateEnterpriseAccount(ctx, tx, actor, "Elsewhere"); err != nil {
				return err
			}
			var ws steward.Workspace
			if other, ws, err = directory.CreateOrganization(ctx, tx, actor, otherEA.ID, "Secret Elsewhere Org"); err != nil {
				return err
			}
			_, err = directory.AddOrganizationAdmin(ctx, tx, actor, other, ws, "root@elsewhere.example")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		b := e.browser()
		b.mustSignIn()
		csrf := b.csrf(e.org() + "/members")
		for _, path := range []string{"/members", "/workspaces", "/keys", "/audit", "/audit.csv", "/usage", "/limits", "/roles", "/groups"} {
			r := b.get("/web/o/" + other.ID + path)
			if r.status != http.StatusNotFound || strings.Contains(r.body, "Secret Elsewhere") || strings.Contains(r.body, "root@elsewhere") {
				t.Errorf("GET another Organization's %s: %d %s", path, r.status, r.body)
			}
		}
		if r := b.post("/web/o/"+other.ID+"/workspaces", url.Values{"csrf": {csrf}, "name": {"planted"}}); r.status != http.StatusNotFound {
			t.Errorf("POST to another Organization: %d %s", r.status, r.body)
		}
		if r := b.get("/web/ea/" + otherEA.ID + "/orgs"); r.status != http.StatusNotFound || strings.Contains(r.body, "Secret Elsewhere") {
			t.Errorf("another Enterprise Account's Backoffice: %d %s", r.status, r.body)
		}
		err = db.View(ctx, func(tx *store.Tx) error {
			list, _, err := directory.ListWorkspaces(ctx, tx, other.ID, false, "", 1, 10)
			if len(list) != 1 {
				t.Errorf("the other Organization has %d Workspaces after the post, want 1", len(list))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

var resetRE = regexp.MustCompile(`/web/password/reset\?token=([A-Za-z0-9_-]+)`)

func TestPasswordReset(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		b := e.browser()
		csrf := b.csrf("/web/password/forgot")
		// Both forms need their token and this site's origin, as the
		// sign-in form does; a refused request sends no email (counted below).
		other := e.browser()
		for _, path := range []string{"/web/password/forgot", "/web/password/reset"} {
			if r := other.post(path, url.Values{"email": {"admin@example.com"}, "token": {"x"}}); r.status != http.StatusForbidden || !strings.Contains(r.body, "did not come from this site") {
				t.Errorf("%s without the form token: %d %s", path, r.status, r.body)
			}
		}
		req, _ := http.NewRequest("POST", e.http.URL+"/web/password/forgot", strings.NewReader(url.Values{"csrf": {csrf}, "email": {"admin@example.com"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.example")
		if r := b.do(req); r.status != http.StatusForbidden || !strings.Contains(r.body, "did not come from this site") {
			t.Errorf("cross-origin forgot: %d %s", r.status, r.body)
		}
		for _, email := range []string{"admin@example.com", "unknown@example.com"} {
			r := b.post("/web/password/forgot", url.Values{"csrf": {csrf}, "email": {email}})
			if r.status != 200 || !strings.Contains(r.body, "is on its way") {
				t.Fatalf("forgot %s: %d %s", email, r.status, r.body)
			}
		}
		var bodies []string
		err := db.View(ctx, func(tx *store.Tx) error {
			rows, err := tx.Query(ctx, `SELECT recipient, body FROM outbox WHERE kind = 'password_reset'`)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var to, body string
				if err := rows.Scan(&to, &body); err != nil {
					return err
				}
				if to != "admin@example.com" {
					t.Errorf("a reset link went to %s", to)
				}
				bodies = append(bodies, body)
			}
			return rows.Err()
		})
		if err != nil || len(bodies) != 1 {
			t.Fatalf("reset emails: %v %d, want one to the admin only", err, len(bodies))
		}
		m := resetRE.FindStringSubmatch(bodies[0])
		if m == nil {
			t.Fatalf("no link in %s", bodies[0])
		}
		// The link's page names the account it sets the password of.
		if r := b.get("/web/password/reset?token=" + m[1]); r.status != http.StatusOK || !strings.Contains(r.body, "<strong>admin@example.com</strong>") {
			t.Errorf("the reset page does not name the account: %d %s", r.status, r.body)
		}
		csrf = b.csrf("/web/password/reset?token=" + m[1])
		if r := b.post("/web/password/reset", url.Values{"csrf": {csrf}, "token": {m[1]}, "password": {"short"}, "password_confirm": {"short"}}); r.status != 422 || !strings.Contains(r.body, "at least 12") {
			t.Errorf("short password: %d %s", r.status, r.body)
		}
		const fresh = "a brand new passphrase"
		if r := b.post("/web/password/reset", url.Values{"csrf": {csrf}, "token": {m[1]}, "password": {fresh}, "password_confirm": {fresh}}); r.status != http.StatusSeeOther {
			t.Fatalf("reset: %d %s", r.status, r.body)
		}
		if r := b.post("/web/password/reset", url.Values{"csrf": {csrf}, "token": {m[1]}, "password": {fresh}, "password_confirm": {fresh}}); r.status != http.StatusNotFound {
			t.Errorf("second use of the link: %d %s", r.status, r.body)
		}
		// A used link's page says so, with no form, and names nobody.
		if r := b.get("/web/password/reset?token=" + m[1]); r.status != http.StatusNotFound || !strings.Contains(r.body, "not valid any more") ||
			strings.Contains(r.body, "admin@example.com") || strings.Contains(r.body, `name="password"`) {
			t.Errorf("a used link's page: %d %s", r.status, r.body)
		}
		if r := b.signIn("admin@example.com", adminPassword); r.status != http.StatusUnauthorized {
			t.Errorf("old password after reset: %d", r.status)
		}
		if r := b.signIn("admin@example.com", fresh); r.status != http.StatusSeeOther {
			t.Errorf("new password: %d %s", r.status, r.body)
		}
	})
}

func TestAcceptingAnotherInvitationKeepsThePassword(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		ctx := context.Background()
		actor := steward.SystemActor("test")
		err := db.Transact(ctx, func(tx *store.Tx) error {
			org, _, err := directory.CreateOrganization(ctx, tx, actor, e.boot.EnterpriseAccount.ID, "Second Org")
			if err != nil {
				return err
			}
			_, err = directory.Invite(ctx, tx, actor, org, directory.InviteSettings{TTL: time.Hour, AcceptURL: e.http.URL + "/invitations/accept"},
				directory.InviteInput{Emails: "admin@example.com", Roles: directory.RoleInput{Roles: &[]string{steward.RoleIDOrganizationAdmin}}})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		var body string
		err = db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT body FROM outbox WHERE kind = 'invitation' AND recipient = 'admin@example.com'`).Scan(&body)
		})
		_, after, _ := strings.Cut(body, "/invitations/accept?token=")
		token, _, _ := strings.Cut(after, "\n")
		if err != nil || token == "" {
			t.Fatalf("invitation email: %v %q", err, body)
		}
		b := e.browser()
		if r := b.post("/invitations/accept", url.Values{"token": {strings.TrimSpace(token)}}); r.status != 200 || !strings.Contains(r.body, "Welcome") {
			t.Fatalf("accepting with no new password: %d %s", r.status, r.body)
		}
		b.mustSignIn()
		if r := b.get("/web/organizations"); !strings.Contains(r.body, "Second Org") || !strings.Contains(r.body, e.boot.Organization.Name) {
			t.Errorf("the start page lists %s, want both Organizations", r.body)
		}
	})
}

func TestChangePassword(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		b, other := e.browser(), e.browser()
		b.mustSignIn()
		other.mustSignIn()
		csrf := b.csrf("/web/password")
		const fresh = "another long passphrase"
		if r := b.post("/web/password", url.Values{"csrf": {csrf}, "current": {"not it at all"}, "password": {fresh}, "password_confirm": {fresh}}); r.status != 422 || !strings.Contains(r.body, "the current password is wrong") {
			t.Fatalf("wrong current password: %d %s", r.status, r.body)
		}
		if r := b.post("/web/password", url.Values{"csrf": {csrf}, "current": {adminPassword}, "password": {fresh}, "password_confirm": {fresh}}); r.status != http.StatusSeeOther {
			t.Fatalf("change: %d %s", r.status, r.body)
		}
		for name, br := range map[string]*browser{"this browser": b, "another browser": other} {
			if r := br.get(e.org() + "/members"); r.status != http.StatusSeeOther {
				t.Errorf("%s is still signed in after the change: %d", name, r.status)
			}
		}
		if r := b.signIn("admin@example.com", adminPassword); r.status != http.StatusUnauthorized {
			t.Errorf("the old password still works: %d", r.status)
		}
		if r := b.signIn("admin@example.com", fresh); r.status != http.StatusSeeOther {
			t.Errorf("the new password: %d %s", r.status, r.body)
		}
	})
}

// The invitation page names the Organization and the invited address, is
// styled by the panel's stylesheet, and answers a used link without a
// form; the password page names the account.
func TestInvitationAndPasswordPagesNameThem(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		b := e.browser()
		b.mustSignIn()
		if r := b.form(e.org()+"/invitations", url.Values{"emails": {"guest@example.com"}, "role": {steward.RoleIDOrganizationMember}}); r.status != 200 {
			t.Fatalf("invite: %d %s", r.status, r.body)
		}
		ctx := context.Background()
		var body string
		if err := db.View(ctx, func(tx *store.Tx) error {
			return tx.QueryRow(ctx, `SELECT body FROM outbox WHERE kind = 'invitation' AND recipient = 'guest@example.com'`).Scan(&body)
		}); err != nil {
			t.Fatal(err)
		}
		_, after, _ := strings.Cut(body, "/invitations/accept?token=")
		token, _, _ := strings.Cut(after, "\n")
		token = strings.TrimSpace(token)
		guest := e.browser()
		r := guest.get("/invitations/accept?token=" + url.QueryEscape(token))
		org := e.boot.Organization.Name
		if r.status != 200 || !strings.Contains(r.body, "<h1>Join "+org+"</h1>") || !strings.Contains(r.body, "<strong>guest@example.com</strong>") ||
			!strings.Contains(r.body, `href="/web/assets/style.css"`) || !strings.Contains(r.header.Get("Content-Security-Policy"), "style-src 'self'") {
			t.Fatalf("invitation page: %d %v %s", r.status, r.header, r.body)
		}
		r = guest.post("/invitations/accept", url.Values{"token": {token}, "password": {"guest's long password"}, "password_confirm": {"guest's long password"}})
		if r.status != 200 || !strings.Contains(r.body, "You are now a member of <strong>"+org+"</strong> as <strong>guest@example.com</strong>") {
			t.Fatalf("accept: %d %s", r.status, r.body)
		}
		r = guest.get("/invitations/accept?token=" + url.QueryEscape(token))
		if r.status != http.StatusConflict || strings.Contains(r.body, "<form") || !strings.Contains(r.body, "already accepted") {
			t.Errorf("a used link: %d %s", r.status, r.body)
		}
		if r := b.get("/web/password"); !strings.Contains(r.body, `The password of <strong id="account">admin@example.com</strong>`) {
			t.Errorf("the password page does not name the account: %s", r.body)
		}
	})
}
