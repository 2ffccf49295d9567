package web_test

import (
	"context"
	"html"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

var keyRowRE = regexp.MustCompile(`(?s)<tr>\s*<td><a href="[^"]*/keys/[^"]+">([^<]+)</a>.*?</tr>`)

// keyRows returns the keys table's rows, each as its cells' text joined by
// " | ", without the row menu.
func keyRows(body string) []string {
	tags := regexp.MustCompile(`<[^>]+>`)
	var out []string
	for _, m := range keyRowRE.FindAllString(body, -1) {
		m, _, _ = strings.Cut(m, "<details")
		var cells []string
		for _, td := range strings.Split(m, "</td>")[:7] {
			cells = append(cells, strings.Join(strings.Fields(html.UnescapeString(tags.ReplaceAllString(td, " "))), " "))
		}
		out = append(out, strings.Join(cells, " | "))
	}
	return out
}

// TestKeysPage checks the keys' columns (owner, Workspace, this month's
// spend), the filters by Workspace and owner, and that the row menu is
// offered only to those who may change keys.
func TestKeysPage(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		e := newEnv(t, db, web.Config{})
		users := seedRoles(t, e)
		ctx := context.Background()
		actor := steward.SystemActor("test")
		research := "Research"
		ws, _, err := directory.NewService(db, directory.InviteSettings{}).CreateWorkspace(ctx, actor, e.boot.Organization.ID,
			directory.NewWorkspace{WorkspaceInput: directory.WorkspaceInput{Name: &research}, AdminUserID: e.boot.Admin.ID, AddAllOrgMembers: true})
		if err != nil {
			t.Fatal(err)
		}
		ks := keys.NewService(db)
		mk := func(name, workspace, user string) string {
			k, err := ks.CreateKey(ctx, actor, e.boot.Organization.ID, keys.NewKey{WorkspaceID: workspace, UserID: user, Name: &name})
			if err != nil {
				t.Fatal(err)
			}
			return k.Key.ID
		}
		first := mk("first", e.boot.DefaultWorkspace.ID, e.boot.Admin.ID)
		mk("second", ws.ID, e.boot.Admin.ID)
		mk("billing's", ws.ID, users["billing@example.com"])
		seedKeyUsage(t, e, first)
		b := e.browser()
		b.mustSignIn()
		dflt := e.boot.DefaultWorkspace.Name
		for _, tc := range []struct {
			query string
			want  []string
		}{
			{"", []string{"billing's | billing@example.com | Research", "first | admin@example.com | " + dflt, "second | admin@example.com | Research"}},
			{"?workspace=" + ws.ID, []string{"billing's | billing@example.com | Research", "second | admin@example.com | Research"}},
			{"?owner=" + e.boot.Admin.ID, []string{"first | admin@example.com | " + dflt, "second | admin@example.com | Research"}},
			{"?owner=" + e.boot.Admin.ID + "&workspace=" + ws.ID, []string{"second | admin@example.com | Research"}},
		} {
			r := b.get(e.org() + "/keys" + tc.query)
			rows := keyRows(r.body)
			var got []string
			for _, row := range rows {
				cells := strings.Split(row, " | ")
				got = append(got, strings.Join([]string{strings.Fields(cells[0])[0], cells[1], cells[2]}, " | "))
			}
			slices.Sort(got)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("keys%s: %q, want %q", tc.query, got, tc.want)
			}
			for _, row := range rows {
				spent := strings.Split(row, " | ")[6]
				if want := map[bool]string{true: "4.50", false: "0.00"}[strings.HasPrefix(row, "first ")]; spent != want {
					t.Errorf("keys%s: %s spent %q, want %s", tc.query, row, spent, want)
				}
			}
			if !strings.Contains(r.body, `<details class="menu"><summary>Actions`) {
				t.Errorf("keys%s: an admin gets no row menu", tc.query)
			}
		}
		auditor := e.browser()
		auditor.signIn("auditor@example.com", "a member's own password")
		r := auditor.get(e.org() + "/keys")
		if len(keyRows(r.body)) != 3 || strings.Contains(r.body, "/rotate") || strings.Contains(r.body, "New API key") {
			t.Errorf("a member who reads keys sees %d rows, or forms to change them: %s", len(keyRows(r.body)), r.body)
		}
	})
}
