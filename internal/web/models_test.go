package web_test

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/stewardhq/steward/internal/audit"
	"github.com/stewardhq/steward/internal/directory"
	"github.com/stewardhq/steward/internal/keys"
	"github.com/stewardhq/steward/internal/steward"
	"github.com/stewardhq/steward/internal/store"
	"github.com/stewardhq/steward/internal/store/storetest"
	"github.com/stewardhq/steward/internal/web"
)

// checkedModels returns the models a page's allow-list form has checked,
// and whether it chose every model.
func checkedModels(t *testing.T, body string) (models []string, every bool) {
	t.Helper()
	for _, m := range regexp.MustCompile(`<input type="checkbox" name="model" value="([^"]+)" checked>`).FindAllStringSubmatch(body, -1) {
		models = append(models, html.UnescapeString(m[1]))
	}
	return models, strings.Contains(body, `<input type="radio" name="allow" value="every" checked>`)
}

// TestModelAccessPages: the Workspace page and a key's page show and set
// their allow lists through the keys service, audited with the signed-in
// admin, refusing what the API refuses.
func TestModelAccessPages(t *testing.T) {
	storetest.Run(t, func(t *testing.T, db *store.DB) {
		served := []string{"mistral-small", "steward-demo"}
		e := newEnv(t, db, web.Config{Models: served})
		ctx := context.Background()
		b := e.browser()
		b.mustSignIn()
		org, orgID := e.org(), e.boot.Organization.ID
		ws := e.boot.DefaultWorkspace.ID
		svc := keys.NewService(db)
		var key steward.APIKey
		err := db.Transact(ctx, func(tx *store.Tx) error {
			name := "ci"
			var err error
			key, _, err = keys.CreateKey(ctx, tx, steward.SystemActor("test"), e.boot.Organization, keys.NewKey{WorkspaceID: ws, UserID: e.boot.Admin.ID, Name: &name})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		wsPage, keyPage := org+"/workspaces/"+ws, org+"/keys/"+key.ID

		r := b.get(wsPage)
		if got, every := checkedModels(t, r.body); r.status != 200 || len(got) != 0 || !every ||
			!strings.Contains(r.body, `value="mistral-small"`) || !strings.Contains(r.body, "Models this Workspace's keys may call") {
			t.Fatalf("the Workspace page without a list: %d %v %v", r.status, got, every)
		}
		if r := b.get(org + "/keys"); !strings.Contains(r.body, `<a href="`+keyPage+`">ci</a>`) {
			t.Errorf("the keys page does not link to the key's page: %s", r.body)
		}

		// The Workspace's list.
		changed(t, b.form(wsPage+"/models", url.Values{"allow": {"some"}, "model": {"steward-demo"}}), wsPage, "models_saved")
		if l, err := svc.WorkspaceModels(ctx, orgID, ws); err != nil || !l.Equal(steward.NewModelAllowList([]string{"steward-demo"})) {
			t.Fatalf("the Workspace's list: %v, %v", l.Names(), err)
		}
		r = b.get(wsPage + "?done=models_saved")
		if got, every := checkedModels(t, r.body); len(got) != 1 || got[0] != "steward-demo" || every || !strings.Contains(r.body, "The allowed models are saved.") {
			t.Fatalf("the Workspace page with its list: %v %v", got, every)
		}
		var entries []audit.Entry
		err = db.View(ctx, func(tx *store.Tx) error {
			entries, err = audit.List(ctx, tx, audit.Filter{OrganizationID: orgID, EventTypes: []string{audit.EventWorkspaceUpdate}, Limit: 10})
			return err
		})
		if err != nil || len(entries) != 1 || entries[0].Actor.Type != steward.ActorHuman || entries[0].Actor.UserID != e.boot.Admin.ID ||
			entries[0].EventMetadata["allowed_models_after"] != `["steward-demo"]` {
			t.Fatalf("audit entries %+v, %v", entries, err)
		}
		for _, c := range []struct {
			form url.Values
			msg  string
		}{
			{url.Values{"allow": {"some"}, "model": {"steward-demo", "gpt-4"}}, `"gpt-4" is not a model this server serves`},
			{url.Values{"model": {"steward-demo"}}, "choose every model, or only the models checked"},
		} {
			r := b.form(wsPage+"/models", c.form)
			if r.status != http.StatusUnprocessableEntity || !strings.Contains(html.UnescapeString(r.body), c.msg) {
				t.Errorf("POST %v: %d, want 422 with %q", c.form, r.status, c.msg)
			}
		}
		if l, _ := svc.WorkspaceModels(ctx, orgID, ws); !l.Equal(steward.NewModelAllowList([]string{"steward-demo"})) {
			t.Fatalf("the Workspace's list after refusals: %v", l.Names())
		}

		// The key's page: its Workspace's list, its own, what it may call.
		r = b.get(keyPage)
		text := html.UnescapeString(r.body)
		if got, every := checkedModels(t, r.body); r.status != 200 || len(got) != 0 || !every || !strings.Contains(text, "API key ci") ||
			!strings.Contains(r.body, "Its Workspace allows: <code>steward-demo</code>.") || !strings.Contains(r.body, "This key may call: <code>steward-demo</code>.") {
			t.Fatalf("the key's page: %d %v %v %s", r.status, got, every, r.body)
		}
		changed(t, b.form(keyPage+"/models", url.Values{"allow": {"some"}}), keyPage, "models_saved")
		if m, err := svc.KeyModels(ctx, orgID, key.ID); err != nil || m.Own == nil || len(m.Own.Names()) != 0 || len(m.Effective.Names()) != 0 {
			t.Fatalf("the key's lists: %+v, %v", m, err)
		}
		if r := b.get(keyPage); !strings.Contains(r.body, "This key may call: no model.") {
			t.Errorf("the key's page with an empty list: %s", r.body)
		}
		changed(t, b.form(keyPage+"/models", url.Values{"allow": {"every"}, "model": {"mistral-small"}}), keyPage, "models_saved")
		if m, _ := svc.KeyModels(ctx, orgID, key.ID); m.Own != nil {
			t.Fatalf("every model chosen, the key keeps a list: %v", m.Own.Names())
		}

		// A model no longer served stays offered while a list holds it.
		if _, err := svc.SetWorkspaceModels(ctx, steward.SystemActor("test"), orgID, ws, steward.NewModelAllowList([]string{"old-model"}), []string{"old-model"}); err != nil {
			t.Fatal(err)
		}
		if r := b.get(wsPage); !strings.Contains(r.body, `value="old-model" checked> <code>old-model</code> <span class="hint">(no longer served)</span>`) {
			t.Errorf("a model no longer served is not offered as such: %s", r.body)
		}
		changed(t, b.form(wsPage+"/models", url.Values{"allow": {"some"}, "model": {"old-model", "mistral-small"}}), wsPage, "models_saved")

		// Another Organization's key, and a deleted one, are not found.
		var other steward.APIKey
		err = db.Transact(ctx, func(tx *store.Tx) error {
			o, ows, err := directory.CreateOrganization(ctx, tx, steward.SystemActor("test"), e.boot.EnterpriseAccount.ID, "Other")
			if err != nil {
				return err
			}
			admin, err := directory.AddOrganizationAdmin(ctx, tx, steward.SystemActor("test"), o, ows, "admin@other.example")
			if err != nil {
				return err
			}
			other, _, err = keys.CreateKey(ctx, tx, steward.SystemActor("test"), o, keys.NewKey{WorkspaceID: ows.ID, UserID: admin.ID})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := b.get(org + "/keys/" + other.ID); r.status != http.StatusNotFound {
			t.Errorf("another Organization's key: %d", r.status)
		}
		if r := b.form(org+"/keys/"+other.ID+"/models", url.Values{"allow": {"some"}}); r.status != http.StatusNotFound {
			t.Errorf("another Organization's key, set: %d", r.status)
		}
		if m, _ := svc.KeyModels(ctx, other.OrganizationID, other.ID); m.Own != nil {
			t.Errorf("another Organization's key got a list: %v", m.Own.Names())
		}
	})
}
