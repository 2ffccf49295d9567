package web_test

import (
	"bytes"
	"context"
	"html"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

var alertRE = regexp.MustCompile(`<p class="error" role="alert">([^<]*)</p>`)

// TestTextIsCheckedAtTheEdge: a path id, query value or form value that
// is not text (invalid UTF-8, NUL and other control characters,
// bidirectional controls) is refused with the error page and a 422 that
// names it, on both engines, before any page reads it (PostgreSQL
// answered 500 to NUL; SQLite stored a Workspace name with a right-to-left
// override).
func TestTextIsCheckedAtTheEdge(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		b := e.browser()
		b.mustSignIn()
		org, ea := e.org(), "/web/ea/"+e.boot.EnterpriseAccount.ID
		ws := e.boot.DefaultWorkspace.ID
		multipartForm := func(path string, values url.Values) reply {
			t.Helper()
			var body bytes.Buffer
			mw := multipart.NewWriter(&body)
			values.Set("csrf", b.csrf("/web/organizations"))
			for k, vs := range values {
				for _, v := range vs {
					if err := mw.WriteField(k, v); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := mw.Close(); err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest("POST", e.http.URL+path, &body)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			return b.do(req)
		}
		for _, tc := range []struct {
			name string
			send func() reply
			want string
		}{
			{"Workspace name", func() reply { return b.form(org+"/workspaces", url.Values{"name": {"Payroll\u202Egpj.exe"}}) },
				"name must not contain bidirectional text controls (U+202E at byte 7)"},
			{"group name", func() reply {
				return b.form(org+"/groups", url.Values{"name": {"Admins\x00"}, "description": {"line\nline"}})
			},
				"name must not contain control characters (U+0000 at byte 6)"},
			{"role description", func() reply {
				return b.form(org+"/roles", url.Values{"name": {"r"}, "description": {"\u2067"}, "scope": {"organization"}})
			}, "description must not contain bidirectional text controls (U+2067 at byte 0)"},
			{"invitation addresses", func() reply { return b.form(org+"/invitations", url.Values{"emails": {"a@example.com\n\xff"}}) },
				"emails must be valid UTF-8 (0xFF at byte 14)"},
			{"Organization name", func() reply { return b.form(ea+"/orgs", url.Values{"name": {"\u0085"}}) },
				"name must not contain control characters (U+0085 at byte 0)"},
			{"multipart form", func() reply { return multipartForm(org+"/workspaces", url.Values{"name": {"x\x1b"}}) },
				"name must not contain control characters (U+001B at byte 1)"},
			{"sign-in address", func() reply {
				return b.post("/web/signin", url.Values{"csrf": {b.csrf("/web/signin")}, "email": {"admin@example.com\x00"}, "password": {"x"}})
			}, "email must not contain control characters (U+0000 at byte 17)"},
			{"Organization id", func() reply { return b.get("/web/o/%00/members") }, "org must not contain control characters (U+0000 at byte 0)"},
			{"Enterprise Account id", func() reply { return b.get("/web/ea/%ff/orgs") }, "ea must be valid UTF-8 (0xFF at byte 0)"},
			{"Workspace id", func() reply { return b.get(org + "/workspaces/%E2%80%8F") }, "ws must not contain bidirectional text controls (U+200F at byte 0)"},
			{"group id", func() reply { return b.form(org+"/groups/%00/delete", url.Values{}) }, "group must not contain control characters (U+0000 at byte 0)"},
			{"user id", func() reply { return b.form(org+"/workspaces/"+ws+"/members/%0a/remove", url.Values{}) },
				"user must not contain control characters (U+000A at byte 0)"},
			{"key id", func() reply { return b.form(org+"/keys/%E2%80%AE/delete", url.Values{}) },
				"key must not contain bidirectional text controls (U+202E at byte 0)"},
			{"audit filter", func() reply { return b.get(org + "/audit?event_type=%00") }, "event_type must not contain control characters (U+0000 at byte 0)"},
			{"reset link", func() reply { return b.get("/web/password/reset?token=%ff") }, "token must be valid UTF-8 (0xFF at byte 0)"},
		} {
			r := tc.send()
			var alert string
			if m := alertRE.FindStringSubmatch(r.body); m != nil {
				alert = html.UnescapeString(m[1])
			}
			if r.status != http.StatusUnprocessableEntity || alert != tc.want {
				t.Errorf("%s: %d saying %q, want 422 saying %q", tc.name, r.status, alert, tc.want)
			}
		}
		err := db.View(context.Background(), func(tx *store.Tx) error {
			list, total, err := directory.ListWorkspaces(context.Background(), tx, e.boot.Organization.ID, false, "", 1, 10)
			if err == nil && total != 1 {
				t.Errorf("refused forms stored Workspaces: %+v", list)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// Passwords are checked only for UTF-8: this one is wrong, not
		// refused.
		if r := b.signIn("admin@example.com", "p\x00ss\u202E"); r.status != http.StatusUnauthorized {
			t.Errorf("a password with control characters: %d %s, want 401", r.status, r.body)
		}
	})
}
